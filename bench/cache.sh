#!/usr/bin/env bash
# The response cache (issue 15): tienda with TIENDA_CACHE=off, local and redis, side by side
# with the bare ceiling (examples/ceiling.rs) in one run, on the 10,000-product catalogue of
# `bench/run.sh --workload issue12` (seeded by it), wrk -t2 -c64:
#   GET /products/{random id 1..10000}, GET /products?page={random 1..50}&per_page=20,
#   and writes: stock adjustments of +-1 spread over every product (they invalidate).
#
#   bench/cache.sh                                           # SQLite
#   bench/cache.sh --postgres postgres://postgres@127.0.0.1:5432   # and PostgreSQL
#
# Uses the release binaries in ./target (build them first: cargo build --release --bin tienda
# --example ceiling). Redis mode talks to BENCH_REDIS_URL (default redis://127.0.0.1:6379): it
# only publishes and subscribes on tienda's channel, it stores nothing there.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PG_URL=""
[ "${1:-}" = --postgres ] && PG_URL=$2
DURATION=${BENCH_DURATION:-8}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379}
TIENDA=$ROOT/target/release/tienda
CEILING=$ROOT/target/release/examples/ceiling
DATA=$ROOT/bench/.data
PORT=18081 CEILING_PORT=18091
SECRET="tienda-bench-secret-not-for-production-0123456789"
OUT=$DATA/cache-$(date -u +%Y%m%dT%H%M%SZ).tsv
mkdir -p "$DATA"

bench/run.sh --workload issue12 --seed-only --no-build ${PG_URL:+--postgres "$PG_URL"} >/dev/null

PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
wait_http() { for _ in $(seq 1 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.2; done; echo "no answer from $1" >&2; exit 1; }

# wrk's requests per second, p50 and p99 (ms), and the non-2xx count.
load() { # label wrk-args... (the URL among them)
  local label=$1 out
  shift
  out=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION"s --latency "$@" 2>&1)
  awk -v l="$label" '
    /Requests\/sec/ { rps = $2 }
    /^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
    /Non-2xx/ { bad = $NF }
    END { printf "%s\t%s\t%s\t%s\t%s\n", l, rps, p50, p99, bad + 0 }' <<<"$out" | tee -a "$OUT"
}

run_db() { # label url
  local db=$1 url=$2 mode token
  CEILING_DATABASE_URL=$url CEILING_ADDR=127.0.0.1:$CEILING_PORT "$CEILING" >/dev/null 2>&1 &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$CEILING_PORT/products/1"
  for mode in ceiling off local redis; do
    if [ "$mode" = ceiling ]; then
      BENCH_RANDOM_PREFIX=http://127.0.0.1:$CEILING_PORT/products/ BENCH_RANDOM_MAX=10000 \
        load "$db ceiling get-by-id" "http://127.0.0.1:$CEILING_PORT/products/1" -s bench/wrk.lua
      BENCH_RANDOM_PREFIX="http://127.0.0.1:$CEILING_PORT/products?per_page=20&page=" BENCH_RANDOM_MAX=50 \
        load "$db ceiling list-page" "http://127.0.0.1:$CEILING_PORT/products?page=1" -s bench/wrk.lua
      continue
    fi
    env -u RUST_LOG DATABASE_URL="$url" TIENDA_ADDR=127.0.0.1:$PORT TIENDA_JWT_SECRET=$SECRET \
      TIENDA_LOG_FORMAT=json TIENDA_CACHE=$mode REDIS_URL=$REDIS_URL \
      TIENDA_ADMIN_EMAIL=bench@tienda.test TIENDA_ADMIN_PASSWORD=bench-password-1 \
      "$TIENDA" serve >"$DATA/cache-$db-$mode.log" 2>&1 &
    local pid=$!
    PIDS+=($pid)
    wait_http "http://127.0.0.1:$PORT/api/v1/products/1"
    sleep 1
    BENCH_RANDOM_PREFIX=http://127.0.0.1:$PORT/api/v1/products/ BENCH_RANDOM_MAX=10000 \
      load "$db $mode get-by-id" "http://127.0.0.1:$PORT/api/v1/products/1" -s bench/wrk.lua
    BENCH_RANDOM_PREFIX="http://127.0.0.1:$PORT/api/v1/products?per_page=20&page=" BENCH_RANDOM_MAX=50 \
      load "$db $mode list-page" "http://127.0.0.1:$PORT/api/v1/products?page=1" -s bench/wrk.lua
    token=$(curl -fs "127.0.0.1:$PORT/api/v1/auth/login" -H 'content-type: application/json' \
      -d '{"email":"bench@tienda.test","password":"bench-password-1"}' \
      | python3 -c 'import json,sys;print(json.load(sys.stdin)["access_token"])')
    TOKEN=$token load "$db $mode stock-adjust" -s bench/adjust.lua "http://127.0.0.1:$PORT" -- spread 10000
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
}

printf 'scenario\treq/s\tp50\tp99\tnon-2xx\n' | tee "$OUT"
run_db sqlite "sqlite://$DATA/sqlite-v1-10000.db"
[ -n "$PG_URL" ] && run_db postgres "${PG_URL%/}/tienda_bench_v1_10000"
echo "results: $OUT"
