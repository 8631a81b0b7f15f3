#!/usr/bin/env python3
"""clean_windows.py [--window 60] [--grace 2] [--settle 8] KIND=RESULTS_DIR ...

Like summarize.py, but keeps only the measurements that did not overlap a receipt-window close
of the miner: windows end on multiples of --window seconds of UTC time and are closed --grace
seconds later; the close (hashing, signing, journal writes) is taken to last --settle seconds.
A measurement [end - wall_s, end] (end = the time stamp of its line in the harness's run.log)
is kept when it lies entirely outside every [close, close + settle]. Prints per transport and
kind the median µs CPU/query (and n) of the kept measurements and of the others.
"""
import re
import statistics
import sys

args = sys.argv[1:]
opt = {"--window": 60, "--grace": 2, "--settle": 8}
while args and args[0] in opt:
    opt[args[0]] = int(args[1]); args = args[2:]
W, G, S = opt["--window"], opt["--grace"], opt["--settle"]
NAMES = {"t": "ticketed", "u": "unticketed", "e": "unticketed+EDNS"}
LINE = re.compile(r"^\[(\d\d):(\d\d):(\d\d)\] r\d+ max\s+ours\s+(\w+)\s.*\(([0-9.]+)us/q\)")

kept, hit = {}, {}
for a in args:
    kind, d = a.split("=", 1)
    walls = []
    with open(f"{d}/raw.tsv") as f:
        hdr = f.readline().rstrip("\n").split("\t")
        for l in f:
            r = dict(zip(hdr, l.rstrip("\n").split("\t")))
            if r["phase"] == "max" and r["target"] == "ours":
                walls.append(float(r["wall_s"]))
    i = 0
    for l in open(f"{d}/run.log"):
        m = LINE.match(l)
        if not m:
            continue
        end = int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3]) + 1  # stamp truncated to the second
        start = end - walls[i] - 1; i += 1
        overlaps = any(start < c + S and end > c
                       for c in range(int(start // W) * W + G - W, int(end) + W, W))
        (hit if overlaps else kept).setdefault((m[4], kind), []).append(float(m[5]))

modes = sorted({k[0] for k in list(kept) + list(hit)}, key=["udp", "tcp", "dot", "doh"].index)
print(f"window {W}s, close {G}s after its end, settle {S}s")
print("transport | kind | median µs/q clear of closes (n) | median µs/q overlapping a close (n)")
for m in modes:
    for k in "uet":
        a, b = kept.get((m, k), []), hit.get((m, k), [])
        if not a and not b:
            continue
        f = lambda xs: f"{statistics.median(xs):.2f} ({len(xs)}: {' '.join(f'{x:.2f}' for x in xs)})" if xs else "- (0)"
        print(f"{m} | {NAMES[k]} | {f(a)} | {f(b)}")
    u, e, t = (kept.get((m, k)) for k in "uet")
    if t and u:
        print(f"{m} | ratio ticketed/unticketed (clear of closes) | {statistics.median(t) / statistics.median(u):.3f}")
    if t and e:
        print(f"{m} | ratio ticketed/unticketed+EDNS (clear of closes) | {statistics.median(t) / statistics.median(e):.3f}")
