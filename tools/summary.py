#!/usr/bin/python3
"""summary.py — summarise one granattn benchmark result set.

Usage: tools/summary.py DIR [--md OUT.md] [--plots] [--strict]

Reads DIR/bench.json (granattn-bench, Google Benchmark JSON) and, when present,
DIR/limits.json, DIR/machine.json and DIR/peers/peers.json (tools/peers/run.py,
written by tools/sweep.sh --peers).
Writes DIR/summary.md (or --md) and, with --plots, PNG plots in DIR/plots/:
  (a) per ISA: `attend` keys/s at each N, sparse vs dense, SIMD/scalar ratio,
      sparse/dense speedup, density reached, fraction of the machine limit
  (b) speedup of each ISA over scalar, per kernel           (kernels.png)
  (c) sparse over dense vs N, per mix                       (sparse_vs_dense.png)
  (d) fraction of the machine limit vs N                    (frac_limit.png)
  (e) thread scaling of attend_block, per placement policy  (threads.png)
  (f) granattn against the best CPU attention peer (PyTorch, ONNX Runtime,
      OpenVINO, ggml) per (N, H, T, threads, cache), dense and sparse
      (tools/peers/report.py: DIR/peers/ratios.tsv, DIR/peers/ratios.png);
      without DIR/peers/ it says the peers were skipped and how to run them
  (g) prepared keys (path:prepared) vs the full and dense steps per ISA, N and
      mode: speedups, x dense limit, cand/kept, bytes, preparation cost
                                                            (prepared.png)
  (h) the trace family (real traces, when the bench ran with --traces): the
      same per N range and per file
  (i) the issue-10 targets of the prepared path on the best ISA, met or not
With repetitions, each benchmark's median is used (the "median" aggregate, or
the median of the repetitions).  Benchmarks are compared on time per
iteration -- the time Google Benchmark reports for the run: real_time for
runs named .../real_time, cpu_time otherwise -- except against the peers
(f), where both sides use wall-clock time; keys/s is items_per_second (N*H*T
keys per step for attend).
Where several values of an axis are present and a table shows only one, the
representative value is chosen by the preferences below (e.g. dist gauss2,
cache hot, mix 70-20-10 for "sparse") and named above the table.

Prints the main tables to stdout.  Exit status 1 when bench.json is missing,
unreadable or holds no successful benchmark, or (--strict) when any
benchmark reported an error.
"""

import argparse
import math
import os
import sys
from collections import Counter, OrderedDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib_results as lr  # noqa: E402

ISA_ORDER = ["scalar", "avx2", "avx512", "neon"]
KERNEL_FAMILIES_LAST = ("attend", "attend_block")
SPARSE_MIX_PREFS = ["70-20-10", "33-33-34", "90-9-1", "coarse", "fine"]
MIX_ORDER = ["dense", "fine", "33-33-34", "70-20-10", "90-9-1", "coarse"]
# Preferred representative value per axis (the most frequent value otherwise).
AXIS_PREFS = OrderedDict([
    ("dh", ["64", "128"]),
    ("H", []),
    ("dist", ["gauss2", "gauss1", "gauss4", "peaked"]),
    ("mode", ["seed", "renorm"]),
    ("path", ["full", "prepared", "prepared-bounded"]),
    ("threads", ["1"]),
    ("place", ["none", "compact", "scatter"]),
    ("cache", ["hot", "cold"]),
])


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Summarise a granattn benchmark result directory (bench.json, "
                    "limits.json, machine.json, peers/peers.json): tables on stdout and in "
                    "summary.md, optional PNG plots.")
    p.add_argument("dir", help="result directory written by tools/sweep.sh")
    p.add_argument("--md", metavar="OUT.md", help="markdown output (default DIR/summary.md)")
    p.add_argument("--plots", action="store_true", help="also write PNG plots to DIR/plots/")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 if any benchmark reported an error")
    return p.parse_args(argv)


# ---------------------------------------------------------------- selection

def isa_key(isa):
    return ISA_ORDER.index(isa) if isa in ISA_ORDER else len(ISA_ORDER)


def is_dense(b):
    return b.get("mode") == "dense" or b.get("mix") == "dense"


def n_of(b):
    return lr.field_int(b.fields, "N", 0)


def matches(b, fixed):
    """True when every fixed field equals the bench's (absent fields match)."""
    for key, value in fixed.items():
        if key == "family":
            if b.family != value:
                return False
        elif key in b.fields and b.fields[key] != str(value):
            return False
    return True


def select(benches, **fixed):
    return [b for b in benches if matches(b, fixed)]


def preferred_value(benches, axis):
    """The preferred value of an axis among benches (None when no bench has it)."""
    values = [b.fields[axis] for b in benches if axis in b.fields]
    if not values:
        return None
    for pref in AXIS_PREFS.get(axis, []):
        if pref in values:
            return pref
    counts = Counter(values)
    return max(counts, key=lambda v: (counts[v], -values.index(v)))


def representative(benches, axes):
    """{axis: preferred value} for each axis that some bench has."""
    rep = {}
    for axis in axes:
        value = preferred_value(benches, axis)
        if value is not None:
            rep[axis] = value
    return rep


