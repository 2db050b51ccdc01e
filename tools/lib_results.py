"""lib_results.py — reading granattn result sets (shared by summary.py and compare.py).

A result set is a directory written by tools/sweep.sh:
    bench.json    Google Benchmark 1.7.1 JSON output of granattn-bench
    limits.json   the machine's measured limits (granattn-bench --machine)
    machine.json  tools/machine_info.py
    peers/        tools/peers/run.py (optional, tools/sweep.sh --peers; read by
                  tools/peers/report.py)

Benchmark names look like
    attend/isa:avx512/N:4096/dh:64/H:8/mix:70-20-10/dist:gauss2/mode:seed/threads:1/place:none/cache:hot
i.e. a family followed by key:value fields.  Google Benchmark may append its own
segments (real_time, manual_time, min_time:..., repeats:..., iterations:...,
threads:...); key:value ones become fields, the others are kept as flags.
"""

import json
import math
import os
import statistics

# Google Benchmark's time units, in nanoseconds.
TIME_UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}

# Fields of a benchmark entry that are not counters.
NON_COUNTER_KEYS = {
    "name", "run_name", "run_type", "repetitions", "repetition_index",
    "aggregate_name", "aggregate_unit", "threads", "iterations", "real_time",
    "cpu_time", "time_unit", "family_index", "per_family_instance_index",
    "error_occurred", "error_message", "label",
}


class ResultError(Exception):
    """A result file is missing or malformed."""


