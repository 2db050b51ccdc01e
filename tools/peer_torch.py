#!/usr/bin/python3
"""peer_torch.py — time the granattn decode step written naturally in PyTorch (CPU).

The peer for granattn-bench's `attend` (one query, all heads) and `attend_block`
(32 queries) benchmarks, same N, H, dh:

  dense step   s = K q / sqrt(dh); a = softmax(s); c = a V            (per head)
  sparse step  levels = argmax(W2 relu(P + r) + b2)                   (GPN, shared by heads)
               keep = (s - max s >= theta[levels]); c = (a * keep) V  (seed mode:
               the concept's `attention_weights * attention_mask`)

As in ga_attend, the per-sentence GPN key projection P = E U^T + b1 and the
per-step query projection r = W x are inputs, computed outside the timed step.

Threads are pinned explicitly: OMP_NUM_THREADS, OPENBLAS_NUM_THREADS (OpenBLAS
ignores torch.set_num_threads), MKL_NUM_THREADS and OMP_WAIT_POLICY=PASSIVE are
set before torch is imported (the script re-executes itself with them), then
torch.set_num_threads.  With several --threads values it runs itself once per
value and merges the results.

Timing: torch.inference_mode, warm-up, then at least --min-runs runs and at
least --budget seconds per case; reports the median (and p10/p90) of the
per-run times from time.perf_counter_ns.

Output JSON (--out): {"tool": "peer_torch", "torch_version", "blas", "threads",
..., "cases": [{"name", "family": "attend"|"attend_block", "mode": "dense"|"seed",
"N", "H", "dh", "T", "threads", "median_us", "keys_per_second" (N*H*T keys per
step, as granattn-bench counts them), "density", ...}]}.
Exit status 3 when PyTorch is not available.
"""

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib_results as lr  # noqa: E402

DEBIAN_PYTHON = "/usr/bin/python3"   # Debian's python3-torch is installed for this one
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
G_HIDDEN = 16                        # docs/SPEC.md §1 defaults
TAU = (0.10, 0.01, 0.0)
BLOCK_T = 32


def parse_int_list(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"need positive integers: {text!r}")
    return values


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Time the dense and sparse (learned-granularity) attention decode "
                    "step in PyTorch on the CPU, as a peer for granattn-bench.")
    p.add_argument("--threads", type=parse_int_list,
                   help="thread count(s), comma-separated (default 1; with --match: the "
                        "benchmarks' thread counts, or only these)")
    p.add_argument("--out", metavar="FILE", help="write the results as JSON (default: stdout only)")
    p.add_argument("--N", type=parse_int_list, default=[64, 256, 1024, 4096, 16384],
                   help="key counts (default 64,256,1024,4096,16384)")
    p.add_argument("--H", type=parse_int_list, default=[8], help="heads, comma-separated (default 8)")
    p.add_argument("--dh", type=parse_int_list, default=[64],
                   help="head widths, comma-separated (default 64)")
    p.add_argument("--match", metavar="BENCH_JSON",
                   help="time the cases (family, N, H, dh, threads) of the attend and "
                        "attend_block benchmarks of this granattn-bench JSON file (N capped "
                        "by --max-N) instead of --N/--H/--dh")
    p.add_argument("--max-N", type=int, default=16384,
                   help="largest N taken from --match (default 16384)")
    p.add_argument("--block", type=int, default=BLOCK_T,
                   help=f"queries in the block case (default {BLOCK_T}; 0 skips it)")
    p.add_argument("--budget", type=float, default=0.5,
                   help="seconds of timed runs per case, at least (default 0.5)")
    p.add_argument("--min-runs", type=int, default=15,
                   help="timed runs per case, at least (default 15)")
    p.add_argument("--max-runs", type=int, default=5000,
                   help="timed runs per case, at most (default 5000)")
    p.add_argument("--quiet", action="store_true", help="no per-case lines on stderr")
    return p.parse_args(argv)