def sparse_mix(benches):
    """The representative sparse mix among non-dense benches."""
    mixes = {b.get("mix") for b in benches if not is_dense(b) and b.get("mix")}
    for mix in SPARSE_MIX_PREFS:
        if mix in mixes:
            return mix
    return sorted(mixes)[0] if mixes else None


def first(benches):
    return benches[0] if benches else None


def time_of(b):
    return b.median_ns if b is not None else math.nan


def keys_per_second(b, queries=1):
    """items_per_second (granattn-bench counts N*H*T keys per step), else computed."""
    if b is None:
        return math.nan
    v = b.counter("items_per_second")
    if math.isfinite(v):
        return v
    heads = lr.field_int(b.fields, "H", 1)
    return n_of(b) * heads * queries / (b.median_ns * 1e-9)


def ratio(num, den):
    if num is None or den is None or not (den > 0) or not math.isfinite(num):
        return math.nan
    return num / den


def describe_rep(rep, skip=()):
    return ", ".join(f"{k} {v}" for k, v in rep.items() if k not in skip)


def sorted_isas(benches):
    return sorted({b.get("isa") for b in benches if b.get("isa")}, key=isa_key)


def best_isa(benches):
    isas = sorted_isas(benches)
    return isas[-1] if isas else None


# ---------------------------------------------------------------- (a) attend table

def vs_scalar(benches, b):
    """Scalar time / b's time for the same configuration (nan without a scalar run)."""
    if b is None or b.get("isa") in (None, "scalar"):
        return math.nan
    key = b.key_without("isa")
    scalar = first([s for s in select(benches, isa="scalar", N=n_of(b))
                    if s.key_without("isa") == key])
    return ratio(time_of(scalar), time_of(b)) if scalar else math.nan


def attend_rows(benches, notes):
    """Rows of table (a): per ISA and N, dense vs representative sparse."""
    attend = select(benches, family="attend")
    if not attend:
        notes.append("no `attend` benchmarks: no main table")
        return None
    rep = representative(attend, ["dh", "H", "dist", "threads", "place", "cache", "path"])
    base = select(attend, **rep)
    mix = sparse_mix(base)
    mode = preferred_value([b for b in base if not is_dense(b)], "mode")
    rows = []
    for isa in sorted_isas(base):
        for N in sorted({n_of(b) for b in select(base, isa=isa)}):
            here = select(base, isa=isa, N=N)
            dense = first([b for b in here if is_dense(b)])
            sparse = first([b for b in here if not is_dense(b) and b.get("mix") == mix
                            and (mode is None or b.get("mode") == mode)])
            rows.append({
                "isa": isa, "N": N, "dense": dense, "sparse": sparse,
                "dense_kps": keys_per_second(dense), "sparse_kps": keys_per_second(sparse),
                "speedup": ratio(time_of(dense), time_of(sparse)),
                "density": sparse.counter("density") if sparse else math.nan,
                "frac_dense": dense.counter("frac_limit") if dense else math.nan,
                "frac_sparse": sparse.counter("frac_limit") if sparse else math.nan,
                "dense_vs_scalar": vs_scalar(base, dense),
                "sparse_vs_scalar": vs_scalar(base, sparse),
            })
    title = f"attend (one query, all heads): {describe_rep(rep)}; sparse = mix {mix}" + \
        (f", mode {mode}" if mode else "")
    return title, rows


def attend_table(rows):
    headers = ["isa", "N", "dense keys/s", "sparse keys/s", "sparse/dense", "density",
               "frac_limit dense", "frac_limit sparse", "dense vs scalar", "sparse vs scalar"]
    cells = []
    for r in rows:
        cells.append([r["isa"], str(r["N"]), lr.fmt_si(r["dense_kps"]), lr.fmt_si(r["sparse_kps"]),
                      lr.fmt_ratio(r["speedup"]), lr.fmt_num(r["density"]),
                      lr.fmt_num(r["frac_dense"]), lr.fmt_num(r["frac_sparse"]),
                      lr.fmt_ratio(r["dense_vs_scalar"], 1), lr.fmt_ratio(r["sparse_vs_scalar"], 1)])
    return headers, cells


# ---------------------------------------------------------------- (b) kernels

def kernel_speedups(benches, notes):
    """{kernel: {isa: geomean(scalar time / isa time)}} over matching configs."""
    kernels = [b for b in benches if b.family not in KERNEL_FAMILIES_LAST]
    if not kernels:
        notes.append("no per-kernel benchmarks: no kernel speedup table")
        return None
    scalar = {b.key_without("isa"): b for b in kernels if b.get("isa") == "scalar"}
    if not scalar:
        notes.append("no scalar kernel benchmarks: no speedup over scalar")
        return None
    ratios = {}
    for b in kernels:
        isa = b.get("isa")
        if isa in (None, "scalar"):
            continue
        ref = scalar.get(b.key_without("isa"))
        if ref is None:
            continue
        ratios.setdefault(b.family, {}).setdefault(isa, []).append(ratio(ref.median_ns, b.median_ns))
    # the fused step too, for comparison
    for fam in KERNEL_FAMILIES_LAST:
        fam_benches = select(benches, family=fam)
        ref_map = {b.key_without("isa"): b for b in fam_benches if b.get("isa") == "scalar"}
        for b in fam_benches:
            ref = ref_map.get(b.key_without("isa"))
            if b.get("isa") not in (None, "scalar") and ref is not None:
                ratios.setdefault(fam, {}).setdefault(b.get("isa"), []).append(
                    ratio(ref.median_ns, b.median_ns))
    return {k: {isa: lr.geomean(v) for isa, v in d.items()} for k, d in ratios.items()}


