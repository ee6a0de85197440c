"""Renders the raw results of `bench/run.sh --workload issue12` as the issue's table: medians
over the interleaved rounds of each (engine, scenario, server), ratios of those medians, and the
per-round ratios beside them so the spread shows.

    python3 bench/issue12_summary.py bench/.data/results-<run>.tsv
"""

import statistics
import sys
from collections import defaultdict

SCENARIOS = {
    "get": "GET /products/{random id}",
    "list": "GET /products?page={random 1..50}&per_page=20",
}
ENGINES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def load(path):
    runs = defaultdict(dict)  # (db, scenario, server) -> round -> figures
    with open(path) as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) < 15:
                continue
            db, scenario, server, rnd = cols[0], cols[1], cols[2], cols[3]
            requests, duration = int(cols[5]), int(cols[6])
            p50, p99 = float(cols[7]), float(cols[8])
            ticks, db_ticks, hz = int(cols[12]), int(cols[13]), int(cols[14])
            runs[(db, scenario, server)][rnd] = {
                "rps": requests / (duration / 1e6),
                "p50": p50 / 1000,
                "p99": p99 / 1000,
                "cpu": ticks * 1e6 / hz / requests,
                "db_cpu": db_ticks * 1e6 / hz / requests,
                "errors": int(cols[10]) + int(cols[11]),
            }
    return runs


def median(runs, key, figure):
    rounds = runs.get(key)
    if not rounds:
        return None
    return statistics.median(r[figure] for r in rounds.values())


def per_round_ratio(runs, a, b, figure):
    ra, rb = runs.get(a, {}), runs.get(b, {})
    ratios = sorted(ra[k][figure] / rb[k][figure] for k in ra if k in rb and rb[k][figure])
    if not ratios:
        return ""
    return f" ({ratios[0]:.2f}-{ratios[-1]:.2f})" if len(ratios) > 1 else ""


def fmt(value, digits=0):
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def main(path):
    runs = load(path)
    for db, engine in ENGINES.items():
        if not any(k[0] == db for k in runs):
            continue
        rounds = max(len(v) for k, v in runs.items() if k[0] == db)
        print(f"\n### {engine} (medians of {rounds} interleaved rounds)\n")
        print("| scenario | Flask -w 4 | bare ceiling | tienda | tienda / ceiling | tienda / Flask |")
        print("|---|---:|---:|---:|---:|---:|")
        for scenario, label in SCENARIOS.items():
            f, c, t = ((db, scenario, s) for s in ("flask", "ceiling", "tienda"))
            mf, mc, mt = (median(runs, k, "rps") for k in (f, c, t))
            note = " (no total)" if scenario == "list" else ""
            tc = f"{mt / mc:.2f}{per_round_ratio(runs, t, c, 'rps')}" if mt and mc else "-"
            tf = f"{mt / mf:.1f}x" if mt and mf else "-"
            print(f"| {label} req/s | {fmt(mf)} | {fmt(mc)}{note} | {fmt(mt)} | {tc} | {tf} |")
        for scenario, label in (("list", "list request"), ("get", "GET by id")):
            f, c, t = ((db, scenario, s) for s in ("flask", "ceiling", "tienda"))
            mf, mc, mt = (median(runs, k, "cpu") for k in (f, c, t))
            tc = f"{mt / mc:.2f}{per_round_ratio(runs, t, c, 'cpu')}" if mt and mc else "-"
            tf = f"{mt / mf:.2f}" if mt and mf else "-"
            print(f"| server CPU per {label}, us | {fmt(mf)} | {fmt(mc)} | {fmt(mt)} | {tc} | {tf} |")
            if db == "postgres":
                mf, mc, mt = (median(runs, k, "db_cpu") for k in (f, c, t))
                print(f"| PostgreSQL backends' CPU per {label}, us | {fmt(mf)} | {fmt(mc)} | {fmt(mt)} | | |")
        print("\nLatency at 64 connections, p50 / p99 ms (medians):\n")
        print("| scenario | Flask -w 4 | bare ceiling | tienda |")
        print("|---|---:|---:|---:|")
        for scenario, label in SCENARIOS.items():
            cells = []
            for server in ("flask", "ceiling", "tienda"):
                k = (db, scenario, server)
                p50, p99 = median(runs, k, "p50"), median(runs, k, "p99")
                cells.append("-" if p50 is None else f"{p50:.2f} / {p99:.2f}")
            print(f"| {label} | " + " | ".join(cells) + " |")
        errors = sum(r["errors"] for k, v in runs.items() if k[0] == db for r in v.values())
        if errors:
            print(f"\n!! {errors} non-2xx answers or socket errors in the {engine} runs")


if __name__ == "__main__":
    main(sys.argv[1])
