#!/usr/bin/python3
"""compare.py — compare two granattn-bench result sets, benchmark by benchmark.

Usage: tools/compare.py BASE NEW [--threshold 0.10] [--alpha 0.05] [--filter RE]
                        [--metric real_time|cpu_time|auto] [--noise-k 3]
                        [--json FILE] [--all]

BASE and NEW are bench.json files (Google Benchmark JSON) or result
directories holding one; a comma-separated list pools the repetitions of
several runs (e.g. three separate processes per side).  For each benchmark
present in both:
  ratio    median(NEW) / median(BASE) of the time per iteration (> 1: NEW slower)
  p        one-sided Mann-Whitney U test over the repetitions, in the direction
           of the change (scipy.stats.mannwhitneyu, exact for small samples)
  verdict  "slower" if ratio > 1 + limit and p <= alpha,
           "faster" if ratio < 1 / (1 + limit) and p <= alpha,
           "same (noise)" otherwise,
where limit = max(threshold, noise floor).  The noise floor guards against a
shared, loaded machine, where whole runs drift by tens of percent: it is
noise_k robust standard deviations (1.4826 x the median absolute deviation)
of log(ratio) over all compared benchmarks, so a uniform shift (all benchmarks
1.5x slower) still counts in full, while scatter that many benchmarks show in
both directions does not.  It is used only with at least 8 benchmarks;
--noise-k 0 disables it.  The summary says when it raised the limit.
With fewer than 3 repetitions on either side no test is possible: the verdict
uses the ratio alone and is marked "(ratio only)".  With exactly 3
repetitions per side the smallest one-sided p-value is 1/20 = 0.05, reached
only when every NEW repetition is slower than every BASE one.

--relative judges each benchmark against the run-wide shift instead of
against 1: every NEW sample is divided by the geometric median of all ratios
before the ratio and the U test are computed.  On a shared machine whole runs
drift together (load), so this isolates what got slower *relative to the
rest of the kernels* — the usual signature of a code regression in one
kernel — at the price of not flagging a uniform slowdown of everything (the
shift is printed so that a person can judge it).

Exit status: 0 when no benchmark is slower, 1 when at least one is, 2 on a
usage or input error.
"""

import argparse
import json
import math
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib_results as lr  # noqa: E402

MIN_REPS_FOR_TEST = 3
MIN_BENCHES_FOR_NOISE = 8


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Compare two granattn-bench result sets (bench.json or result "
                    "directories): median ratio NEW/BASE per benchmark, Mann-Whitney U "
                    "test over the repetitions, non-zero exit on a significant slowdown.")
    p.add_argument("base", help="baseline bench.json or result directory "
                                "(comma-separated: pool several runs)")
    p.add_argument("new", help="new bench.json or result directory (comma-separated: pool)")
    p.add_argument("--threshold", type=float, default=0.10,
                   help="relative change that counts (default 0.10 = 10%%)")
    p.add_argument("--alpha", type=float, default=0.05,
                   help="significance level of the U test (default 0.05)")
    p.add_argument("--filter", metavar="RE",
                   help="only benchmarks whose name matches this regular expression (re.search)")
    p.add_argument("--metric", choices=["real_time", "cpu_time", "auto"], default="real_time",
                   help="time to compare (default real_time; auto: the time Google Benchmark "
                        "reports for each run, real_time for .../real_time runs, else cpu_time)")
    p.add_argument("--relative", action="store_true",
                   help="judge each benchmark relative to the run-wide shift (the geometric "
                        "median ratio over all benchmarks); for shared, noisy machines")
    p.add_argument("--noise-k", type=float, default=3.0,
                   help="noise floor in robust standard deviations of log(ratio) across "
                        "benchmarks (default 3; 0 disables)")
    p.add_argument("--json", metavar="FILE", help="also write the comparison as JSON")
    p.add_argument("--all", action="store_true",
                   help="print every benchmark (default: only the changed ones and a summary)")
    return p.parse_args(argv)


# ---------------------------------------------------------------- loading