def kernel_table(speedups):
    isas = sorted({isa for d in speedups.values() for isa in d}, key=isa_key)
    headers = ["kernel"] + [f"{isa}/scalar" for isa in isas]
    cells = [[k] + [lr.fmt_ratio(speedups[k].get(isa, math.nan)) for isa in isas]
             for k in sorted(speedups, key=lambda k: (k in KERNEL_FAMILIES_LAST, k))]
    return headers, cells


# ---------------------------------------------------------------- (c) sparse vs dense

def sparse_vs_dense(benches, notes):
    """{isa: {mix: [(N, dense_time / sparse_time)]}} at the representative config."""
    attend = select(benches, family="attend")
    rep = representative(attend, ["dh", "H", "dist", "threads", "place", "cache", "path"])
    base = select(attend, **rep)
    mode = preferred_value([b for b in base if not is_dense(b)], "mode")
    result = {}
    for isa in sorted_isas(base):
        dense = {n_of(b): b for b in select(base, isa=isa) if is_dense(b)}
        for b in select(base, isa=isa):
            if is_dense(b) or (mode and b.get("mode") != mode) or n_of(b) not in dense:
                continue
            result.setdefault(isa, {}).setdefault(b.get("mix", "?"), []).append(
                (n_of(b), ratio(dense[n_of(b)].median_ns, b.median_ns), b.counter("density")))
    if not result:
        notes.append("no sparse/dense pairs of `attend` benchmarks: no sparse-vs-dense table")
        return None
    for d in result.values():
        for series in d.values():
            series.sort()
    return f"attend, {describe_rep(rep)}" + (f", mode {mode}" if mode else ""), result


def sparse_vs_dense_table(result, isa):
    mixes = sorted(result[isa], key=lambda m: MIX_ORDER.index(m) if m in MIX_ORDER else 99)
    Ns = sorted({n for m in mixes for n, _, _ in result[isa][m]})
    headers = ["N"] + [f"{m} (density)" for m in mixes]
    cells = []
    for N in Ns:
        row = [str(N)]
        for m in mixes:
            point = [(s, d) for n, s, d in result[isa][m] if n == N]
            row.append(f"{lr.fmt_ratio(point[0][0])} ({lr.fmt_num(point[0][1], 2)})" if point else "-")
        cells.append(row)
    return headers, cells


# ---------------------------------------------------------------- (e) threads

def thread_scaling(benches, notes):
    """{N: {place: [(threads, keys/s, speedup vs 1 thread)]}} for attend_block."""
    block = select(benches, family="attend_block")
    if not block:
        notes.append("no `attend_block` benchmarks: no thread scaling")
        return None
    isa = best_isa(block)
    block = select(block, isa=isa)
    rep = representative(block, ["dh", "H", "dist", "cache", "path"])
    base = select(block, **rep)
    mix = sparse_mix(base)
    base = [b for b in base if b.get("mix") == mix] or base
    mode = preferred_value(base, "mode")
    if mode:
        base = select(base, mode=mode)
    result = {}
    for b in base:
        t = lr.field_int(b.fields, "threads", 1)
        result.setdefault(n_of(b), {}).setdefault(b.get("place", "-"), []).append(
            (t, keys_per_second(b, 32), b.median_ns))
    for places in result.values():
        for place, series in places.items():
            series.sort()
            t1 = [ns for t, _, ns in series if t == 1]
            places[place] = [(t, kps, ratio(t1[0], ns) if t1 else math.nan) for t, kps, ns in series]
    title = f"attend_block (32 queries), isa {isa}, {describe_rep(rep)}, mix {mix}" + \
        (f", mode {mode}" if mode else "")
    return title, result


def thread_table(result):
    threads = sorted({t for places in result.values() for s in places.values() for t, _, _ in s})
    headers = ["N", "place"] + [f"{t} thr keys/s (x)" for t in threads]
    cells = []
    for N in sorted(result):
        for place in sorted(result[N]):
            row = [str(N), place]
            by_t = {t: (kps, sp) for t, kps, sp in result[N][place]}
            for t in threads:
                row.append(f"{lr.fmt_si(by_t[t][0])} ({lr.fmt_ratio(by_t[t][1])})" if t in by_t else "-")
            cells.append(row)
    return headers, cells


# ---------------------------------------------------------------- (f) peers

PEERS_HOWTO = ("peers skipped: run `tools/sweep.sh --peers` (installs PyTorch, ONNX Runtime, "
               "OpenVINO and ggml into .venv-peers/, ~6 GB, and times them interleaved with "
               "granattn-bench) or `tools/peers/setup.sh && tools/peers/run.py --out DIR/peers`")


