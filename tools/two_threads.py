#!/usr/bin/python3
"""two_threads.py — 1-thread vs 2-thread table from granattn-bench JSON.

Reads Google Benchmark JSON written by granattn-bench with
--benchmark_repetitions=R (ideally --benchmark_enable_random_interleaving=true,
so that noise on a shared machine hits both thread counts) and prints, per
shape (family, N, H, mix, mode, cache) and per input file (a label=FILE pair,
e.g. two builds measured in one run; several files may share a label: their
repetitions are pooled), the wall time at 1 and 2 threads and the ratio
t(1 thread) / t(2 threads): "min" is the fastest single step (the counter
step_min_us of granattn-bench --step-min; without it the fastest repetition's
mean real_time), "median" the median over the repetitions of their mean
real_time.  Min: the least disturbed step on a shared machine; median: what
the shared machine gave.  Prints a markdown table.

With --frac: instead, the 1-thread rows' median time per step (cpu_time, what
granattn-bench reports for 1 thread) and median frac_limit (runs made with
--limits) per shape and label: the fraction of the bandwidth / FMA bound.

usage: tools/two_threads.py [--help] [--frac] LABEL=FILE.json [LABEL=FILE.json ...]
"""
import json
import re
import statistics
import sys


def load(path):
    with open(path) as f:
        doc = json.load(f)
    out = {}
    for b in doc.get("benchmarks", []):
        if b.get("run_type") != "iteration" or b.get("error_occurred"):
            continue
        name = b["run_name"] if "run_name" in b else b["name"]
        m = re.search(r"/threads:(\d+)", name)
        if not m:
            continue
        thr = int(m.group(1))
        key = re.sub(r"/threads:\d+", "", name)
        key = re.sub(r"/(place:none|real_time|dist:gauss2|dh:64|path:full)", "", key)
        scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[b.get("time_unit", "ns")]
        e = out.setdefault(key, {}).setdefault(thr, {"real": [], "min": [], "cpu": [], "frac": []})
        e["real"].append(b["real_time"] * scale)
        e["min"].append(b.get("step_min_us", b["real_time"] * scale))
        e["cpu"].append(b["cpu_time"] * scale)
        if "frac_limit" in b:
            e["frac"].append(b["frac_limit"])
    return out


def merge(dst, src):
    for k, per in src.items():
        for thr, e in per.items():
            d = dst.setdefault(k, {}).setdefault(thr, {"real": [], "min": [], "cpu": [], "frac": []})
            for f in d:
                d[f] += e[f]


def sort_key(k):
    f = dict(re.findall(r"(\w+):([\w.-]+)", k))
    fam = k.split("/")[0]
    return (fam, f.get("cache", ""), f.get("mix", ""), f.get("mode", ""), int(f.get("H", 0)),
            int(f.get("N", 0)))


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    frac = argv[0] == "--frac"
    if frac:
        argv = argv[1:]
    runs, by_label = [], {}
    for a in argv:
        if "=" not in a:
            print(f"two_threads.py: expected LABEL=FILE, got {a!r}", file=sys.stderr)
            return 2
        label, path = a.split("=", 1)
        if label not in by_label:
            by_label[label] = {}
            runs.append((label, by_label[label]))
        merge(by_label[label], load(path))
    keys = sorted({k for _, r in runs for k in r}, key=sort_key)
    if frac:
        print("| shape | build | 1 thr median µs (CPU) | frac_limit (median) | reps |")
        print("|---|---|---:|---:|---:|")
        for k in keys:
            for label, r in runs:
                e = r.get(k, {}).get(1)
                if not e:
                    continue
                fr = f"{statistics.median(e['frac']):.2f}" if e["frac"] else "-"
                print(f"| {k} | {label} | {statistics.median(e['cpu']):.1f} | {fr} | "
                      f"{len(e['cpu'])} |")
        return 0
    print("| shape | build | 1 thr min µs | 2 thr min µs | ratio (min) | 1 thr median µs "
          "| 2 thr median µs | ratio (median) | reps |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for k in keys:
        for label, r in runs:
            t = r.get(k, {})
            if 1 not in t or 2 not in t:
                continue
            a, b = min(t[1]["min"]), min(t[2]["min"])
            ma, mb = statistics.median(t[1]["real"]), statistics.median(t[2]["real"])
            print(f"| {k} | {label} | {a:.1f} | {b:.1f} | {a / b:.2f} | {ma:.1f} | {mb:.1f} | "
                  f"{ma / mb:.2f} | {min(len(t[1]['real']), len(t[2]['real']))} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
