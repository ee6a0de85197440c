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
}
for hist in ("tienda_http_request_duration_seconds", "tienda_db_pool_acquire_duration_seconds"):
    ALLOWED.update(hist + suffix for suffix in ("_bucket", "_sum", "_count"))

# Bare histogram names are fine in prose (comments, annotations), not in queries.
PROSE = ALLOWED | {"tienda_http_request_duration_seconds", "tienda_db_pool_acquire_duration_seconds"}

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

echo "deploy/check.sh: all checks passed"
