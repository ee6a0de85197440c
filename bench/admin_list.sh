#!/usr/bin/env bash
# The staff console's product list at catalogue scale (issue 20): seeds the issue 3 catalogue
# (bench/run.sh --seed-only, cached in bench/.data/), serves a copy of it with a console user,
# and times /admin/products per scenario (bench/admin_list.py).
# Usage: bench/admin_list.sh            (release build, 1,000,000 products)
#        BENCH_TIENDA_BIN=target/debug/tienda BENCH_ROWS=100000 bench/admin_list.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BENCH_TIENDA_BIN:-target/release/tienda}
ROWS=${BENCH_ROWS:-1000000}
[ -x "$BIN" ] || cargo build --release --locked --bin tienda
BENCH_TIENDA_BIN=$BIN BENCH_CEILING_BIN=/bin/true bench/run.sh --seed-only --no-build --rows "$ROWS"

work=$(mktemp -d)
cleanup() {
  [ -n "${server:-}" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cp "bench/.data/sqlite-v1-$ROWS.db" "$work/bench.db"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
DATABASE_URL="sqlite://$work/bench.db" TIENDA_ADDR=127.0.0.1:$port RUST_LOG=warn TIENDA_LOG_FORMAT=json \
  TIENDA_JWT_SECRET=tienda-bench-secret-not-for-production-0123456789 \
  TIENDA_ADMIN_EMAIL=bench-admin@tienda.test TIENDA_ADMIN_PASSWORD=bench-admin-password \
  "$BIN" serve > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 300); do
  curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break
  sleep 0.2
done
echo "binary: $BIN; rows: $ROWS; $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 bench/admin_list.py "http://127.0.0.1:$port" bench-admin@tienda.test bench-admin-password "$@"
