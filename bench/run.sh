#!/usr/bin/env bash
# Listing at catalogue scale (issue 3): seeds a catalogue of 1,000,000 products and measures
# tienda's reads against a bare axum + sqlx handler (examples/ceiling.rs) on loopback with wrk,
# on SQLite and, when given, PostgreSQL; then captures the query plan of every listing shape.
#
#   bench/run.sh                                     # SQLite
#   bench/run.sh --postgres postgres://postgres@127.0.0.1:5432   # SQLite and PostgreSQL
#   bench/run.sh --help
#   bench/run.sh --workload issue12 --postgres postgres://postgres@127.0.0.1:5432
#       # issue 12: GET by id and offset list pages at 64 connections, request logs on,
#       # against the ceiling and the original Flask stack (bench/issue12.sh)
#
# Needs cargo, wrk, sqlite3, curl, python3 (and psql for PostgreSQL); as root on Debian it
# installs the missing ones with apt-get, otherwise it says what to install. Everything it makes
# (seeded databases, logs, raw results, plans) goes to bench/.data/, which is kept between runs:
# the seeded SQLite file is reused, and so is the PostgreSQL database tienda_bench_v1_<rows>.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

WORKLOAD=catalogue
for arg in "$@"; do [ "${prev:-}" = --workload ] && WORKLOAD=$arg; prev=$arg; done
case $WORKLOAD in
  catalogue) ROWS_DEFAULT=1000000 CONNECTIONS_DEFAULT=16 ROUNDS_DEFAULT=2 ;;
  issue12) ROWS_DEFAULT=10000 CONNECTIONS_DEFAULT=64 ROUNDS_DEFAULT=3 ;;
  *) echo "unknown workload $WORKLOAD: catalogue or issue12" >&2; exit 2 ;;
esac
ROWS=${BENCH_ROWS:-$ROWS_DEFAULT}
DURATION=${BENCH_DURATION:-8}             # seconds of each loaded run (-c CONNECTIONS)
LAT_DURATION=${BENCH_LATENCY_DURATION:-4} # seconds of each unloaded run (-c1)
CONNECTIONS=${BENCH_CONNECTIONS:-$CONNECTIONS_DEFAULT}
ROUNDS=${BENCH_ROUNDS:-$ROUNDS_DEFAULT}   # every scenario runs this many times, interleaved
PG_URL=${BENCH_POSTGRES_URL:-}
DATA=${BENCH_DATA_DIR:-$ROOT/bench/.data}
TIENDA_PORT=${BENCH_TIENDA_PORT:-18080}
CEILING_PORT=${BENCH_CEILING_PORT:-18090}
WORD=${BENCH_WORD:-zephyr}   # one of 100 collection words: about 1% of products
WORDS2=${BENCH_WORDS2:-teal lamp}   # a colour (1/25) and a noun (1/50): about 0.08%
BUILD=1
SQLITE=1
PLANS=1
SEED_ONLY=0
SETTLE_PG_URL=""

usage() {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  cat <<EOF

Options (environment variable in brackets):
  --workload W       catalogue (default: the issue 3 suite above) or issue12: GET by id and
                     offset pages 1..50 at 64 connections (wrk -t2), 10,000 products, tienda
                     as a user runs it (JSON request log on, metrics on) against the ceiling
                     and, when bench/flask can be set up, Flask under gunicorn -w 4; server
                     CPU per request from /proc (see bench/issue12.sh)
  --postgres URL     also run on PostgreSQL; URL of a server where the user may create
                     databases [BENCH_POSTGRES_URL]
  --postgres-only    skip SQLite
  --rows N           catalogue size, default 1000000 (issue12: 10000) [BENCH_ROWS]
  --duration S       seconds of each loaded run, default 8 [BENCH_DURATION]
  --latency-duration S  seconds of each one-connection run, default 4 [BENCH_LATENCY_DURATION]
  --rounds N         interleaved repetitions of every scenario, default 2 (issue12: 3) [BENCH_ROUNDS]
  --connections N    connections of the loaded runs, default 16 (issue12: 64) [BENCH_CONNECTIONS]
  --no-build         use the binaries already in \$CARGO_TARGET_DIR (default ./target), or
                     BENCH_TIENDA_BIN and BENCH_CEILING_BIN when set
  --no-plans         skip the query plans
  --seed-only        seed (or check the cache of) the databases, then stop
Time at the defaults: about 7 to 8 minutes per database (14 scenarios x 2 rounds x (8 + 4) s, a 2 s
warm-up each, then the plans), plus seeding on the first run (here: SQLite 20 s, PostgreSQL 1 min).
EOF
}