def peer_section(d, notes):
    """(title, headers, cells, note lines, png) from DIR/peers/peers.json, or None."""
    pdir = os.path.join(d, "peers")
    if not os.path.exists(os.path.join(pdir, "peers.json")):
        return None
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers"))
    import report as peers_report  # tools/peers/report.py
    try:
        doc, rows = peers_report.load(pdir)
    except (OSError, ValueError) as e:
        notes.append(f"peers/peers.json unreadable: {e}")
        return None
    png = os.path.join(pdir, "ratios.png")
    return ("(f) granattn vs the best CPU attention peer (x = best peer time / granattn time, "
            "> 1: granattn faster)", peers_report.TABLE_HEADERS,
            peers_report.table_rows(rows), peers_report.notes(doc, rows),
            png if os.path.exists(png) else None)


# ---------------------------------------------------------------- (g) prepared keys

def path_of(b):
    return b.get("path", "full")


def _us(b):
    return time_of(b) / 1e3 if b is not None else math.nan


def _step_row(isa, N, mode, path, full, prep, dense_full):
    """One row of the prepared tables: `prep` (a prepared step) against the full
    step `full` of the same mode and the dense full-path step `dense_full`."""
    c = prep.counter if prep is not None else (lambda k: math.nan)
    return {
        "isa": isa, "N": N, "mode": mode, "path": path,
        "full_us": _us(full), "prep_us": _us(prep),
        "vs_full": ratio(time_of(full), time_of(prep)),
        "vs_dense": ratio(time_of(dense_full), time_of(prep)),
        "x_dense_limit": c("x_dense_limit"),
        "cand_per_kept": c("cand_per_kept"), "cand_frac": c("cand_frac"),
        "density": c("density"),
        "bytes_vs_full": ratio(c("bytes_read"), full.counter("bytes_read") if full else math.nan),
        "frac_limit": c("frac_limit"),
        "prep_steps": c("prep_in_dense_steps"), "prep_cost_us": c("prep_us"),
        "fallback": c("fallback"), "z_bound": c("z_bound"),
    }


def prepared_rows(benches, notes):
    """Rows of table (g): per ISA, N and mode, the prepared step against the
    full step and the dense step (attend, one query, all heads)."""
    attend = select(benches, family="attend")
    prep = [b for b in attend if path_of(b) != "full"]
    if not prep:
        notes.append("no `attend` benchmarks with path:prepared: no prepared-keys table")
        return None
    rep = representative(prep, ["dh", "H", "dist", "threads", "place", "cache"])
    base = select(attend, **rep)
    mix = sparse_mix([b for b in base if path_of(b) != "full"])
    rows = []
    for isa in sorted_isas(select(prep, **rep)):
        for N in sorted({n_of(b) for b in select(base, isa=isa) if path_of(b) != "full"}):
            here = select(base, isa=isa, N=N)
            dense_full = first([b for b in here if is_dense(b) and path_of(b) == "full"])
            dense_prep = first([b for b in here if is_dense(b) and path_of(b) == "prepared"])
            for mode in ("renorm", "seed"):
                sparse = [b for b in here if not is_dense(b) and b.get("mix") == mix
                          and b.get("mode") == mode]
                full = first([b for b in sparse if path_of(b) == "full"])
                for path in ("prepared", "prepared-bounded"):
                    p = first([b for b in sparse if path_of(b) == path])
                    if p is not None:
                        rows.append(_step_row(isa, N, mode, path, full, p, dense_full))
            if dense_prep is not None:
                rows.append(_step_row(isa, N, "dense", "prepared (packed K)", dense_full,
                                      dense_prep, dense_full))
    title = (f"attend (one query, all heads), prepared keys vs the full step: {describe_rep(rep)}; "
             f"sparse = mix {mix}")
    return title, rows


PREP_HEADERS = ["full", "prepared", "full/prep", "dense/prep", "x dense limit", "cand/kept",
                "cand frac", "density", "bytes prep/full", "frac_limit", "prep (dense steps)"]


def _prep_cells(r):
    return [lr.fmt_time_ns(r["full_us"] * 1e3), lr.fmt_time_ns(r["prep_us"] * 1e3),
            lr.fmt_ratio(r["vs_full"]), lr.fmt_ratio(r["vs_dense"]),
            lr.fmt_ratio(r["x_dense_limit"]), lr.fmt_num(r["cand_per_kept"]),
            lr.fmt_num(r["cand_frac"], 2), lr.fmt_num(r["density"], 2),
            lr.fmt_num(r["bytes_vs_full"], 2), lr.fmt_num(r["frac_limit"], 2),
            lr.fmt_num(r["prep_steps"], 2)]


def prepared_table(rows):
    headers = ["isa", "N", "mode", "path"] + PREP_HEADERS
    cells = [[r["isa"], str(r["N"]), r["mode"], r["path"]] + _prep_cells(r) for r in rows]
    return headers, cells