def load_json(path):
    """Loads a JSON file; raises ResultError with a readable message."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise ResultError(f"{path}: not found") from None
    except json.JSONDecodeError as e:
        raise ResultError(f"{path}: not valid JSON ({e})") from None


def load_optional_json(path):
    """Loads a JSON file, or returns None when it does not exist."""
    if not os.path.exists(path):
        return None
    return load_json(path)


def bench_path(path):
    """Accepts a result directory or a bench.json file; returns the file path."""
    if os.path.isdir(path):
        return os.path.join(path, "bench.json")
    return path


def load_bench(path):
    """Loads a Google Benchmark JSON file (or DIR/bench.json).

    Returns (context, entries) where entries is the raw "benchmarks" list."""
    data = load_json(bench_path(path))
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise ResultError(f"{bench_path(path)}: no 'benchmarks' list "
                          "(not Google Benchmark JSON output?)")
    return data.get("context", {}), data["benchmarks"]


def parse_name(run_name):
    """Splits a benchmark run name into (family, fields, flags).

    'attend/isa:avx2/N:64/real_time' -> ('attend', {'isa': 'avx2', 'N': '64'}, ['real_time'])
    Field values stay strings; use field_int() for numbers."""
    parts = run_name.split("/")
    family = parts[0]
    fields = {}
    flags = []
    for part in parts[1:]:
        if ":" in part:
            key, value = part.split(":", 1)
            fields[key] = value
        elif part:
            flags.append(part)
    return family, fields, flags


def field_int(fields, key, default=None):
    """An integer field of a parsed name, or default when absent/not a number."""
    try:
        return int(fields[key])
    except (KeyError, ValueError):
        return default


def entry_time_ns(entry, key="real_time"):
    """real_time or cpu_time of one entry, converted to nanoseconds."""
    unit = TIME_UNIT_NS.get(entry.get("time_unit", "ns"), 1.0)
    return float(entry[key]) * unit


def entry_counters(entry):
    """The numeric counters of one entry (items_per_second, density, ...)."""
    counters = {}
    for key, value in entry.items():
        if key in NON_COUNTER_KEYS:
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            counters[key] = float(value)
    return counters


def canonical_name(run_name):
    """attend/attend_block names from before the path axis (no path: field) get
    path:full after their mode (what they measured: the unprepared step), so
    older result sets pair with newer ones in compare.py and summary.py."""
    parts = run_name.split("/")
    if parts[0] not in ("attend", "attend_block") or any(p.startswith("path:") for p in parts):
        return run_name
    for i, part in enumerate(parts):
        if part.startswith("mode:"):
            return "/".join(parts[: i + 1] + ["path:full"] + parts[i + 1:])
    return run_name


def entry_run_name(entry):
    """The name of the run an entry belongs to (without _median etc.), canonical
    (see canonical_name)."""
    if "run_name" in entry:
        return canonical_name(entry["run_name"])
    name = entry["name"]
    agg = entry.get("aggregate_name")
    if agg and name.endswith("_" + agg):
        name = name[: -len(agg) - 1]
    return canonical_name(name)


class Bench:
    """One benchmark (one run name) with all its repetitions.

    times_ns      real_time of every repetition (ns per iteration)
    cpu_times_ns  cpu_time of every repetition
    primary       the time Google Benchmark itself reports and uses for the
                  rate counters: "real_time" for runs named .../real_time
                  (UseRealTime) or .../manual_time, else "cpu_time"
    median_ns     median of the primary time (the "median" aggregate when present)
    median_real_ns, median_cpu_ns   medians of real_time and cpu_time
    counters      median of each counter
    """

    def __init__(self, run_name):
        self.run_name = run_name
        self.family, self.fields, self.flags = parse_name(run_name)
        self.times_ns = []
        self.cpu_times_ns = []
        self.rep_counters = []
        self.median_entry = None
        self.errors = []

    def add(self, entry):
        if entry.get("error_occurred"):
            self.errors.append(entry.get("error_message", "error"))
            return
        if entry.get("run_type") == "aggregate":
            if entry.get("aggregate_name") == "median":
                self.median_entry = entry
            return
        self.times_ns.append(entry_time_ns(entry, "real_time"))
        self.cpu_times_ns.append(entry_time_ns(entry, "cpu_time"))
        self.rep_counters.append(entry_counters(entry))

    @property
    def ok(self):
        return not self.errors and (self.times_ns or self.median_entry is not None)

    @property
    def repetitions(self):
        return len(self.times_ns)

    @property
    def primary(self):
        if "real_time" in self.flags or "manual_time" in self.flags:
            return "real_time"
        return "cpu_time"

    def median_of(self, key):
        """Median real_time or cpu_time in ns (the median aggregate when present)."""
        if self.median_entry is not None:
            return entry_time_ns(self.median_entry, key)
        values = self.times_ns if key == "real_time" else self.cpu_times_ns
        return statistics.median(values) if values else math.nan

    @property
    def median_ns(self):
        return self.median_of(self.primary)

    @property
    def median_real_ns(self):
        return self.median_of("real_time")

    @property
    def median_cpu_ns(self):
        return self.median_of("cpu_time")

    @property
    def counters(self):
        if self.median_entry is not None:
            return entry_counters(self.median_entry)
        keys = set()
        for c in self.rep_counters:
            keys.update(c)
        result = {}
        for key in keys:
            values = [c[key] for c in self.rep_counters if key in c]
            result[key] = statistics.median(values)
        return result

    def counter(self, key, default=math.nan):
        return self.counters.get(key, default)

    def get(self, key, default=None):
        """A name field ('isa', 'N', ...) or 'family'."""
        if key == "family":
            return self.family
        return self.fields.get(key, default)

    def key_without(self, *drop):
        """The run name with the given fields removed (to pair benchmarks)."""
        parts = [self.family]
        for k, v in self.fields.items():
            if k not in drop:
                parts.append(f"{k}:{v}")
        parts.extend(self.flags)
        return "/".join(parts)


def group_benchmarks(entries):
    """Groups raw entries by run name; returns {run_name: Bench} in file order."""
    benches = {}
    for entry in entries:
        if "name" not in entry:
            continue
        run_name = entry_run_name(entry)
        if run_name not in benches:
            benches[run_name] = Bench(run_name)
        benches[run_name].add(entry)
    return benches


def load_benches(path):
    """load_bench + group_benchmarks: returns (context, {run_name: Bench})."""
    context, entries = load_bench(path)
    return context, group_benchmarks(entries)


def geomean(values):
    """Geometric mean of positive finite values (nan when none)."""
    logs = [math.log(v) for v in values if v > 0 and math.isfinite(v)]
    if not logs:
        return math.nan
    return math.exp(sum(logs) / len(logs))


def format_table(headers, rows, align=None):
    """Plain-text table with aligned columns; rows are lists of strings."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    align = align or ["<"] + [">"] * (len(headers) - 1)

    def line(cells):
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths)).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out.extend(line(row) for row in rows)
    return "\n".join(out)


def markdown_table(headers, rows):
    """GitHub-flavoured markdown table; rows are lists of strings."""
    out = ["| " + " | ".join(headers) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|"]
    for row in rows:
        out.append("| " + " | ".join(row) + " |")
    return "\n".join(out)


def fmt_si(value, unit=""):
    """1234567 -> '1.23 M' (+unit); nan -> '-'."""
    if value is None or not math.isfinite(value):
        return "-"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}".rstrip()
    return f"{value:.3g} {unit}".rstrip()


def fmt_time_ns(ns):
    """Nanoseconds -> '12.3 us' style string; nan -> '-'."""
    if ns is None or not math.isfinite(ns):
        return "-"
    if ns >= 1e9:
        return f"{ns / 1e9:.3g} s"
    if ns >= 1e6:
        return f"{ns / 1e6:.3g} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.3g} us"
    return f"{ns:.3g} ns"


def fmt_ratio(value, digits=2):
    """A ratio as '1.23x'; nan -> '-'."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}f}x"


def fmt_num(value, digits=3):
    """A plain number with `digits` significant digits; nan -> '-'."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}g}"


def fmt_bytes(n):
    """16384 -> '16 KiB', 1073741824 -> '1 GiB' (binary units)."""
    if n is None or not math.isfinite(n):
        return "-"
    for factor, unit in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= factor:
            return f"{n / factor:.4g} {unit}"
    return f"{n:.0f} B"
