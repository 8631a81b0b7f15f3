#!/usr/bin/env python3
"""summarize.py KIND=RESULTS_DIR ... : ticketed vs unticketed server CPU per query.

Each argument is `t=DIR` (ticketed harness run), `u=DIR` (unticketed, plain queries) or
`e=DIR` (unticketed with EDNS0, no option), in the order they ran. Reads DIR/raw.tsv of the
peer harness (bench/peers/run.sh) and prints, per transport (phase max, target "ours"): the
median µs CPU/query and q/s over all repetitions of each kind and the ratios t/u and t/e; then
every repetition, and the ratio of each ticketed run to the run next to it (drift check).
"""
import csv
import statistics
import sys

NAMES = {"t": "ticketed", "u": "unticketed", "e": "unticketed+EDNS"}


def load(d):
    rows = {}
    with open(f"{d}/raw.tsv") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            if r["phase"] != "max" or r["target"] != "ours":
                continue
            rows.setdefault(r["mode"], []).append(
                (int(r["rep"]), float(r["srv_cpu_us_per_q"]), float(r["qps"]),
                 float(r["other_pct"]), float(r["lost"]), float(r["srv_util_pct"]))
            )
    return rows


runs = []
for a in sys.argv[1:]:
    kind, d = a.split("=", 1)
    assert kind in NAMES, a
    runs.append((kind, d, load(d)))
modes = []
for _, _, rows in runs:
    modes += [m for m in rows if m not in modes]


def med(kind, m, col):
    xs = [x[col] for k, _, rows in runs if k == kind for x in rows.get(m, [])]
    return (statistics.median(xs), len(xs)) if xs else (None, 0)


print("medians over all repetitions of each kind (phase max):")
print("transport | unticketed µs/q | unticketed+EDNS µs/q | ticketed µs/q | t/u | t/e | "
      "unticketed q/s | unticketed+EDNS q/s | ticketed q/s | n u/e/t")
for m in modes:
    (cu, nu), (ce, ne), (ct, nt) = (med(k, m, 1) for k in "uet")
    qu, qe, qt = (med(k, m, 2)[0] for k in "uet")
    f = lambda v, p=2: "-" if v is None else f"{v:.{p}f}"
    q = lambda v: "-" if v is None else f"{v:,.0f}"
    r = lambda a, b: "-" if a is None or b is None else f"{a / b:.3f}"
    print(f"{m} | {f(cu)} | {f(ce)} | {f(ct)} | {r(ct, cu)} | {r(ct, ce)} | {q(qu)} | {q(qe)} | {q(qt)} | {nu}/{ne}/{nt}")

print()
print("every repetition: µs CPU/q, q/s, server % of its core, other tenants % of a core, lost")
for i, (k, d, rows) in enumerate(runs, 1):
    for m in modes:
        xs = rows.get(m, [])
        print(f"  run {i} {NAMES[k]:15s} {m:3s}: us/q " + " ".join(f"{x[1]:.2f}" for x in xs)
              + " | q/s " + " ".join(f"{x[2]:.0f}" for x in xs)
              + " | srv% " + " ".join(f"{x[5]:.0f}" for x in xs)
              + " | other% " + " ".join(f"{x[3]:.0f}" for x in xs)
              + " | lost " + " ".join(f"{x[4]:.0f}" for x in xs))

print()
print("adjacent runs: ratio of the median µs/q of a ticketed run to that of the run next to it")
for i in range(len(runs) - 1):
    (k1, _, r1), (k2, _, r2) = runs[i], runs[i + 1]
    if (k1 == "t") == (k2 == "t"):
        continue
    (rt, ro, ko) = (r1, r2, k2) if k1 == "t" else (r2, r1, k1)
    parts = [f"{m} {statistics.median(x[1] for x in rt[m]) / statistics.median(x[1] for x in ro[m]):.3f}"
             for m in modes if rt.get(m) and ro.get(m)]
    print(f"  runs {i + 1}-{i + 2} (ticketed / {NAMES[ko]}): " + ", ".join(parts))