PREP_NOTE = ("full/prep: the full step's time over the prepared step's (same mode; for the dense "
             "row: dense full over dense on packed K); dense/prep: the dense full-path step's "
             "time over the prepared step's; x dense limit: the dense fp32 step at its "
             "bandwidth limit (time bound of K and V, working set K and V) over the prepared "
             "step's time (dense row: the packed dense step's fraction of that bound); "
             "cand/kept: exactly scored keys per kept key; bytes prep/full: bytes_read ratio; "
             "prep (dense steps): ga_keys_prepare time (into reused memory; prep_new_us in bench.json: ga_keys_create) in dense full-path steps")


# ---------------------------------------------------------------- (h) traces

def trace_rows(benches, notes):
    """Rows of the trace table: per ISA, file and mode, the prepared step
    against the full and the dense steps on the file's levels."""
    traces = select(benches, family="trace")
    if not traces:
        return None
    rows = []
    files = []
    for b in traces:
        key = (b.get("isa"), b.get("file"))
        if key not in files:
            files.append(key)
    files.sort(key=lambda k: (isa_key(k[0]), lr.field_int(
        first(select(traces, isa=k[0], file=k[1])).fields, "N", 0), k[1]))
    for isa, f in files:
        here = select(traces, isa=isa, file=f)
        b0 = here[0]
        dense_full = first([b for b in here if b.get("mode") == "dense" and path_of(b) == "full"])
        dense_prep = first([b for b in here if b.get("mode") == "dense" and path_of(b) == "prepared"])
        for mode in ("renorm", "seed"):
            full = first([b for b in here if b.get("mode") == mode and path_of(b) == "full"])
            for path in ("prepared", "prepared-bounded"):
                p = first([b for b in here if b.get("mode") == mode and path_of(b) == path])
                if p is not None:
                    r = _step_row(isa, n_of(b0), mode, path, full, p, dense_full)
                    r.update(file=f, H=b0.get("H"), T=b0.get("T"))
                    rows.append(r)
        if dense_prep is not None:
            r = _step_row(isa, n_of(b0), "dense", "prepared (packed K)", dense_full, dense_prep,
                          dense_full)
            r.update(file=f, H=b0.get("H"), T=b0.get("T"))
            rows.append(r)
    return rows


def trace_table(rows):
    headers = ["isa", "file", "N", "H", "T", "mode", "path"] + PREP_HEADERS
    cells = [[r["isa"], r["file"], str(r["N"]), str(r["H"]), str(r["T"]), r["mode"], r["path"]] +
             _prep_cells(r) for r in rows]
    return headers, cells


N_RANGES = [(0, 255), (256, 1023), (1024, 2047), (2048, 4095), (4096, 1 << 30)]


def trace_agg_table(rows):
    """Per ISA, mode, path and N range: how many files, geometric means of the
    speedups and of cand/kept, the worst (largest) cand/kept, the mean density."""
    groups = OrderedDict()
    for r in rows:
        rng = next((lo, hi) for lo, hi in N_RANGES if lo <= r["N"] <= hi)
        groups.setdefault((r["isa"], r["mode"], r["path"], rng), []).append(r)
    headers = ["isa", "mode", "path", "N range", "files", "full/prep", "dense/prep",
               "x dense limit", "cand/kept (max)", "density", "prep (dense steps)"]
    cells = []
    for (isa, mode, path, (lo, hi)), rs in sorted(
            groups.items(), key=lambda kv: (isa_key(kv[0][0]), kv[0][1], kv[0][2], kv[0][3])):
        ck = [r["cand_per_kept"] for r in rs if math.isfinite(r["cand_per_kept"])]
        dens = [r["density"] for r in rs if math.isfinite(r["density"])]
        cells.append([isa, mode, path, f"{lo}-{hi}" if hi < (1 << 30) else f">= {lo}", str(len(rs)),
                      lr.fmt_ratio(lr.geomean([r["vs_full"] for r in rs])),
                      lr.fmt_ratio(lr.geomean([r["vs_dense"] for r in rs])),
                      lr.fmt_ratio(lr.geomean([r["x_dense_limit"] for r in rs])),
                      (f"{lr.fmt_num(lr.geomean(ck))} ({lr.fmt_num(max(ck))})" if ck else "-"),
                      lr.fmt_num(sum(dens) / len(dens), 2) if dens else "-",
                      lr.fmt_num(lr.geomean([r["prep_steps"] for r in rs]), 2)])
    return headers, cells


# ---------------------------------------------------------------- (i) prepared-keys targets

