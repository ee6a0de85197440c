#!/usr/bin/env bash
# Bulk import and export at scale (issue 16): a CSV of N rows imported with `tienda import`
# (upload into the database, then the job: end to end, as POST /api/v1/imports to `succeeded`),
# exported with `tienda export`, on SQLite and PostgreSQL, with the peak resident memory of each
# command; and the ceiling of the same rows bulk-loaded by the engine itself (PostgreSQL COPY,
# SQLite executemany in one transaction) into the same schema.
# Usage: bench/import.sh [ROWS] [POSTGRES_ADMIN_URL]   (defaults 1000000, postgres://postgres@127.0.0.1:5432/postgres)
# Set TIENDA_BIN to the binary (default target/release/tienda; build it with cargo build --release),
# and TIENDA_IMPORT_BATCH_ROWS to import in batches other than 500 rows.
# BENCH_ENGINES="sqlite postgres" (default) chooses the engines.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}
pg_admin=${2:-postgres://postgres@127.0.0.1:5432/postgres}
bin=${TIENDA_BIN:-target/release/tienda}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$rows" "$work/products.csv" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    f.write("sku,name,description,price,stock\n")
    for i in range(n):
        f.write(f'SKU-{i},"Product {i}, size {i % 5}","Cotton, {i % 13} colours",{i % 5000}.{i % 100:02d},{i % 50}\n')
PY
echo "rows: $rows, file: $(du -h "$work/products.csv" | cut -f1), batch: ${TIENDA_IMPORT_BATCH_ROWS:-500}"

measure() { # label, then the command: wall seconds, peak RSS, and peak anonymous RSS
  # RssAnon (the heap and stacks) is sampled apart from the total: on SQLite the total also
  # counts the database file's pages read through its memory map, which are page cache.
  local label=$1; shift
  local start peak_anon=0 peak_rss=0 anon hwm
  start=$(date +%s.%N)
  # `<&0`: a background command's stdin is otherwise /dev/null, and the ceiling's script comes on it.
  "$@" <&0 > /dev/null 2> "$work/stderr" &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    read -r anon hwm < <(awk '/^RssAnon:/ {a = $2} /^VmHWM:/ {h = $2} END {print a + 0, h + 0}' "/proc/$pid/status" 2>/dev/null || echo "0 0")
    [ "$anon" -gt "$peak_anon" ] && peak_anon=$anon
    [ "$hwm" -gt "$peak_rss" ] && peak_rss=$hwm
    sleep 0.2
  done
  wait "$pid" || { cat "$work/stderr"; exit 1; }
  python3 -c "import sys, time; r, s, kb, anon = int(sys.argv[1]), time.time() - float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]); print(f'{sys.argv[5]:<34} {s:7.2f} s  {r / s:10.0f} rows/s  peak RSS {kb / 1024:6.1f} MiB  anon {anon / 1024:6.1f} MiB')" "$rows" "$start" "$peak_rss" "$peak_anon" "$label"
}

for engine in ${BENCH_ENGINES:-sqlite postgres}; do
  if [ "$engine" = sqlite ]; then
    url="sqlite://$work/bench.db"
    ceiling_url="$work/ceiling.db"
  else
    name="tienda_bench_$$"
    psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $name" -qc "CREATE DATABASE $name"
    psql "$pg_admin" -qc "DROP DATABASE IF EXISTS ${name}_ceiling" -qc "CREATE DATABASE ${name}_ceiling"
    url="${pg_admin%/*}/$name"
    ceiling_url="${pg_admin%/*}/${name}_ceiling"
  fi
  export DATABASE_URL=$url RUST_LOG=warn TIENDA_LOG_FORMAT=json
  "$bin" migrate > /dev/null
  echo "== $engine"
  measure "import (create, abort)" "$bin" import --mode create "$work/products.csv"
  measure "re-import (upsert, all unchanged)" "$bin" import "$work/products.csv"
  measure "export csv" "$bin" export -o "$work/export.csv"
  measure "export jsonl" "$bin" export --format jsonl -o "$work/export.jsonl"
  echo "exported lines: $(wc -l < "$work/export.csv")"
  # The ceiling: the same rows straight into products (its triggers included), no ledger, no
  # validation, no job.
  DATABASE_URL=$( [ "$engine" = sqlite ] && echo "sqlite://$ceiling_url" || echo "$ceiling_url" ) "$bin" migrate > /dev/null
  if [ "$engine" = sqlite ]; then
    measure "ceiling: executemany" python3 - "$ceiling_url" "$work/products.csv" <<'PY'
import csv, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
with open(sys.argv[2], newline="") as f:
    rows = csv.reader(f); next(rows)
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO products (sku, name, description, price_cents, stock, version, created_at, updated_at) "
        "VALUES (?, ?, ?, CAST(ROUND(? * 100) AS INTEGER), ?, 1, 0, 0)", rows)
    db.commit()
PY
  else
    measure "ceiling: COPY" psql "$ceiling_url" -q \
      -c "CREATE TEMP TABLE raw (sku text, name text, description text, price numeric, stock bigint)" \
      -c "\\copy raw FROM '$work/products.csv' CSV HEADER" \
      -c "INSERT INTO products (sku, name, description, price_cents, stock, version, created_at, updated_at)
          SELECT sku, name, description, (price * 100)::bigint, stock, 1, now(), now() FROM raw"
    psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" -qc "DROP DATABASE IF EXISTS ${name}_ceiling WITH (FORCE)"
  fi
done