def load_side(spec):
    """Loads one side (a path or comma-separated paths); returns {run_name: [Bench]}."""
    side = {}
    for path in [p for p in spec.split(",") if p]:
        _, benches = lr.load_benches(path)
        for name, bench in benches.items():
            side.setdefault(name, []).append(bench)
    return side


def samples(benches, metric):
    """Per-repetition times (ns) pooled over runs; a run without them gives its median."""
    values = []
    for bench in benches:
        key = bench.primary if metric == "auto" else metric
        reps = bench.times_ns if key == "real_time" else bench.cpu_times_ns
        if reps:
            values.extend(reps)
        elif bench.median_entry is not None:
            values.append(lr.entry_time_ns(bench.median_entry, key))
    return values


# ---------------------------------------------------------------- statistics

def u_test_p(base, new, ratio):
    """One-sided Mann-Whitney U p-value in the direction of the change."""
    from scipy.stats import mannwhitneyu
    alternative = "greater" if ratio >= 1.0 else "less"
    return float(mannwhitneyu(new, base, alternative=alternative).pvalue)


def measure_one(name, base, new):
    """Ratio and U test of one benchmark (verdict comes later)."""
    b_med, n_med = statistics.median(base), statistics.median(new)
    ratio = n_med / b_med if b_med > 0 else math.nan
    tested = len(base) >= MIN_REPS_FOR_TEST and len(new) >= MIN_REPS_FOR_TEST
    p = u_test_p(base, new, ratio) if tested and math.isfinite(ratio) else None
    return {"name": name, "base_median_ns": b_med, "new_median_ns": n_med, "ratio": ratio,
            "p_value": p, "base_reps": len(base), "new_reps": len(new), "tested": tested,
            "base_samples": list(base), "new_samples": list(new)}


def noise_floor(results, k):
    """k robust standard deviations of log(ratio) across benchmarks (0 if too few)."""
    logs = [math.log(r["ratio"]) for r in results if r["ratio"] > 0 and math.isfinite(r["ratio"])]
    if k <= 0 or len(logs) < MIN_BENCHES_FOR_NOISE:
        return 0.0
    center = statistics.median(logs)
    mad = statistics.median([abs(v - center) for v in logs])
    return math.exp(k * 1.4826 * mad) - 1.0


def apply_shift(results):
    """--relative: divides NEW by the geometric median ratio, re-tests."""
    logs = [math.log(r["ratio"]) for r in results if r["ratio"] > 0 and math.isfinite(r["ratio"])]
    shift = math.exp(statistics.median(logs)) if logs else 1.0
    print(f"run-wide shift (geometric median new/base over {len(logs)} benchmarks): {shift:.3f}; "
          "ratios below are relative to it")
    for r in results:
        r["shift"] = shift
        r["new_samples"] = [x / shift for x in r["new_samples"]]
        r["ratio"] = r["ratio"] / shift
        if r["tested"] and math.isfinite(r["ratio"]):
            r["p_value"] = u_test_p(r["base_samples"], r["new_samples"], r["ratio"])


def judge(r, limit, alpha):
    """Sets r["verdict"]: slower / faster beyond the limit and significant, else same."""
    significant = not r["tested"] or (r["p_value"] is not None and r["p_value"] <= alpha + 1e-12)
    ratio = r["ratio"]
    if math.isfinite(ratio) and significant and ratio > 1.0 + limit:
        r["verdict"] = "slower"
    elif math.isfinite(ratio) and significant and ratio < 1.0 / (1.0 + limit):
        r["verdict"] = "faster"
    else:
        r["verdict"] = "same (noise)"


def compare(base, new, args):
    """Measures every benchmark present (and error-free) in both sets."""
    pattern = re.compile(args.filter) if args.filter else None
    results, only_base, only_new, errors = [], [], [], []
    for name, b in base.items():
        if pattern and not pattern.search(name):
            continue
        n = new.get(name)
        if n is None:
            only_base.append(name)
            continue
        if any(x.errors for x in b + n):
            errors.append(name)
            continue
        bs, ns = samples(b, args.metric), samples(n, args.metric)
        if not bs or not ns:
            errors.append(name)
            continue
        results.append(measure_one(name, bs, ns))
    for name in new:
        if name not in base and not (pattern and not pattern.search(name)):
            only_new.append(name)
    return results, only_base, only_new, errors