def prepared_targets(prepared, traces):
    """The issue-10 targets, checked on the best ISA's rows (1 thread): a list of
    [target, where, worst value, verdict].  Rows are those of tables (g) and (h)."""
    rows = (prepared[1] if prepared else []) + (traces or [])
    isas = sorted({r["isa"] for r in rows}, key=isa_key)
    if not isas:
        return None
    isa = isas[-1]
    mine = [r for r in rows if r["isa"] == isa]
    g_rows = [r for r in (prepared[1] if prepared else []) if r["isa"] == isa]
    h_rows = [r for r in (traces or []) if r["isa"] == isa]
    out = []

    def check(name, where, values, ok):
        vals = [v for v in values if math.isfinite(v)]
        if not vals:
            return
        worst = min(vals) if ok(0.0) is False and ok(1e9) else max(vals)
        out.append([name, where, lr.fmt_num(worst, 3), "met" if all(ok(v) for v in vals) else "NOT met"])

    for src, rs in (("synthetic 70-20-10", g_rows), ("traces", h_rows)):
        ren = [r for r in rs if r["mode"] == "renorm" and r["path"] == "prepared"]
        check("prepared renorm >= 2.5x the dense step at its limit, N >= 1024",
              f"{isa}, {src}", [r["x_dense_limit"] for r in ren if r["N"] >= 1024],
              lambda v: v >= 2.5)
        check("prepared renorm >= 1.5x the dense step at its limit, N ~ 256",
              f"{isa}, {src}", [r["x_dense_limit"] for r in ren if 192 <= r["N"] < 512],
              lambda v: v >= 1.5)
    check("cand/kept <= 1.3 on real traces", f"{isa}, traces",
          [r["cand_per_kept"] for r in h_rows if r["path"] == "prepared" and r["mode"] == "renorm"]
          + [r["cand_per_kept"] for r in h_rows if r["path"] == "prepared-bounded"],
          lambda v: v <= 1.3)
    check("preparation <= 2 dense steps", f"{isa}, all",
          [r["prep_steps"] for r in mine], lambda v: v <= 2.0)
    check("dense step on packed K >= 0.85 of the bandwidth bound, N <= 4096",
          f"{isa}, synthetic (N >= 64)",
          [r["x_dense_limit"] for r in g_rows if r["mode"] == "dense" and r["N"] <= 4096],
          lambda v: v >= 0.85)
    return out or None


# ---------------------------------------------------------------- limits

def limits_tables(limits):
    """(peak table, bandwidth table) from limits.json (granattn-machine-limits/1)."""
    tables = []
    peaks = limits.get("peak_fma") or []
    if peaks:
        threads = sorted({p["threads"] for p in peaks})
        isas = sorted({p["isa"] for p in peaks}, key=isa_key)
        by = {(p["isa"], p["threads"]): p["gflops"] for p in peaks}
        cells = [[isa] + [lr.fmt_num(by.get((isa, t), math.nan), 4) for t in threads] for isa in isas]
        tables.append(("peak fp32 FMA, GFLOP/s", ["isa"] + [f"{t} thr" for t in threads], cells))
    points = (limits.get("bandwidth") or {}).get("points") or []
    if points:
        threads = sorted({p["threads"] for p in points})
        sizes = sorted({p["bytes"] for p in points})
        by = {(p["bytes"], p["threads"]): p["gbs"] for p in points}
        cells = [[lr.fmt_bytes(b)] +
                 [lr.fmt_num(by.get((b, t), math.nan), 4) for t in threads] for b in sizes]
        isa = (limits.get("bandwidth") or {}).get("isa", "?")
        tables.append((f"read bandwidth ({isa}), GB/s", ["working set"] +
                       [f"{t} thr" for t in threads], cells))
    return tables


# ---------------------------------------------------------------- plots

def log_if_wide(ax, values):
    """Log y axis when the positive values span more than a factor of 20."""
    values = [v for v in values if v > 0 and math.isfinite(v)]
    if values and max(values) / min(values) > 20:
        ax.set_yscale("log")


