#!/usr/bin/env python3
"""Renders the plans bench/run.sh captured as markdown, for docs/PERFORMANCE.md.

    plans_md.py bench/.data/plans-sqlite.txt bench/.data/plans-postgres.txt > plans.md

For each shape: the SQLite plan and median time, the PostgreSQL custom plan (EXPLAIN ANALYZE,
BUFFERS; planning lines left out) and whether the generic plan a prepared statement may switch
to differs from it.
"""

import re
import sys
from collections import OrderedDict


def parse_sqlite(path):
    shapes = OrderedDict()
    title = None
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("-- SQLite"):
                continue
            if line.startswith("-- "):
                title = line[3:]
                shapes[title] = {"sql": None, "plan": [], "time": None, "rows": None}
            elif title is None or not line:
                continue
            elif line.startswith("=>"):
                m = re.match(r"=> (\d+) rows, median of \d+ runs ([\d.]+) ms", line)
                if m:
                    shapes[title]["rows"], shapes[title]["time"] = int(m[1]), float(m[2])
            elif "`--" in line:
                shapes[title]["plan"].append(line)
            elif shapes[title]["sql"] is None:
                shapes[title]["sql"] = line
    return shapes


def parse_postgres(path):
    shapes = OrderedDict()
    title = None
    mode = None
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("-- "):
                title = line[3:]
                shapes[title] = {"sql": None, "custom": [], "generic": []}
                mode = None
            elif title is None:
                continue
            elif line in ("[custom plan]", "[generic plan]"):
                mode = line[1:].split()[0]
            elif mode is None and shapes[title]["sql"] is None and line:
                shapes[title]["sql"] = line
            elif mode and line:
                shapes[title][mode].append(line)
    return shapes


def execution_ms(plan):
    for line in plan:
        m = re.match(r"\s*Execution Time: ([\d.]+) ms", line)
        if m:
            return float(m[1])
    return None


def shape_of(plan):
    """The plan without timings, buffers, planning lines and literal values: its structure."""
    out = []
    skip = False
    for line in plan:
        stripped = line.strip()
        if stripped.startswith(("Planning", "Execution Time", "Buffers", "JIT")):
            skip = stripped == "Planning:"
            continue
        if skip and stripped.startswith("Buffers"):
            continue
        skip = False
        line = re.sub(r"\(actual[^)]*\)", "", line)
        line = re.sub(r"'[^']*'::[a-z ]+|\$\d+", "?", line)
        line = re.sub(r"Rows Removed by (Filter|Index Recheck): \d+", "", line)
        line = re.sub(r"(Heap Blocks|Batches|Memory Usage|Sort Method|Worker \d+).*", "", line)
        if line.strip():
            out.append(line.rstrip())
    return out


def printable(plan):
    out = []
    in_planning = False
    for line in plan:
        stripped = line.strip()
        if stripped == "Planning:":
            in_planning = True
            continue
        if in_planning and stripped.startswith("Buffers"):
            continue
        in_planning = False
        if stripped.startswith("Planning Time"):
            continue
        out.append(line)
    return out


def main():
    sqlite = parse_sqlite(sys.argv[1]) if len(sys.argv) > 1 else {}
    postgres = parse_postgres(sys.argv[2]) if len(sys.argv) > 2 else {}
    titles = list(OrderedDict.fromkeys(list(sqlite) + list(postgres)))
    print("| # | shape | SQLite access path | SQLite ms | PostgreSQL access path | PG ms | PG generic plan |")
    print("|---|---|---|---:|---|---:|---|")
    for n, title in enumerate(titles, 1):
        s = sqlite.get(title)
        p = postgres.get(title)
        s_path = "; ".join(line.split("`--", 1)[1] for line in s["plan"]) if s else "-"
        s_ms = f"{s['time']:.2f}" if s and s["time"] is not None else "-"
        if p:
            nodes = [line.strip().lstrip("-> ").split(" (actual")[0] for line in p["custom"]
                     if "(actual" in line]
            p_path = "; ".join(nodes)
            ms = execution_ms(p["custom"])
            p_ms = f"{ms:.2f}" if ms is not None else "-"
            generic = "same" if shape_of(p["custom"]) == shape_of(p["generic"]) else (
                f"differs ({execution_ms(p['generic']):.2f} ms)")
        else:
            p_path, p_ms, generic = "-", "-", "-"
        print(f"| {n} | {title} | {s_path.replace('|', '/')} | {s_ms} | {p_path.replace('|', '/')} "
              f"| {p_ms} | {generic} |")
    print()
    for n, title in enumerate(titles, 1):
        s = sqlite.get(title)
        p = postgres.get(title)
        print(f"#### {n}. {title}\n")
        if s:
            print(f"SQLite ({s['time']:.2f} ms, {s['rows']} rows):\n")
            print("```sql\n" + s["sql"] + "\n```\n")
            print("```text\n" + "\n".join(s["plan"]) + "\n```\n")
        if p:
            print("PostgreSQL, EXPLAIN (ANALYZE, BUFFERS) of the prepared statement, custom plan:\n")
            print("```sql\n" + (p["sql"] or "") + "\n```\n")
            print("```text\n" + "\n".join(printable(p["custom"])) + "\n```\n")
            if shape_of(p["custom"]) != shape_of(p["generic"]):
                print("Generic plan (what a prepared statement may switch to after five runs):\n")
                print("```text\n" + "\n".join(printable(p["generic"])) + "\n```\n")
            else:
                print("The generic plan has the same shape.\n")


if __name__ == "__main__":
    main()
