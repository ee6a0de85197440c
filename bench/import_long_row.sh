#!/usr/bin/env bash
# One import row of MIB mebibytes costs no more memory than a file of the same size made of
# blank lines (which hold no row): peak RSS of `tienda import` on each, on SQLite and PostgreSQL.
# Files: the control (blank lines), a CSV record of MIB MiB, a CSV quote left open for MIB MiB of
# lines, a JSON Lines line of MIB MiB; each between valid rows.
# Usage: bench/import_long_row.sh [MIB] [POSTGRES_ADMIN_URL]   (defaults 120, postgres://postgres@127.0.0.1:5432/postgres)
# Set TIENDA_BIN to the binary (default target/debug/tienda). Exit code 1 from an import is
# expected: the long row is an invalid one.
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-120}
pg_admin=${2:-postgres://postgres@127.0.0.1:5432/postgres}
bin=${TIENDA_BIN:-target/debug/tienda}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$mib" "$work" <<'PY'
import sys
mib, work = int(sys.argv[1]), sys.argv[2]
head = "sku,name,description,price,stock\nA-1,First,,1.00,1\n"
def write(name, start, piece, end):
    with open(f"{work}/{name}", "w") as f:
        f.write(start)
        for _ in range(mib):
            f.write(piece)
        f.write(end)
write("blank.csv", head, "\n" * (1 << 20), "A-2,Second,,1.00,1\n")
write("long.csv", head + "L-1,Long,", "x" * (1 << 20), ",1.00,1\nA-2,Second,,1.00,1\n")
write("open.csv", head + "L-1,\"Open,", "more, more\n" * ((1 << 20) // 11), "")
good = '{"sku":"%s","name":"n","price":1,"stock":1}\n'
write("long.jsonl", good % "A-1" + '{"sku":"L-1","name":"', "x" * (1 << 20), '","price":1,"stock":1}\n' + good % "A-2")
PY

for engine in sqlite postgres; do
  echo "== $engine"
  for file in blank.csv long.csv open.csv long.jsonl; do
    if [ "$engine" = sqlite ]; then
      rm -f "$work"/bench.db*
      url="sqlite://$work/bench.db"
    else
      name="tienda_long_row_$$"
      psql "$pg_admin" -qc "SET client_min_messages = warning" -qc "DROP DATABASE IF EXISTS $name" -qc "CREATE DATABASE $name"
      url="${pg_admin%/*}/$name"
    fi
    export DATABASE_URL=$url RUST_LOG=warn TIENDA_LOG_FORMAT=json
    "$bin" migrate > /dev/null
    /usr/bin/time -f "%e %M" -o "$work/time" "$bin" import --format "${file##*.}" --on-error skip \
      "$work/$file" > "$work/out" 2>&1 || true
    # The last line: time writes "Command exited with non-zero status 1" above it.
    read -r secs kb < <(tail -n 1 "$work/time")
    printf '%-12s %7.2f s  peak RSS %7.1f MiB  %s\n' "$file" "$secs" "$(awk "BEGIN { print $kb / 1024 }")" \
      "$(grep -o '"errors":\[[^]]*\]' "$work/out" | grep -o '"code":"[a-z_]*"' | tr '\n' ' ')"
    if [ "$engine" = postgres ]; then
      psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)"
    fi
  done
done