def make_plots(outdir, attend, kernels, svd, threads, notes, prepared=None):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        notes.append("matplotlib not available (/usr/bin/python3 with python3-matplotlib): no plots")
        return []
    os.makedirs(outdir, exist_ok=True)
    written = []

    def save(fig, name):
        path = os.path.join(outdir, name)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    if kernels:
        isas = sorted({isa for d in kernels.values() for isa in d}, key=isa_key)
        names = sorted(kernels, key=lambda k: (k in KERNEL_FAMILIES_LAST, k))
        fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(names) + 2), 4.5))
        width = 0.8 / max(1, len(isas))
        for i, isa in enumerate(isas):
            xs = [j + i * width for j in range(len(names))]
            ax.bar(xs, [kernels[k].get(isa, 0) for k in names], width, label=isa)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(names))])
        ax.set_xticklabels(names, rotation=60, ha="right", fontsize=8)
        ax.axhline(1.0, color="gray", lw=0.8)
        log_if_wide(ax, [v for d in kernels.values() for v in d.values()])
        ax.set_ylabel("speedup over scalar (geomean)")
        ax.set_title("(b) SIMD speedup per kernel")
        ax.legend()
        save(fig, "kernels.png")

    if svd:
        title, result = svd
        isas = sorted(result, key=isa_key)
        fig, axes = plt.subplots(1, len(isas), figsize=(4.5 * len(isas), 4), squeeze=False)
        for ax, isa in zip(axes[0], isas):
            for mix in sorted(result[isa], key=lambda m: MIX_ORDER.index(m) if m in MIX_ORDER else 99):
                pts = result[isa][mix]
                ax.plot([n for n, _, _ in pts], [s for _, s, _ in pts], marker="o", label=mix)
            ax.set_xscale("log", base=2)
            ax.axhline(1.0, color="gray", lw=0.8)
            ax.set_xlabel("N (keys)")
            ax.set_ylabel("dense time / sparse time")
            ax.set_title(f"(c) {isa}")
            ax.legend(fontsize=8)
        fig.suptitle(title, fontsize=8)
        save(fig, "sparse_vs_dense.png")

    if attend and any(math.isfinite(r["frac_sparse"]) or math.isfinite(r["frac_dense"]) for r in attend[1]):
        fig, ax = plt.subplots(figsize=(6, 4))
        for i, isa in enumerate(sorted({r["isa"] for r in attend[1]}, key=isa_key)):
            rows = [r for r in attend[1] if r["isa"] == isa]
            color = f"C{i}"
            ax.plot([r["N"] for r in rows], [r["frac_dense"] for r in rows], marker="s", ls="--",
                    color=color, label=f"{isa} dense")
            ax.plot([r["N"] for r in rows], [r["frac_sparse"] for r in rows], marker="o",
                    color=color, label=f"{isa} sparse")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("N (keys)")
        ax.set_ylabel("fraction of machine limit")
        ax.set_title("(d) attend: fraction of the measured limit")
        ax.legend(fontsize=8)
        save(fig, "frac_limit.png")

    if threads:
        title, result = threads
        Ns = sorted(result)[-3:]
        fig, axes = plt.subplots(1, len(Ns), figsize=(4.5 * len(Ns), 4), squeeze=False)
        for ax, N in zip(axes[0], Ns):
            for place in sorted(result[N]):
                pts = result[N][place]
                ax.plot([t for t, _, _ in pts], [kps for _, kps, _ in pts], marker="o", label=place)
            ax.set_xticks(sorted({t for pts in result[N].values() for t, _, _ in pts}))
            ax.set_ylim(bottom=0)
            ax.set_xlabel("threads")
            ax.set_ylabel("keys/s")
            ax.set_title(f"(e) N = {N}")
            ax.legend(fontsize=8)
        fig.suptitle(title, fontsize=8)
        save(fig, "threads.png")

    if prepared:
        title, rows = prepared
        isas = sorted({r["isa"] for r in rows}, key=isa_key)
        fig, axes = plt.subplots(1, len(isas), figsize=(5 * len(isas), 4), squeeze=False)
        for ax, isa in zip(axes[0], isas):
            for i, (mode, path) in enumerate(sorted({(r["mode"], r["path"]) for r in rows
                                                     if r["isa"] == isa})):
                pts = sorted((r["N"], r["vs_full"], r["x_dense_limit"]) for r in rows
                             if r["isa"] == isa and r["mode"] == mode and r["path"] == path)
                ax.plot([n for n, _, _ in pts], [v for _, v, _ in pts], marker="o", color=f"C{i}",
                        label=f"{mode} {path}: full/prep")
                ax.plot([n for n, _, _ in pts], [x for _, _, x in pts], marker="s", ls="--",
                        color=f"C{i}", label=f"{mode} {path}: x dense limit")
            ax.set_xscale("log", base=2)
            ax.axhline(1.0, color="gray", lw=0.8)
            ax.set_xlabel("N (keys)")
            ax.set_ylabel("speedup")
            ax.set_title(f"(g) prepared keys, {isa}")
            ax.legend(fontsize=6)
        fig.suptitle(title, fontsize=7)
        save(fig, "prepared.png")
    return written


# ---------------------------------------------------------------- output

def machine_line(machine, limits):
    parts = []
    if machine:
        cpu = machine.get("cpu", {})
        lib = machine.get("library", {})
        build = machine.get("build", {})
        parts.append(f"{cpu.get('model')} ({cpu.get('physical_cores')} cores)")
        parts.append(f"granattn {lib.get('version')} rev {str(lib.get('revision'))[:10]}"
                     f"{' (dirty)' if lib.get('dirty') else ''}")
        if build.get("c_compiler_version"):
            parts.append(f"{build['c_compiler_version']}, {build.get('buildtype')} build")
        isa = machine.get("chosen_isa", {})
        if isa.get("isa"):
            parts.append(f"default ISA {isa['isa']} ({isa.get('source')})")
    if limits is not None:
        parts.append("limits: loaded")
    return "; ".join(parts)


class Report:
    """Collects sections for the markdown file and the console."""

    def __init__(self):
        self.md = []
        self.console = []

    def section(self, title, headers, cells, console=False, note=None):
        self.md += [f"## {title}", ""]
        if note:
            self.md += [note, ""]
        self.md += [lr.markdown_table(headers, cells), ""]
        if console:
            self.console += [title, lr.format_table(headers, cells), ""]

    def image(self, title, path, md_dir):
        self.md += [f"![{title}]({os.path.relpath(path, md_dir)})", ""]


def load_extras(d, notes):
    extras = {}
    for name in ("limits", "machine"):
        try:
            extras[name] = lr.load_optional_json(os.path.join(d, f"{name}.json"))
        except lr.ResultError as e:
            notes.append(str(e))
            extras[name] = None
        if extras[name] is None:
            if name == "limits":
                notes.append("limits.json missing: frac_limit comes only from the bench's own counters")
            elif name == "machine":
                notes.append("machine.json missing: no machine description")
    return extras


