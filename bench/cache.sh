#!/usr/bin/env bash
# The response cache (issue 15): tienda with TIENDA_CACHE=off, local and redis, side by side
# with the bare ceiling (examples/ceiling.rs) in one run, on the 10,000-product catalogue of
# `bench/run.sh --workload issue12` (seeded by it), wrk -t2 -c64:
#   GET /products/{random id 1..10000}, GET /products?page={random 1..50}&per_page=20,
#   and writes: stock adjustments of +-1 spread over every product, PATCH of a random product's
#   price, and POST of new products (each invalidates).
# Each tienda starts with a cold cache and is warmed by one pass over every id and page before
# it is measured; BENCH_ROUNDS rounds (default 3) run the modes interleaved, in reverse order on
# even rounds, so a noisy minute touches every mode alike; compare medians.
#
#   bench/cache.sh                                           # SQLite
#   bench/cache.sh --postgres postgres://postgres@127.0.0.1:5432   # and PostgreSQL
#
# BENCH_MODES (default "ceiling off local redis"), BENCH_SCENARIOS (default "reads writes") and
# BENCH_SQLITE=0 (PostgreSQL only) narrow a run, e.g. to repeat the writes on one engine.
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
ROUNDS=${BENCH_ROUNDS:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379}
SCENARIOS=${BENCH_SCENARIOS:-reads writes}
TIENDA=${BENCH_TIENDA_BIN:-$ROOT/target/release/tienda}
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

# One keep-alive pass over every id and list page: what a cache holds after a while in service.
warm() { # base URL
  python3 - "$1" <<'PY'
import http.client, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port)
paths = [f"/api/v1/products/{i}" for i in range(1, 10001)]
paths += [f"/api/v1/products?per_page=20&page={p}" for p in range(1, 51)]
for p in paths:
    c.request("GET", p)
    c.getresponse().read()
PY
}

# A copy of the seeded catalogue for one run: the writes of a run never reach the next one.
fresh_copy() { # url -> url of the copy
  case $1 in
    sqlite://*)
      local file=${1#sqlite://}
      rm -f "$file.run" "$file.run-wal" "$file.run-shm"
      sqlite3 "$file" ".backup '$file.run'"
      echo "sqlite://$file.run" ;;
    *)
      local base=${1%/*} name=${1##*/}
      psql "$base/postgres" -qc "DROP DATABASE IF EXISTS ${name}_run" -qc "CREATE DATABASE ${name}_run TEMPLATE $name" >/dev/null
      echo "$base/${name}_run" ;;
  esac
}

