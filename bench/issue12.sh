# Issue 12's workload for bench/run.sh (`--workload issue12`; sourced, not run on its own).
#
# Two scenarios at $CONNECTIONS connections (64) from `wrk -t2`, on a catalogue of $ROWS (10,000)
# products: GET /products/{random id}, and GET /products?page={random 1..50}&per_page=20, an
# offset page (tienda's and Flask's carry their `total`; the ceiling's does not count one).
# Three servers read the same database: tienda's release build as a user runs it (JSON request
# log at the default `info` level written to a file, metrics on), the bare ceiling
# (examples/ceiling.rs), and the original Flask stack under `gunicorn -w 4` (bench/flask/app.py)
# when its virtualenv can be made. Every scenario runs once per round on each server in turn
# (rounds interleaved), and besides wrk's figures the CPU the server process used meanwhile is
# read from /proc/<pid>/stat (utime + stime; for gunicorn the master and its workers; on
# PostgreSQL also the database's backends, reported apart).

FLASK_PORT=${BENCH_FLASK_PORT:-18070}
FLASK_VENV=${BENCH_FLASK_VENV:-/tmp/tienda-bench-flask}
WRK_THREADS=${BENCH_WRK_THREADS:-2}
LIST_PAGES=50

flask_available() {
  [ -x "$FLASK_VENV/bin/gunicorn" ] && return 0
  [ -n "${BENCH_NO_FLASK:-}" ] && return 1
  note "setting up Flask in $FLASK_VENV (pip install flask flask-sqlalchemy gunicorn psycopg2-binary)"
  python3 -m venv "$FLASK_VENV" \
    && "$FLASK_VENV/bin/pip" install -q flask flask-sqlalchemy gunicorn psycopg2-binary \
    || { echo "  (no Flask: the Flask column stays empty)"; return 1; }
}

# "pid:ticks" for each pid given (utime + stime, in clock ticks).
cpu_snapshot() {
  local pid
  for pid in "$@"; do
    awk -v p="$pid" '{ print p ":" ($14 + $15) }' "/proc/$pid/stat" 2>/dev/null || true
  done
}
# Ticks used between two snapshots (a pid missing from the first started at zero).
cpu_delta() { # before after
  awk -v b="$1" -v a="$2" 'BEGIN {
    n = split(b, bs, " "); for (i = 1; i <= n; i++) { split(bs[i], kv, ":"); before[kv[1]] = kv[2] }
    n = split(a, as, " "); for (i = 1; i <= n; i++) { split(as[i], kv, ":"); sum += kv[2] - before[kv[1]] }
    print sum + 0
  }'
}
server_pids() { # server
  case $1 in
    tienda) echo "$TIENDA_PID" ;;
    ceiling) echo "$CEILING_PID" ;;
    flask) echo "$FLASK_PID" $(pgrep -P "$FLASK_PID" || true) ;;
  esac
}
db_pids() {
  [ -n "$SETTLE_PG_URL" ] || return 0
  psql "$SETTLE_PG_URL" -XtAc "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
}