while [ $# -gt 0 ]; do
  case $1 in
    --workload) shift 2 ;;
    --postgres) PG_URL=$2; shift 2 ;;
    --postgres-only) SQLITE=0; shift ;;
    --rows) ROWS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --latency-duration) LAT_DURATION=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --no-plans) PLANS=0; shift ;;
    --seed-only) SEED_ONLY=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$SQLITE" = 0 ] && [ -z "$PG_URL" ]; then
  echo "--postgres-only needs --postgres URL" >&2; exit 2
fi

DEPTH=$((ROWS * 9 / 10))   # 900,000 at 1M
DEEP_PAGE=$((DEPTH / 20))  # page=45000&per_page=20: OFFSET 899,980
SECRET="tienda-bench-secret-not-for-production-0123456789"
mkdir -p "$DATA"
RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS=$DATA/results-$RUN_ID.tsv
LOG=$DATA/servers-$RUN_ID.log
note() { printf '\n== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

# ------------------------------------------------------------------ tools
need() { command -v "$1" >/dev/null 2>&1; }
missing=()
for tool in wrk sqlite3 curl python3; do need "$tool" || missing+=("$tool"); done
if [ -n "$PG_URL" ] && ! need psql; then missing+=(postgresql-client); fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && need apt-get; then
    note "installing ${missing[*]}"
    apt-get install -y "${missing[@]}" || { apt-get update && apt-get install -y "${missing[@]}"; }
  else
    echo "missing: ${missing[*]}. On Debian/Ubuntu: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
TIENDA=${BENCH_TIENDA_BIN:-$TARGET/release/tienda}
CEILING=${BENCH_CEILING_BIN:-$TARGET/release/examples/ceiling}
if [ "$BUILD" = 1 ]; then
  note "building tienda and the ceiling (release)"
  cargo build --release --locked --bin tienda --example ceiling
fi
[ -x "$TIENDA" ] && [ -x "$CEILING" ] || { echo "no binaries in $TARGET/release" >&2; exit 1; }

# ------------------------------------------------------------------ processes
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

wait_http() { # url
  for _ in $(seq 1 100); do
    curl -fs -o /dev/null "$1" && return 0
    sleep 0.2
  done
  echo "no answer from $1; see $LOG" >&2
  exit 1
}

start_servers() { # database url
  echo "== $1" >>"$LOG"
  DATABASE_URL=$1 TIENDA_ADDR=127.0.0.1:$TIENDA_PORT TIENDA_JWT_SECRET=$SECRET \
    RUST_LOG=warn TIENDA_LOG_FORMAT=json "$TIENDA" serve >>"$LOG" 2>&1 &
  TIENDA_PID=$!
  CEILING_DATABASE_URL=$1 CEILING_ADDR=127.0.0.1:$CEILING_PORT "$CEILING" >>"$LOG" 2>&1 &
  CEILING_PID=$!
  PIDS+=("$TIENDA_PID" "$CEILING_PID")
  wait_http "http://127.0.0.1:$TIENDA_PORT/api/v1/products/1"
  wait_http "http://127.0.0.1:$CEILING_PORT/products/1"
}

stop_servers() {
  kill "$TIENDA_PID" "$CEILING_PID" 2>/dev/null || true
  wait "$TIENDA_PID" "$CEILING_PID" 2>/dev/null || true
  PIDS=()
}

# ------------------------------------------------------------------ seed data
# The same deterministic catalogue on both engines: product i (id i) gets words and numbers
# from multiplicative hashes of i (a bijection mod the prime 1000003, then a small modulus).
# name: "<Adjective> <colour> <noun>" (40 x 25 x 50 words, so names tie), description:
# "A <adjective> <noun> in <material>, from the <collection> collection." (100 collections:
# each word in about 1% of products), price 0.99..999.49 in 2000 steps (about 500 products per
# price), stock 0 for 10% and 1..249 otherwise, created_at 30 s apart from 2024-01-01, updated_at
# up to a day after it, sku SKU-1xxxxxxx.
ADJ="classic modern vintage compact deluxe rustic sleek sturdy soft bold handmade portable elegant simple premium everyday organic minimalist cozy bright slim large small heavy light smart quiet royal urban coastal nordic tropical festive retro gentle rugged refined playful timeless essential"
COLOUR="red blue green black white grey navy teal orange yellow purple pink brown beige cream charcoal crimson scarlet mint coral lavender mustard turquoise burgundy silver"
NOUN="shirt mug lamp chair table backpack jacket scarf candle notebook pillow blanket bottle wallet watch hat sneaker boot vase planter rug towel apron basket clock mirror frame speaker headphones kettle teapot bowl plate spoon knife skillet tray stool shelf desk cushion umbrella belt glove sock sweater hoodie dress skirt sandal"
MATERIAL="cotton wool leather steel oak glass ceramic bamboo silk copper cork rattan granite marble porcelain canvas suede felt brass aluminium"
COLLECTION="aurora basalt cascade dune ember fjord glacier harbor island jungle kestrel lagoon meadow nebula oasis prairie quarry river savanna tundra upland valley willow xenon yonder zenith alpine bayou canyon estuary forest grove heath iceberg jetty knoll mesa orchard pebble quartz reef summit tide umbra vista wharf yarrow zephyr atlas birch cedar dahlia elm fern ginkgo hazel iris juniper kelp lotus maple nettle poppy quince rowan sage tulip violet wisteria yew zinnia amber cobalt ebony flint garnet hickory indigo jade khaki mahogany nickel onyx pewter quill russet sepia topaz velvet walnut ivory falcon heron osprey puffin raven sparrow wren lark finch"

vocab_sql() {
  local table var words i sep
  for table in adj:ADJ colour:COLOUR noun:NOUN material:MATERIAL collection:COLLECTION; do
    var=${table#*:}
    words=${!var}
    printf 'CREATE TEMP TABLE v_%s (k INTEGER PRIMARY KEY, w TEXT NOT NULL);\n' "${table%%:*}"
    printf 'INSERT INTO v_%s (k, w) VALUES ' "${table%%:*}"
    i=0 sep=""
    for w in $words; do printf "%s(%d, '%s')" "$sep" "$i" "$w"; sep=", "; i=$((i + 1)); done
    printf ';\n'
  done
}

products_sql() { # row source yielding column i, created_at expression, updated_at expression
  cat <<EOF
INSERT INTO products (sku, name, description, price_cents, stock, version, created_at, updated_at)
SELECT 'SKU-' || (10000000 + s.i),
       upper(substr(a.w, 1, 1)) || substr(a.w, 2) || ' ' || c.w || ' ' || n.w,
       'A ' || a2.w || ' ' || n.w || ' in ' || m.w || ', from the ' || col.w || ' collection.',
       s.price_cents, s.stock, 1, $2, $3
FROM (SELECT i,
             ((i * 7919) % 1000003) % 40 AS ka,
             ((i * 104729) % 1000003) % 25 AS kc,
             ((i * 15485863) % 1000003) % 50 AS kn,
             ((i * 32452843) % 1000003) % 40 AS ka2,
             ((i * 49979687) % 1000003) % 20 AS km,
             ((i * 67867967) % 1000003) % 100 AS kcol,
             99 + (((i * 86028121) % 1000003) % 2000) * 50 AS price_cents,
             CASE WHEN ((i * 179424673) % 1000003) % 10 = 0 THEN 0
                  ELSE ((i * 179424673) % 1000003) % 250 END AS stock,
             ((i * 122949829) % 1000003) % 86400 AS upd
      FROM $1) AS s
JOIN v_adj a ON a.k = s.ka
JOIN v_colour c ON c.k = s.kc
JOIN v_noun n ON n.k = s.kn
JOIN v_adj a2 ON a2.k = s.ka2
JOIN v_material m ON m.k = s.km
JOIN v_collection col ON col.k = s.kcol
ORDER BY s.i;
-- the ledger's first entry is the initial stock, as tienda writes it
INSERT INTO stock_ledger (product_id, delta, stock_after, reason, actor_id, created_at)
SELECT id, stock, stock, 'initial stock', NULL, created_at FROM products ORDER BY id;
EOF
}

seed_check_sql() {
  cat <<'EOF'
SELECT 'products', count(*), sum(stock), sum(CASE WHEN stock > 0 THEN 1 ELSE 0 END) FROM products;
SELECT 'counts', total, in_stock FROM product_counts;
SELECT 'price counts', sum(total), sum(in_stock) FROM product_price_counts;
SELECT 'ledger', count(*), sum(delta) FROM stock_ledger;
EOF
}

SQLITE_DB=$DATA/sqlite-v1-$ROWS.db
seed_sqlite() {
  [ -f "$SQLITE_DB" ] && { echo "reusing $SQLITE_DB"; return; }
  local tmp=$DATA/seeding-sqlite.db start
  rm -f "$tmp" "$tmp-wal" "$tmp-shm"
  DATABASE_URL=sqlite://$tmp TIENDA_JWT_SECRET=$SECRET RUST_LOG=warn "$TIENDA" migrate
  start=$(date +%s)
  {
    # A scratch file until it is complete, so no journal and no fsync; one transaction. The
    # triggers keep the FTS index and product_counts as tienda's own writes would.
    echo "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -1048576;"
    echo "PRAGMA temp_store = MEMORY; BEGIN;"
    vocab_sql
    products_sql "(WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < $ROWS) SELECT i FROM seq)" \
      "1704067200000000 + s.i * 30000000" "1704067200000000 + s.i * 30000000 + s.upd * 1000000"
    echo "COMMIT; PRAGMA journal_mode = WAL;"
  } | sqlite3 -bail "$tmp" >/dev/null
  echo "SQLite seeded in $(($(date +%s) - start)) s"
  seed_check_sql | sqlite3 "$tmp"
  mv "$tmp" "$SQLITE_DB"
}

PG_DB=tienda_bench_v1_$ROWS
pg_url_for() { # database name -> URL on the same server
  python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$PG_URL" "$1"
}
seed_postgres() {
  local admin exists start tmp_url
  admin=$(pg_url_for postgres)
  exists=$(psql "$admin" -XtAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")
  [ "$exists" = 1 ] && { echo "reusing database $PG_DB"; return; }
  psql "$admin" -Xqc "DROP DATABASE IF EXISTS ${PG_DB}_seeding" -c "CREATE DATABASE ${PG_DB}_seeding"
  tmp_url=$(pg_url_for "${PG_DB}_seeding")
  DATABASE_URL=$tmp_url TIENDA_JWT_SECRET=$SECRET RUST_LOG=warn "$TIENDA" migrate
  start=$(date +%s)
  {
    echo '\set ON_ERROR_STOP on'
    echo "SET synchronous_commit = off; SET maintenance_work_mem = '512MB'; SET work_mem = '256MB';"
    echo "BEGIN;"
    # tienda's own statement-level triggers keep product_counts: one update for the whole load.
    vocab_sql
    products_sql "generate_series(1::int8, $ROWS) AS g(i)" \
      "timestamptz '2024-01-01 00:00:00+00' + s.i * interval '30 seconds'" \
      "timestamptz '2024-01-01 00:00:00+00' + s.i * interval '30 seconds' + s.upd * interval '1 second'"
    echo "COMMIT;"
    echo "VACUUM (ANALYZE) products; VACUUM (ANALYZE) stock_ledger; VACUUM (ANALYZE) product_counts;"
  } | psql "$tmp_url" -Xq
  echo "PostgreSQL seeded in $(($(date +%s) - start)) s"
  seed_check_sql | psql "$tmp_url" -XtA
  psql "$admin" -Xqc "ALTER DATABASE ${PG_DB}_seeding RENAME TO $PG_DB"
}

# ------------------------------------------------------------------ measuring
alive() {
  local pid
  for pid in "$TIENDA_PID" "$CEILING_PID"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null; echo "a server (pid $pid) exited with status $?; see $LOG" >&2
      exit 1
    fi
  done
}

run_wrk() { # db scenario-id scenario-name round connections seconds url [random-id prefix]
  local out line
  alive
  out=$(BENCH_RANDOM_PREFIX=${8:-} BENCH_ROWS=$ROWS \
    wrk -t1 -c"$5" -d"$6"s --timeout 30s -s "$ROOT/bench/wrk.lua" "$7" 2>&1) || true
  line=$(grep '^RESULT' <<<"$out" || true)
  if [ -z "$line" ]; then
    echo "wrk failed for $3: $out" >&2
    exit 1
  fi
  # RESULT requests duration_us p50_us p99_us mean_us non2xx errors
  printf '%s\t%s\t%s\t%s\t%s' "$1" "$2" "$3" "$4" "$5" >>"$RESULTS"
  printf '\t%s' ${line#RESULT } >>"$RESULTS"
  printf '\n' >>"$RESULTS"
  awk -v name="$3" -v c="$5" -v l="$line" 'BEGIN {
    split(l, f, " ")
    printf "  %-40s c=%-3s %8.0f req/s  p50 %7.2f ms  p99 %7.2f ms", name, c, f[2] / (f[3] / 1e6), f[4] / 1000, f[5] / 1000
    if (f[7] != 0 || f[8] != 0) printf "  !! %d non-2xx, %d socket errors", f[7], f[8]
    printf "\n"
  }'
}

# Waits until both servers are idle: a statement whose client gave up (wrk stopped, or the 5 s
# pool timeout answered 503) runs on to its end and holds a pooled connection meanwhile, and must
# not be charged to the next scenario.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
settle() {
  local before after waited=0
  while [ "$waited" -lt 400 ]; do
    before=$(( $(cpu_ticks "$TIENDA_PID") + $(cpu_ticks "$CEILING_PID") ))
    sleep 0.3
    after=$(( $(cpu_ticks "$TIENDA_PID") + $(cpu_ticks "$CEILING_PID") ))
    if [ $((after - before)) -le 1 ]; then
      # on PostgreSQL the statement runs on in its backend process
      [ -z "$SETTLE_PG_URL" ] && return 0
      [ "$(psql "$SETTLE_PG_URL" -XtAc "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()")" = 0 ] && return 0
    fi
    waited=$((waited + 1))
  done
  echo "  (servers still busy after 2 minutes)"
}

check_json() { # url python-expression-on-j description
  curl -fsS "$1" | python3 -c "import json,sys; j = json.load(sys.stdin); assert $2, '$3'" \
    || { echo "check failed: $3 ($1)" >&2; exit 1; }
}

measure() { # db-label database-url anchor-file
  local db=$1 url=$2 anchors=$3 cursor_id cursor_price cursor_tie first_after
  local T=http://127.0.0.1:$TIENDA_PORT C=http://127.0.0.1:$CEILING_PORT
  touch "$RESULTS"
  SETTLE_PG_URL=""
  [ "$db" = postgres ] && SETTLE_PG_URL=$url
  start_servers "$url"
  cursor_id=$(python3 bench/listing.py cursor --secret "$SECRET" --anchors "$anchors" --sort id)
  cursor_price=$(python3 bench/listing.py cursor --secret "$SECRET" --anchors "$anchors" --sort price)
  cursor_tie=$(python3 bench/listing.py cursor --secret "$SECRET" --anchors "$anchors" --sort stock \
    --anchor stock_tie:asc)
  # The server must accept the cursors and start right after the anchor.
  first_after=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id:asc"][1] + 1)' "$anchors")
  check_json "$T/api/v1/products?cursor=$cursor_id&limit=20" \
    "j['items'][0]['id'] == $first_after and len(j['items']) == 20" "deep id cursor"
  check_json "$T/api/v1/products?cursor=$cursor_price&limit=20" \
    "len(j['items']) == 20 and j['next_cursor']" "deep price cursor"
  check_json "$T/api/v1/products?cursor=$cursor_tie&limit=20" \
    "len(j['items']) == 20 and j['items'][0]['stock'] == 0" "cursor inside the stock=0 tie"
  check_json "$T/api/v1/products?page=$DEEP_PAGE&per_page=20" \
    "j['items'][-1]['id'] == $DEPTH and j['total'] == $ROWS" "deep offset page"
  check_json "$T/api/v1/products?q=$WORD&limit=20" "len(j['items']) == 20" "q search"
  check_json "$C/products/$DEPTH" "j['id'] == $DEPTH" "ceiling"

  local q2=${WORDS2// /%20}
  # id | name | base url | path | random-id prefix (empty: fixed path)
  local scenarios=(
    "ceiling|ceiling: GET /products/{random id}|$C||$C/products/"
    "get|GET /api/v1/products/{random id}|$T||$T/api/v1/products/"
    "first|first page ?limit=20|$T|/api/v1/products?limit=20|"
    "deep|cursor page at depth $DEPTH|$T|/api/v1/products?cursor=$cursor_id&limit=20|"
    "first_price|first page ?limit=20&sort=price|$T|/api/v1/products?limit=20&sort=price|"
    "deep_price|cursor page at depth $DEPTH, sort=price|$T|/api/v1/products?cursor=$cursor_price&limit=20|"
    "offset_deep|offset ?page=$DEEP_PAGE&per_page=20|$T|/api/v1/products?page=$DEEP_PAGE&per_page=20|"
    "offset_first|offset page 1 (maintained total)|$T|/api/v1/products|"
    "deep_tie|cursor page sort=stock inside the stock=0 tie|$T|/api/v1/products?cursor=$cursor_tie&limit=20|"
    "offset_count|offset page 1 ?min_price=500.00 (price counts)|$T|/api/v1/products?min_price=500.00|"
    "q_offset|?q=$WORD (relevance, page 1 + count)|$T|/api/v1/products?q=$WORD|"
    "q|?q=$WORD&limit=20 (relevance)|$T|/api/v1/products?q=$WORD&limit=20|"
    "q2|?q=$WORDS2&limit=20 (relevance)|$T|/api/v1/products?q=$q2&limit=20|"
    "offset_count2|offset page 1 ?min_price=500.00&in_stock=true (price counts)|$T|/api/v1/products?min_price=500.00&in_stock=true|"
  )
  note "$db: warm-up (2 s each)"
  for s in "${scenarios[@]}"; do
    IFS='|' read -r id name base path prefix <<<"$s"
    BENCH_RANDOM_PREFIX=$prefix BENCH_ROWS=$ROWS wrk -t1 -c"$CONNECTIONS" -d2s --timeout 30s \
      -s "$ROOT/bench/wrk.lua" "$base$path" >/dev/null 2>&1 || true
    settle
  done
  for round in $(seq 1 "$ROUNDS"); do
    note "$db: round $round of $ROUNDS"
    for s in "${scenarios[@]}"; do
      IFS='|' read -r id name base path prefix <<<"$s"
      run_wrk "$db" "$id" "$name" "$round" "$CONNECTIONS" "$DURATION" "$base$path" "$prefix"
      settle
      run_wrk "$db" "$id" "$name" "$round" 1 "$LAT_DURATION" "$base$path" "$prefix"
      settle
    done
  done
  stop_servers
}

plans() { # db-label database-url anchor-file
  local out=$DATA/plans-$1.txt
  note "$1: query plans -> $out"
  if [ "$1" = sqlite ]; then
    python3 bench/listing.py plans --dialect sqlite --anchors "$3" --word "$WORD" --depth "$DEPTH" \
      | CEILING_DATABASE_URL=$2 "$CEILING" explain >"$out"
  else
    python3 bench/listing.py plans --dialect postgres --anchors "$3" --word "$WORD" --depth "$DEPTH" \
      | psql "$2" -XqAt >"$out" 2>&1
  fi
  grep -c '^-- ' "$out" | sed 's/^/  shapes: /'
}

# shellcheck source=bench/issue12.sh
source "$ROOT/bench/issue12.sh"

# ------------------------------------------------------------------ main
note "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); rows $ROWS, $ROUNDS rounds of ${DURATION}s at -c$CONNECTIONS and ${LAT_DURATION}s at -c1"
git -C "$ROOT" log -1 --format='commit %h %s' 2>/dev/null || true

if [ "$SQLITE" = 1 ]; then
  note "SQLite: seeding $ROWS products"
  seed_sqlite
  if [ "$SEED_ONLY" = 0 ] && [ "$WORKLOAD" = issue12 ]; then
    issue12_measure sqlite "sqlite://$SQLITE_DB"
  elif [ "$SEED_ONLY" = 0 ]; then
  python3 bench/listing.py anchors --sqlite "$SQLITE_DB" --depth "$DEPTH" --word "$WORD" \
    >"$DATA/anchors-sqlite.json"
  echo "q=$WORD matches $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["matches"])' "$DATA/anchors-sqlite.json") products"
  measure sqlite "sqlite://$SQLITE_DB" "$DATA/anchors-sqlite.json"
  [ "$PLANS" = 1 ] && plans sqlite "sqlite://$SQLITE_DB" "$DATA/anchors-sqlite.json"
  fi
fi

if [ -n "$PG_URL" ]; then
  note "PostgreSQL: seeding $ROWS products"
  seed_postgres
  if [ "$SEED_ONLY" = 0 ] && [ "$WORKLOAD" = issue12 ]; then
    PG_BENCH_URL=$(pg_url_for "$PG_DB")
    psql "$PG_BENCH_URL" -Xqc "VACUUM (ANALYZE) products"
    issue12_measure postgres "$PG_BENCH_URL"
  elif [ "$SEED_ONLY" = 0 ]; then
  PG_BENCH_URL=$(pg_url_for "$PG_DB")
  # Index-only scans (the counts) need the visibility map set, which a VACUUM cannot do while
  # any session on the server holds an old snapshot (an idle transaction of a test suite, say).
  psql "$PG_BENCH_URL" -Xqc "VACUUM (ANALYZE) products"
  echo "all-visible pages: $(psql "$PG_BENCH_URL" -XtAc "SELECT relallvisible || ' of ' || relpages FROM pg_class WHERE relname = 'products'")"
  python3 bench/listing.py anchors --psql "$PG_BENCH_URL" --depth "$DEPTH" --word "$WORD" \
    >"$DATA/anchors-postgres.json"
  measure postgres "$PG_BENCH_URL" "$DATA/anchors-postgres.json"
  [ "$PLANS" = 1 ] && plans postgres "$PG_BENCH_URL" "$DATA/anchors-postgres.json"
  fi
fi
[ "$SEED_ONLY" = 1 ] && exit 0

note "summary (median over $ROUNDS rounds; raw: $RESULTS)"
if [ "$WORKLOAD" = issue12 ]; then
  python3 bench/issue12_summary.py "$RESULTS" | tee "$DATA/summary-$RUN_ID.md"
else
  python3 bench/summary.py "$RESULTS" | tee "$DATA/summary-$RUN_ID.md"
fi