def jobs_from_bench(path, max_n, block_T):
    """The (family, N, H, dh, T, threads) cases of the attend benchmarks in a bench JSON."""
    _, entries = lr.load_bench(path)
    jobs = set()
    for entry in entries:
        family, fields, _ = lr.parse_name(lr.entry_run_name(entry))
        if family == "attend":
            T = 1
        elif family == "attend_block" and block_T > 0:
            T = block_T
        else:
            continue
        n, h, dh = (lr.field_int(fields, k) for k in ("N", "H", "dh"))
        threads = lr.field_int(fields, "threads", 1)
        if None not in (n, h, dh) and n <= max_n:
            jobs.add((family, n, h, dh, T, threads))
    return jobs


def build_jobs(args):
    """Sorted list of cases (family, N, H, dh, T, threads) to time."""
    if args.match:
        jobs = jobs_from_bench(args.match, args.max_N, args.block)
        if args.threads:
            jobs = {j for j in jobs if j[5] in args.threads}
    else:
        families = [("attend", 1)] + ([("attend_block", args.block)] if args.block > 0 else [])
        jobs = {(fam, n, h, dh, T, t) for fam, T in families for n in args.N for h in args.H
                for dh in args.dh for t in (args.threads or [1])}
    return sorted(jobs, key=lambda j: (j[5], j[0], j[2], j[3], j[1]))


# ---------------------------------------------------------------- environment

def torch_importable():
    return importlib.util.find_spec("torch") is not None


def wanted_env(threads):
    env = dict(os.environ)
    for var in THREAD_ENV_VARS:
        env[var] = str(threads)
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    return env


def env_is_set(threads):
    return all(os.environ.get(v) == str(threads) for v in THREAD_ENV_VARS) and \
        os.environ.get("OMP_WAIT_POLICY") == "PASSIVE"


def reexec(python, threads):
    """Replaces this process with `python this-script args` under the thread env."""
    env = wanted_env(threads)
    os.execve(python, [python, os.path.abspath(__file__)] + sys.argv[1:], env)


def ensure_interpreter_and_env(threads):
    """Re-executes under Debian's python (if torch is only there) and the thread env."""
    python = sys.executable
    if not torch_importable():
        if os.path.exists(DEBIAN_PYTHON) and os.path.realpath(python) != os.path.realpath(DEBIAN_PYTHON):
            reexec(DEBIAN_PYTHON, threads)
        print("peer_torch.py: PyTorch is not available (install python3-torch: "
              "tools/deps.sh --bench)", file=sys.stderr)
        sys.exit(3)
    if not env_is_set(threads):
        reexec(python, threads)


# ---------------------------------------------------------------- the steps

def make_problem(torch, N, H, dh, T):
    """Random inputs of one case: Q [H,T,dh], K, V [H,N,dh], GPN P [N,g], R [T,g]."""
    gen = torch.Generator().manual_seed(1234 + N + 7 * T)
    d = H * dh
    randn = lambda *shape: torch.randn(*shape, generator=gen)  # noqa: E731
    E = randn(N, d)
    U = randn(G_HIDDEN, d) / d ** 0.5
    b1 = randn(G_HIDDEN) * 0.1
    W = randn(G_HIDDEN, d) / d ** 0.5
    X = randn(T, d)
    prob = {
        "Q": randn(H, T, dh),
        "K": randn(H, N, dh),
        "V": randn(H, N, dh),
        "P": E @ U.T + b1,            # once per source sentence
        "R": X @ W.T,                 # once per decoder step (gpn_project_query)
        "W2": randn(len(TAU), G_HIDDEN) / G_HIDDEN ** 0.5,
        "b2": randn(len(TAU)) * 0.1,
        "scale": 1.0 / dh ** 0.5,
    }
    theta = [torch.log(torch.tensor(t)).item() if t > 0 else -float("inf") for t in TAU]
    prob["theta"] = torch.tensor(theta)
    return prob


def dense_step(torch, pr):
    """Dense softmax attention for T queries, all heads: returns C [H,T,dh]."""
    s = torch.matmul(pr["Q"], pr["K"].transpose(-1, -2)) * pr["scale"]
    a = torch.softmax(s, dim=-1)
    return torch.matmul(a, pr["V"])


