#!/usr/bin/env bash
# Stock adjustment throughput (issue 5): every POST /api/v1/products/{id}/stock-adjustments is
# one conditional UPDATE plus a ledger INSERT in one transaction. Measured on one hot product
# (every request contends for the same row) and spread over 10,000 products, on SQLite and,
# with --postgres URL, PostgreSQL; after each run the invariant stock = sum(ledger) is checked
# for every product straight in the database.
#
#   bench/adjustments.sh [--postgres postgres://postgres@127.0.0.1:5432] [--duration 10]
#
# Needs cargo, wrk, sqlite3, curl and python3 (psql for PostgreSQL); loopback only, bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PG_URL=""
DURATION=10
CONNECTIONS=16
PRODUCTS=10000
PORT=${BENCH_PORT:-18181}
while [ $# -gt 0 ]; do
  case $1 in
    --postgres) PG_URL=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    *) echo "unknown option $1"; exit 2 ;;
  esac
done
for tool in wrk sqlite3 curl python3; do
  command -v $tool >/dev/null || { echo "install $tool (Debian: apt-get install wrk sqlite3 curl python3)"; exit 1; }
done

cargo build --release --locked --bin tienda >/dev/null
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/tienda
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT

run_backend() {
  local backend=$1 url=$2
  DATABASE_URL=$url TIENDA_ADDR=127.0.0.1:$PORT RUST_LOG=warn TIENDA_LOG_FORMAT=json \
    TIENDA_JWT_SECRET=bench-secret-bench-secret-bench-secret TIENDA_ACCESS_TOKEN_TTL_SECS=3600 \
    TIENDA_ADMIN_EMAIL=bench@tienda.test TIENDA_ADMIN_PASSWORD=bench-password-1 \
    "$BIN" serve > "$WORK/$backend.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 100); do curl -fs "127.0.0.1:$PORT/health/ready" >/dev/null 2>&1 && break; sleep 0.1; done
  export TOKEN
  TOKEN=$(curl -fs "127.0.0.1:$PORT/api/v1/auth/login" -H 'content-type: application/json' \
    -d '{"email":"bench@tienda.test","password":"bench-password-1"}' | python3 -c 'import json,sys;print(json.load(sys.stdin)["access_token"])')
  # 10,000 products with a large stock, so -1 never runs out: every request is a real write.
  python3 - "$PORT" "$TOKEN" "$PRODUCTS" <<'PY'
import http.client, json, sys
port, token, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
conn = http.client.HTTPConnection("127.0.0.1", port)
for i in range(n):
    body = json.dumps({"name": f"bench {i}", "price": "1.00", "stock": 1000000})
    conn.request("POST", "/api/v1/products", body, {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    r = conn.getresponse(); r.read()
    assert r.status == 201, r.status
PY
  for mode in hot spread; do
    wrk -t2 -c2 -d2s -s bench/adjust.lua "http://127.0.0.1:$PORT" -- $mode $PRODUCTS >/dev/null
    wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s bench/adjust.lua "http://127.0.0.1:$PORT" -- $mode $PRODUCTS > "$WORK/$backend-$mode.txt"
    local rps p50 p99 errors
    rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/$backend-$mode.txt")
    p50=$(awk '$1=="50%" {print $2}' "$WORK/$backend-$mode.txt")
    p99=$(awk '$1=="99%" {print $2}' "$WORK/$backend-$mode.txt")
    errors=$(awk '/Non-2xx/ {print $5}' "$WORK/$backend-$mode.txt")
    printf '| %-8s | %-6s | %8s | %8s | %8s | %s |\n' "$backend" "$mode" "$rps" "$p50" "$p99" "${errors:-0}"
  done
  kill $SERVER; wait $SERVER 2>/dev/null || true
}

check_invariant() {
  local query="SELECT count(*) FROM products p WHERE p.stock <> (SELECT COALESCE(SUM(delta), 0) FROM stock_ledger l WHERE l.product_id = p.id)"
  case $1 in
    sqlite) sqlite3 "$WORK/bench.db" "$query" ;;
    postgres) psql "$2" -Atc "$query" ;;
  esac
}

echo "| backend  | target | req/s    | p50      | p99      | non-2xx |"
echo "|----------|--------|----------|----------|----------|---------|"
run_backend sqlite "sqlite://$WORK/bench.db"
echo "products whose stock differs from their ledger (SQLite): $(check_invariant sqlite)"
if [ -n "$PG_URL" ]; then
  DB="tienda_bench_adjust_$$"
  psql "$PG_URL/postgres" -qc "CREATE DATABASE $DB"
  run_backend postgres "$PG_URL/$DB"
  echo "products whose stock differs from their ledger (PostgreSQL): $(check_invariant postgres "$PG_URL/$DB")"
  psql "$PG_URL/postgres" -qc "DROP DATABASE $DB WITH (FORCE)"
fi
