#!/usr/bin/env python3
"""Summarises a bench/run.sh results file: one markdown table per database (median over the
rounds), the ratios and the targets of issue 3.

    summary.py RESULTS.tsv [MORE.tsv ...]

Columns of the file: db, scenario id, scenario name, round, connections, requests,
duration (us), p50 (us), p99 (us), mean (us), non-2xx responses, socket errors.
"""

import statistics
import sys
from collections import OrderedDict


def load(paths):
    runs = OrderedDict()  # (db, id) -> {"name", conns -> [(rps, p50 ms, p99 ms, bad)]}
    for path in paths:
        load_one(path, runs)
    return runs


def load_one(path, runs):
    with open(path) as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 12:
                continue
            db, sid, name, _round, conns = fields[:5]
            requests, duration, p50, p99, _mean, bad, errors = (float(x) for x in fields[5:12])
            entry = runs.setdefault((db, sid), {"name": name, "runs": {}})
            entry["runs"].setdefault(int(conns), []).append(
                (requests / (duration / 1e6), p50 / 1000, p99 / 1000, int(bad + errors)))


def median(values):
    return statistics.median(values) if values else float("nan")


def stats(entry, conns):
    runs = entry["runs"].get(conns, [])
    return {
        "rps": median([r[0] for r in runs]),
        "p50": median([r[1] for r in runs]),
        "p99": median([r[2] for r in runs]),
        "bad": sum(r[3] for r in runs),
    }


def main():
    runs = load(sys.argv[1:])
    dbs = list(OrderedDict.fromkeys(db for db, _ in runs))
    for db in dbs:
        entries = OrderedDict((sid, e) for (d, sid), e in runs.items() if d == db)
        loaded = max(c for e in entries.values() for c in e["runs"] if c != 1)
        print(f"\n### {db}\n")
        print(f"| scenario | req/s (c={loaded}) | p50 ms (c={loaded}) | p99 ms (c={loaded}) "
              "| req/s (c=1) | p50 ms (c=1) | p99 ms (c=1) |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for sid, entry in entries.items():
            hi, lo = stats(entry, loaded), stats(entry, 1)
            flag = " (errors!)" if hi["bad"] or lo["bad"] else ""
            print(f"| {entry['name']}{flag} | {hi['rps']:,.0f} | {hi['p50']:.2f} | {hi['p99']:.2f} "
                  f"| {lo['rps']:,.0f} | {lo['p50']:.2f} | {lo['p99']:.2f} |")

        def get(sid, conns, what):
            return stats(entries[sid], conns)[what] if sid in entries else float("nan")

        def verdict(ok):
            return "met" if ok else "MISSED"

        ratio_get = get("get", loaded, "rps") / get("ceiling", loaded, "rps")
        ratio_get1 = get("get", 1, "rps") / get("ceiling", 1, "rps")
        deep1 = get("deep", 1, "p50") / get("first", 1, "p50")
        deep16 = get("deep", loaded, "p50") / get("first", loaded, "p50")
        deep_price1 = get("deep_price", 1, "p50") / get("first_price", 1, "p50")
        tie1 = get("deep_tie", 1, "p50") / get("first", 1, "p50")
        q1 = get("q", 1, "p50")
        q2 = get("q2", 1, "p50")
        q_off1 = get("q_offset", 1, "p50")
        offset1 = get("offset_deep", 1, "p50") / get("first", 1, "p50")
        count1 = get("offset_count", 1, "p50") / get("offset_first", 1, "p50")
        count2 = get("offset_count2", 1, "p50") / get("offset_first", 1, "p50")
        print()
        print(f"- GET by id / ceiling throughput: {ratio_get:.0%} at c={loaded} "
              f"({ratio_get1:.0%} at c=1); target >= 70%: {verdict(ratio_get >= 0.70)}")
        print(f"- deep cursor p50 / first page p50: {deep1:.2f}x at c=1 ({deep16:.2f}x at "
              f"c={loaded}); sort=price {deep_price1:.2f}x; target <= 1.5x: {verdict(deep1 <= 1.5)}")
        print(f"- q search p50 at c=1, one word in 1%: {q1:.2f} ms keyset, {q_off1:.2f} ms offset "
              f"page with count; target < 20 ms: {verdict(q1 < 20 and q_off1 < 20)}; two words "
              f"in 0.08%: {q2:.2f} ms ({verdict(q2 < 20)})")
        print(f"- cursor inside the stock=0 tie p50 / first page p50: {tie1:.1f}x at c=1")
        print(f"- deep offset page p50 / first page p50: {offset1:.1f}x at c=1 "
              "(why cursors exist)")
        print(f"- offset page 1 with a price-filtered total (min_price) / with the unfiltered total: "
              f"{count1:.1f}x p50 at c=1; with min_price&in_stock: {count2:.1f}x")


if __name__ == "__main__":
    main()