def gpn_levels(torch, pr):
    """GPN argmax levels per (query, key): [T,N] (ties go to the lower level)."""
    u = torch.relu(pr["P"].unsqueeze(0) + pr["R"].unsqueeze(1))   # [T,N,g]
    z = torch.nn.functional.linear(u, pr["W2"], pr["b2"])         # [T,N,L], as nn.Linear
    return torch.argmax(z, dim=-1)


def sparse_step(torch, pr, with_mask=False):
    """Sparse step, seed mode: returns C [H,T,dh] (and the keep mask if asked)."""
    levels = gpn_levels(torch, pr)                                  # [T,N]
    s = torch.matmul(pr["Q"], pr["K"].transpose(-1, -2)) * pr["scale"]
    m = s.amax(dim=-1, keepdim=True)
    mask = (s - m) >= pr["theta"][levels].unsqueeze(0)             # [H,T,N]
    a = torch.softmax(s, dim=-1)
    c = torch.matmul(a * mask, pr["V"])
    return (c, mask, levels) if with_mask else c


def loaded_blas():
    """Paths of the BLAS/LAPACK libraries mapped into this process (Linux)."""
    paths = set()
    try:
        with open("/proc/self/maps", encoding="utf-8") as f:
            for line in f:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                name = os.path.basename(path)
                if "blas" in name or "lapack" in name or "mkl" in name:
                    paths.add(os.path.realpath(path))
    except OSError:
        pass
    return sorted(paths)


def blas_kind(paths):
    """'openblas', 'mkl', 'reference' (Debian's netlib libblas3) or 'unknown'."""
    text = " ".join(paths)
    if "openblas" in text:
        return "openblas"
    if "mkl" in text:
        return "mkl"
    if any("/blas/" in p or os.path.basename(p).startswith("libblas") for p in paths):
        return "reference"
    return "unknown"


def self_check(torch):
    """With every level 'fine' (theta = -inf) the sparse step equals the dense one."""
    pr = make_problem(torch, 64, 2, 16, 3)
    pr["theta"] = torch.full((len(TAU),), -float("inf"))
    diff = (sparse_step(torch, pr) - dense_step(torch, pr)).abs().max().item()
    if not diff <= 1e-5:
        raise RuntimeError(f"self-check failed: sparse(all fine) - dense = {diff}")


# ---------------------------------------------------------------- timing

def time_step(fn, args):
    """Runs fn repeatedly; returns per-run times in ns (after a warm-up)."""
    warm_end = time.perf_counter() + min(0.1, args.budget / 5)
    warm_runs = 0
    while warm_runs < 3 or time.perf_counter() < warm_end:
        fn()
        warm_runs += 1
    times = []
    end = time.perf_counter() + args.budget
    while len(times) < args.max_runs and (len(times) < args.min_runs or time.perf_counter() < end):
        t0 = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t0)
    return times


def percentile(sorted_values, q):
    idx = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[idx]