issue12_wrk() { # db scenario server round url-prefix url-suffix max
  local out line pids db_before db_after before after
  alive
  pids=$(server_pids "$3")
  before=$(cpu_snapshot $pids)
  db_before=$(cpu_snapshot $(db_pids))
  out=$(BENCH_RANDOM_PREFIX=$5 BENCH_RANDOM_SUFFIX=$6 BENCH_RANDOM_MAX=$7 BENCH_ROWS=$ROWS \
    wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION"s --timeout 30s -s "$ROOT/bench/wrk.lua" "${5}1" 2>&1) || true
  after=$(cpu_snapshot $pids)
  db_after=$(cpu_snapshot $(db_pids))
  line=$(grep '^RESULT' <<<"$out" || true)
  [ -n "$line" ] || { echo "wrk failed for $2 on $3: $out" >&2; exit 1; }
  local ticks db_ticks
  ticks=$(cpu_delta "$before" "$after")
  db_ticks=$(cpu_delta "$db_before" "$db_after")
  # db scenario server round connections | requests duration_us p50_us p99_us mean_us non2xx errors | ticks db_ticks hz
  printf '%s\t%s\t%s\t%s\t%s' "$1" "$2" "$3" "$4" "$CONNECTIONS" >>"$RESULTS"
  printf '\t%s' ${line#RESULT } "$ticks" "$db_ticks" "$(getconf CLK_TCK)" >>"$RESULTS"
  printf '\n' >>"$RESULTS"
  awk -v name="$2 on $3" -v l="$line" -v t="$ticks" -v d="$db_ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN {
    split(l, f, " ")
    printf "  %-22s %8.0f req/s  p50 %6.2f ms  p99 %7.2f ms  cpu %5.0f us/req", name, f[2] / (f[3] / 1e6), f[4] / 1000, f[5] / 1000, t * 1e6 / hz / f[2]
    if (d > 0) printf " (+ db %4.0f us/req)", d * 1e6 / hz / f[2]
    if (f[7] != 0 || f[8] != 0) printf "  !! %d non-2xx, %d socket errors", f[7], f[8]
    printf "\n"
  }'
}

issue12_measure() { # db-label database-url
  local db=$1 url=$2 flask=0 flask_url request_log
  local T=http://127.0.0.1:$TIENDA_PORT C=http://127.0.0.1:$CEILING_PORT F=http://127.0.0.1:$FLASK_PORT
  touch "$RESULTS"
  SETTLE_PG_URL=""
  [ "$db" = postgres ] && SETTLE_PG_URL=$url
  request_log=$DATA/issue12-requests-$db-$RUN_ID.log
  echo "== $db" >>"$LOG"
  # As a user runs it: RUST_LOG unset (info: one JSON line per request), metrics on (the
  # default), the log written to a file.
  env -u RUST_LOG DATABASE_URL="$url" TIENDA_ADDR=127.0.0.1:$TIENDA_PORT TIENDA_JWT_SECRET=$SECRET \
    TIENDA_LOG_FORMAT=json "$TIENDA" serve >"$request_log" 2>>"$LOG" &
  TIENDA_PID=$!
  CEILING_DATABASE_URL=$url CEILING_ADDR=127.0.0.1:$CEILING_PORT "$CEILING" >>"$LOG" 2>&1 &
  CEILING_PID=$!
  PIDS+=("$TIENDA_PID" "$CEILING_PID")
  local servers=(ceiling tienda)
  if flask_available; then
    flask_url=$url
    [ "$db" = sqlite ] && flask_url=sqlite:///${url#sqlite://}
    [ "$db" = postgres ] && flask_url=postgresql+psycopg2://${url#*://}
    FLASK_DATABASE_URL=$flask_url "$FLASK_VENV/bin/gunicorn" -w 4 -b 127.0.0.1:$FLASK_PORT \
      --chdir "$ROOT/bench/flask" app:app >>"$LOG" 2>&1 &
    FLASK_PID=$!
    PIDS+=("$FLASK_PID")
    servers+=(flask)
    flask=1
  fi
  wait_http "$T/api/v1/products/1"
  wait_http "$C/products/1"
  if [ "$flask" = 1 ] && ! (wait_http "$F/api/v1/products/1"); then
    echo "  (Flask did not start, see $LOG: the Flask column stays empty)"
    kill "$FLASK_PID" 2>/dev/null || true
    flask=0
    servers=(ceiling tienda)
  fi
  # The same page from each server; tienda and Flask count the total.
  check_json "$T/api/v1/products?page=3&per_page=20" \
    "j['items'][0]['id'] == 41 and len(j['items']) == 20 and j['total'] == $ROWS" "tienda page 3"
  check_json "$C/products?page=3&per_page=20" \
    "j['items'][0]['id'] == 41 and len(j['items']) == 20" "ceiling page 3"
  [ "$flask" = 1 ] && check_json "$F/api/v1/products?page=3&per_page=20" \
    "j['items'][0]['id'] == 41 and len(j['items']) == 20 and j['total'] == $ROWS" "Flask page 3"
  [ "$flask" = 1 ] && check_json "$F/api/v1/products/7" \
    "j == json.loads(__import__('urllib.request').request.urlopen('$T/api/v1/products/7').read())" \
    "Flask and tienda answer the same product"

  local base get_prefix list_prefix
  note "$db: warm-up (2 s each)"
  for round in warmup $(seq 1 "$ROUNDS"); do
    [ "$round" = warmup ] || note "$db: round $round of $ROUNDS (load $(cut -d' ' -f1-3 /proc/loadavg))"
    for scenario in get list; do
      for server in "${servers[@]}"; do
        case $server in
          tienda) base=$T/api/v1/products ;;
          ceiling) base=$C/products ;;
          flask) base=$F/api/v1/products ;;
        esac
        if [ "$scenario" = get ]; then
          set -- "$base/" "" "$ROWS"
        else
          set -- "$base?page=" "&per_page=20" "$LIST_PAGES"
        fi
        if [ "$round" = warmup ]; then
          BENCH_RANDOM_PREFIX=$1 BENCH_RANDOM_SUFFIX=$2 BENCH_RANDOM_MAX=$3 BENCH_ROWS=$ROWS \
            wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d2s --timeout 30s -s "$ROOT/bench/wrk.lua" "${1}1" >/dev/null 2>&1 || true
        else
          issue12_wrk "$db" "$scenario" "$server" "$round" "$1" "$2" "$3"
        fi
        settle
      done
    done
  done
  # The log was on: one line per request served.
  echo "  request log: $(wc -l <"$request_log") lines, $(du -h "$request_log" | cut -f1); the last one:"
  tail -n 1 "$request_log" | sed 's/^/    /'
  kill "$TIENDA_PID" "$CEILING_PID" 2>/dev/null || true
  [ "$flask" = 1 ] && kill "$FLASK_PID" 2>/dev/null
  wait "$TIENDA_PID" "$CEILING_PID" 2>/dev/null || true
  [ "$flask" = 1 ] && { wait "$FLASK_PID" 2>/dev/null || true; }
  PIDS=()
  rm -f "$request_log"
}