run_db() { # label url round
  local db=$1 url=$2 round=$3 mode token modes
  modes=${BENCH_MODES:-ceiling off local redis}
  # Even rounds run the modes in reverse order: whatever the one before leaves behind (dirty
  # pages, a checkpoint due, a warmer disk cache) falls on each mode alike.
  [ $((round % 2)) = 0 ] && modes=$(tr ' ' '\n' <<<"$modes" | tac | tr '\n' ' ')
  for mode in $modes; do
    if [ "$mode" = ceiling ]; then
      # Stopped after its turn: the next engine's ceiling takes the same port.
      CEILING_DATABASE_URL=$url CEILING_ADDR=127.0.0.1:$CEILING_PORT "$CEILING" >/dev/null 2>&1 &
      local ceiling=$!
      PIDS+=($ceiling)
      wait_http "http://127.0.0.1:$CEILING_PORT/products/1"
      BENCH_RANDOM_PREFIX=http://127.0.0.1:$CEILING_PORT/products/ BENCH_RANDOM_MAX=10000 \
        load "$db ceiling get-by-id" "http://127.0.0.1:$CEILING_PORT/products/1" -s bench/wrk.lua
      BENCH_RANDOM_PREFIX="http://127.0.0.1:$CEILING_PORT/products?per_page=20&page=" BENCH_RANDOM_MAX=50 \
        load "$db ceiling list-page" "http://127.0.0.1:$CEILING_PORT/products?page=1" -s bench/wrk.lua
      # The floor: the same server answering without any work (what no cache can beat here).
      BENCH_RANDOM_PREFIX=http://127.0.0.1:$CEILING_PORT/floor/ BENCH_RANDOM_MAX=10000 \
        load "$db floor get-by-id" "http://127.0.0.1:$CEILING_PORT/floor/1" -s bench/wrk.lua
      kill "$ceiling"; wait "$ceiling" 2>/dev/null || true
      continue
    fi
    local run_url
    run_url=$(fresh_copy "$url")
    env -u RUST_LOG DATABASE_URL="$run_url" TIENDA_ADDR=127.0.0.1:$PORT TIENDA_JWT_SECRET=$SECRET \
      TIENDA_LOG_FORMAT=json TIENDA_CACHE=$mode REDIS_URL=$REDIS_URL \
      TIENDA_ADMIN_EMAIL=bench@tienda.test TIENDA_ADMIN_PASSWORD=bench-password-1 \
      "$TIENDA" serve >"$DATA/cache-$db-$mode.log" 2>&1 &
    local pid=$!
    PIDS+=($pid)
    wait_http "http://127.0.0.1:$PORT/api/v1/products/1"
    warm "http://127.0.0.1:$PORT"
    if [[ " $SCENARIOS " == *" reads "* ]]; then
      BENCH_RANDOM_PREFIX=http://127.0.0.1:$PORT/api/v1/products/ BENCH_RANDOM_MAX=10000 \
        load "$db $mode get-by-id" "http://127.0.0.1:$PORT/api/v1/products/1" -s bench/wrk.lua
      BENCH_RANDOM_PREFIX="http://127.0.0.1:$PORT/api/v1/products?per_page=20&page=" BENCH_RANDOM_MAX=50 \
        load "$db $mode list-page" "http://127.0.0.1:$PORT/api/v1/products?page=1" -s bench/wrk.lua
    fi
    if [[ " $SCENARIOS " != *" writes "* ]]; then
      kill "$pid"; wait "$pid" 2>/dev/null || true
      continue
    fi
    token=$(curl -fs "127.0.0.1:$PORT/api/v1/auth/login" -H 'content-type: application/json' \
      -d '{"email":"bench@tienda.test","password":"bench-password-1"}' \
      | python3 -c 'import json,sys;print(json.load(sys.stdin)["access_token"])')
    TOKEN=$token load "$db $mode stock-adjust" -s bench/adjust.lua "http://127.0.0.1:$PORT" -- spread 10000
    TOKEN=$token load "$db $mode patch-price" -s bench/webhook_patch.lua "http://127.0.0.1:$PORT" -- 10000 0
    TOKEN=$token load "$db $mode create" -s bench/create.lua "http://127.0.0.1:$PORT" -- "r$round-$mode-$$"
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
}

printf 'scenario\treq/s\tp50\tp99\tnon-2xx\n' | tee "$OUT"
for round in $(seq 1 "$ROUNDS"); do
  [ "${BENCH_SQLITE:-1}" = 0 ] || run_db sqlite "sqlite://$DATA/sqlite-v1-10000.db" "$round"
  [ -z "$PG_URL" ] || run_db postgres "${PG_URL%/}/tienda_bench_v1_10000" "$round"
done
python3 - "$OUT" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]).read().splitlines()[1:]:
    label, rps, *_ = line.split("\t")
    rows[label].append(float(rps))
print("\nmedian req/s over rounds")
for label, values in rows.items():
    print(f"{label:<36} {statistics.median(values):>10,.0f}   ({', '.join(f'{v:,.0f}' for v in values)})")
# Paired by round: each mode against `off` of the same round, whose minute it shared.
ratios = []
for label, values in rows.items():
    db, mode, scenario = label.split(" ", 2)
    base = rows.get(f"{db} off {scenario}")
    if mode not in ("off", "ceiling", "floor") and base and len(base) == len(values):
        paired = [v / b for v, b in zip(values, base)]
        ratios.append(f"{label:<36} {statistics.median(paired):>6.3f}   ({', '.join(f'{r:.3f}' for r in paired)})")
if ratios:
    print("\nagainst off in the same round: median ratio (per round)")
    print("\n".join(ratios))
PY
echo "results: $OUT"