def run_case(torch, job, mode, args):
    family, N, H, dh, T, threads = job
    pr = make_problem(torch, N, H, dh, T)
    step = (lambda: dense_step(torch, pr)) if mode == "dense" else (lambda: sparse_step(torch, pr))
    times = sorted(time_step(step, args))
    med = percentile(times, 0.5) if len(times) % 2 else \
        0.5 * (times[len(times) // 2 - 1] + times[len(times) // 2])
    case = {
        "name": f"torch/{family}/N:{N}/dh:{dh}/H:{H}/mode:{mode}/threads:{threads}",
        "family": family, "mode": mode, "N": N, "H": H, "dh": dh, "T": T,
        "threads": threads, "runs": len(times),
        "median_us": med / 1e3,
        "p10_us": percentile(times, 0.1) / 1e3,
        "p90_us": percentile(times, 0.9) / 1e3,
        "keys_per_second": N * H * T / (med * 1e-9),   # as granattn-bench: N*H*T per step
    }
    if mode != "dense":
        _, mask, levels = sparse_step(torch, pr, with_mask=True)
        case["density"] = mask.float().mean().item()
        for lv in range(len(TAU)):
            case[f"mix{lv}"] = (levels == lv).float().mean().item()
    else:
        case["density"] = 1.0
    return case


def measure(threads, jobs, args):
    """Times the cases of one thread count (env already pinned); returns the result dict."""
    import torch
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set (only possible once per process)
    cases = []
    with torch.inference_mode():
        self_check(torch)
        for job in jobs:
            for mode in ("dense", "seed"):
                case = run_case(torch, job, mode, args)
                cases.append(case)
                if not args.quiet:
                    print(f"peer_torch: {case['name']:<62} {case['median_us']:10.1f} us "
                          f"({case['runs']} runs)", file=sys.stderr)
    blas_paths = loaded_blas()
    blas = blas_kind(blas_paths)
    if blas == "reference":
        print("peer_torch: WARNING: PyTorch runs on the reference (netlib) BLAS "
              f"({', '.join(blas_paths)}), many times slower than OpenBLAS: the peer "
              "numbers are not representative. Install libopenblas0-pthread.", file=sys.stderr)
    return {
        "tool": "peer_torch",
        "torch_version": torch.__version__,
        "blas": blas,
        "blas_libraries": blas_paths,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "threads": [threads],
        "torch_num_threads": torch.get_num_threads(),
        "env": {v: os.environ.get(v) for v in THREAD_ENV_VARS + ("OMP_WAIT_POLICY",)},
        "config": {"g": G_HIDDEN, "tau": list(TAU), "block_T": args.block,
                   "gpn_inputs": "P = E U^T + b1 and r = W x precomputed (as in ga_attend)",
                   "sparse_mode": "seed (softmax weights * keep mask)"},
        "cases": cases,
    }


def run_children(thread_counts, argv):
    """One child process per thread count (each pins its own env); merges the JSON."""
    merged = None
    for t in thread_counts:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
            path = tmp.name
        try:
            child_argv = strip_options(argv, ("--threads", "--out")) + ["--threads", str(t), "--out", path]
            proc = subprocess.run([sys.executable, os.path.abspath(__file__)] + child_argv,
                                  env=wanted_env(t), stdout=subprocess.DEVNULL, check=False)
            if proc.returncode != 0:
                return proc.returncode, None
            with open(path, encoding="utf-8") as f:
                part = json.load(f)
        finally:
            os.unlink(path)
        if merged is None:
            merged = part
        else:
            merged["threads"] += part["threads"]
            merged["cases"] += part["cases"]
    return 0, merged


def strip_options(argv, names):
    """argv without the given options (both '--x v' and '--x=v' forms)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in names:
            skip = True
            continue
        if any(a.startswith(n + "=") for n in names):
            continue
        out.append(a)
    return out


def print_table(result):
    print(f"PyTorch {result['torch_version']}, threads {result['threads']}")
    print(f"{'case':<62} {'median':>11} {'keys/s':>11} {'density':>8}")
    for c in result["cases"]:
        print(f"{c['name']:<62} {c['median_us']:9.1f} us {c['keys_per_second']:11.3g} "
              f"{c['density']:8.3f}")


def main(argv):
    args = parse_args(argv)
    try:
        jobs = build_jobs(args)
    except lr.ResultError as e:
        print(f"peer_torch.py: --match: {e}", file=sys.stderr)
        return 2
    if not jobs:
        print(f"peer_torch.py: nothing to time (--match {args.match}: no attend benchmark "
              f"with N <= {args.max_N}?)", file=sys.stderr)
        return 2
    thread_counts = sorted({j[5] for j in jobs})
    if len(thread_counts) > 1:
        if not torch_importable() and not os.path.exists(DEBIAN_PYTHON):
            print("peer_torch.py: PyTorch is not available", file=sys.stderr)
            return 3
        rc, result = run_children(thread_counts, argv)
        if rc != 0:
            return rc
    else:
        ensure_interpreter_and_env(thread_counts[0])
        result = measure(thread_counts[0], jobs, args)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
    print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