def main(argv):
    args = parse_args(argv)
    notes = []
    try:
        context, all_benches = lr.load_benches(args.dir)
    except lr.ResultError as e:
        print(f"summary.py: {e}", file=sys.stderr)
        return 1
    errored = [b for b in all_benches.values() if b.errors]
    benches = [b for b in all_benches.values() if b.ok]
    if not benches:
        print(f"summary.py: {lr.bench_path(args.dir)}: no successful benchmark "
              f"({len(all_benches)} names, {len(errored)} with errors)", file=sys.stderr)
        for b in errored[:10]:
            print(f"  {b.run_name}: {b.errors[0]}", file=sys.stderr)
        return 1
    extras = load_extras(args.dir, notes)
    if errored:
        notes.append(f"{len(errored)} benchmarks reported an error, e.g. "
                     f"{errored[0].run_name}: {errored[0].errors[0]}")
    reps = max(b.repetitions for b in benches)

    report = Report()
    header = f"# granattn benchmark summary: {os.path.basename(os.path.abspath(args.dir))}"
    report.md += [header, "", machine_line(extras["machine"], extras["limits"]), "",
                  f"{len(benches)} benchmarks, {reps} repetition{'s' if reps != 1 else ''} "
                  f"each at most (medians shown); run {context.get('date', '?')}, "
                  f"{context.get('num_cpus', '?')} CPUs, load average "
                  f"{context.get('load_avg', '?')}.", ""]

    attend = attend_rows(benches, notes)
    if attend:
        report.section("(a) " + attend[0], *attend_table(attend[1]), console=True)
    prepared = prepared_rows(benches, notes)
    if prepared:
        report.section("(g) " + prepared[0], *prepared_table(prepared[1]), console=True,
                       note=PREP_NOTE)
    traces = trace_rows(benches, notes)
    if traces:
        report.section("(h) traces (trace family: q, K, V and levels of .gatrace files; one "
                       "step per query row, 1 thread), per N range",
                       *trace_agg_table(traces), console=True,
                       note="geometric means over the files of each N range; cand/kept: "
                            "geometric mean (largest file); " + PREP_NOTE)
        report.section("(h') traces, per file", *trace_table(traces),
                       console=len(traces) <= 30, note=PREP_NOTE)
    targets = prepared_targets(prepared, traces)
    if targets:
        report.section("(i) prepared-keys targets (issue 10), best ISA, 1 thread",
                       ["target", "on", "worst", "verdict"], targets, console=True,
                       note="worst: the smallest value of a lower bound, the largest of an "
                            "upper bound, over the rows of (g) and (h); needs --limits for "
                            "the bandwidth targets")
    kernels = kernel_speedups(benches, notes)
    if kernels:
        report.section("(b) speedup over scalar (geometric mean over the configurations)",
                       *kernel_table(kernels))
    svd = sparse_vs_dense(benches, notes) if select(benches, family="attend") else None
    if svd:
        for isa in sorted(svd[1], key=isa_key):
            report.section(f"(c) sparse/dense speedup per mix, {isa}: {svd[0]}",
                           *sparse_vs_dense_table(svd[1], isa))
    if attend and not any(math.isfinite(r["frac_sparse"]) or math.isfinite(r["frac_dense"])
                          for r in attend[1]):
        notes.append("no frac_limit counter (the bench needs --limits=limits.json): no (d)")
    threads = thread_scaling(benches, notes)
    if threads:
        report.section("(e) thread scaling: " + threads[0], *thread_table(threads[1]),
                       note="keys/s, and in brackets the speedup over 1 thread of the same policy")
    peers = peer_section(args.dir, notes)
    if peers:
        report.section(peers[0], peers[1], peers[2], console=True,
                       note="; ".join(peers[3]) + " (tools/peers/run.py; every peer variant: "
                            "peers/peers.tsv)")
        report.console += peers[3] + [""]
        if peers[4]:
            report.image("granattn vs the best peer", peers[4],
                         os.path.dirname(os.path.abspath(args.md or
                                                         os.path.join(args.dir, "summary.md"))))
    else:
        report.md += ["## (f) peers", "", PEERS_HOWTO, ""]
        report.console += ["(f) " + PEERS_HOWTO, ""]
    if os.path.exists(os.path.join(args.dir, "peer.json")):
        notes.append("peer.json (the former PyTorch 1.13 peer, tools/peer_torch.py) is no "
                     "longer read: the peers are tools/peers/")

    if extras["limits"]:
        for title, headers, cells in limits_tables(extras["limits"]):
            report.section("machine limits: " + title, headers, cells)

    md_path = args.md or os.path.join(args.dir, "summary.md")
    if args.plots:
        plots = make_plots(os.path.join(args.dir, "plots"), attend, kernels, svd, threads,
                           notes, prepared)
        if plots:
            report.md += ["## Plots", ""]
            for path in plots:
                report.image(os.path.basename(path), path, os.path.dirname(os.path.abspath(md_path)))
    if notes:
        report.md += ["## Missing or partial", ""] + [f"- {n}" for n in notes] + [""]
    with open(md_path, "w", encoding="utf-8") as f:
        f.write("\n".join(report.md))

    print("\n".join(report.console))
    for n in notes:
        print(f"note: {n}")
    print(f"summary written to {md_path}")
    if args.strict and errored:
        print(f"summary.py: {len(errored)} benchmarks reported an error", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