# ---------------------------------------------------------------- output

def verdict_text(r):
    return r["verdict"] + ("" if r["tested"] else " (ratio only)")


def print_table(results, show_all):
    rows = []
    for r in results:
        if not show_all and r["verdict"].startswith("same"):
            continue
        p = "-" if r["p_value"] is None else f"{r['p_value']:.3f}"
        rows.append([r["name"], lr.fmt_time_ns(r["base_median_ns"]),
                     lr.fmt_time_ns(r["new_median_ns"]), f"{r['ratio']:.3f}", p,
                     f"{r['base_reps']}/{r['new_reps']}", verdict_text(r)])
    if rows:
        print(lr.format_table(["benchmark", "base", "new", "new/base", "p", "reps", "verdict"],
                              rows, ["<", ">", ">", ">", ">", ">", "<"]))
    elif results:
        print("no benchmark changed beyond the limit (use --all to list them)")


def print_summary(results, only_base, only_new, errors, args, floor, limit):
    counts = {"faster": 0, "slower": 0, "same (noise)": 0}
    for r in results:
        counts[r["verdict"]] += 1
    gm = lr.geomean([r["ratio"] for r in results])
    print()
    print(f"{len(results)} benchmarks compared ({args.metric}, limit {limit:.0%}, alpha "
          f"{args.alpha}): {counts['slower']} slower, {counts['faster']} faster, "
          f"{counts['same (noise)']} same (noise); geometric mean new/base {gm:.3f}")
    if floor > args.threshold:
        print(f"note: the ratios scatter widely across benchmarks (noise floor {floor:.0%} = "
              f"{args.noise_k:g} robust SDs of log ratio): the limit was raised from the "
              f"threshold {args.threshold:.0%} to {limit:.0%}; changes below it cannot be told "
              "from run-to-run noise here (quieter machine, more repetitions, or --noise-k 0)")
    untested = sum(1 for r in results if not r["tested"])
    if untested:
        print(f"note: {untested} benchmarks have fewer than {MIN_REPS_FOR_TEST} repetitions "
              "on a side: their verdict uses the median ratio alone, without a test")
    if only_base:
        print(f"{len(only_base)} benchmarks only in BASE (e.g. {only_base[0]})")
    if only_new:
        print(f"{len(only_new)} benchmarks only in NEW (e.g. {only_new[0]})")
    if errors:
        print(f"{len(errors)} benchmarks skipped: an error or no timings on a side "
              f"(e.g. {errors[0]})")


def main(argv):
    args = parse_args(argv)
    try:
        base = load_side(args.base)
        new = load_side(args.new)
    except lr.ResultError as e:
        print(f"compare.py: {e}", file=sys.stderr)
        return 2
    try:
        results, only_base, only_new, errors = compare(base, new, args)
    except re.error as e:
        print(f"compare.py: bad --filter: {e}", file=sys.stderr)
        return 2
    if not results:
        print("compare.py: no benchmark present in both result sets", file=sys.stderr)
        return 2
    if args.relative:
        apply_shift(results)
    floor = noise_floor(results, args.noise_k)
    limit = max(args.threshold, floor)
    for r in results:
        judge(r, limit, args.alpha)
    print_table(results, args.all)
    print_summary(results, only_base, only_new, errors, args, floor, limit)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"base": args.base, "new": args.new, "metric": args.metric,
                       "threshold": args.threshold, "alpha": args.alpha,
                       "noise_floor": floor, "limit": limit,
                       "results": results, "only_base": only_base,
                       "only_new": only_new, "errors": errors}, f, indent=1)
    slower = [r for r in results if r["verdict"] == "slower"]
    if slower:
        print(f"REGRESSION: {len(slower)} benchmark{'s' if len(slower) != 1 else ''} slower "
              f"by more than {limit:.0%}" + ("" if all(r["tested"] for r in slower)
                                             else " (some judged on the ratio alone)"))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
