#!/usr/bin/python3
"""run.py — granattn's decode step against today's CPU attention peers, interleaved.

The work is granattn-bench's `attend` (T = 1 query, all H heads) and
`attend_block` (T = 32 queries) families, dense fp32, dh 64: C [H,T,dh] =
softmax(Q K^T / sqrt(dh)) V per head over K, V [H,N,dh]. For every shape
(N, H, T, threads, cache) it runs R interleaved rounds of

  granattn-bench for that case (mix dense and sparse 70-20-10 seed, path full,
  place compact, the best ISA), then every peer variant (tools/peers/worker.py):
  PyTorch (sdpa, matmul), ONNX Runtime (matmul graph, com.microsoft
  MultiHeadAttention, ONNX Attention), OpenVINO (matmul graph, SDPA op) and
  ggml (ggml_flash_attn_ext, mul_mat path; the C driver tools/peers/ggml_attn)

so that load on a shared machine hits every side alike; each number is the
median over the rounds. Within a round each side is timed the same way: CHUNKS
windows of MIN_TIME/CHUNKS s (granattn-bench: --benchmark_repetitions=CHUNKS
--benchmark_min_time=MIN_TIME/CHUNKS, real time), the round's value the median
of the windows' mean time per call.

Before timing, each peer variant's output (on the first and the last K/V set)
is checked against a float64 numpy reference: err = max|C - C_ref| / max|V|
(C is a convex combination of V rows). A variant with err > --tol (default
2e-5; fp32 implementations measure ~1e-7, a bf16 or fp16 step >= 1e-4) is
reported as wrong and excluded from "best peer".

Threads are pinned as granattn's pool is: each side runs with the CPU affinity
of the first T PUs in hwloc's logical order (the PUs of the pool's compact
placement, which binds one worker per PU); peers get intra-op threads = T,
OMP_NUM_THREADS = MKL_NUM_THREADS = T, OMP_WAIT_POLICY=PASSIVE and OMP_PLACES
= those PUs with OMP_PROC_BIND=close (PyTorch, ggml); OpenVINO
INFERENCE_NUM_THREADS = T with CPU pinning, ONNX Runtime intra_op_num_threads =
T. While granattn-bench runs, the peers' worker processes are stopped
(SIGSTOP of their process groups, SIGCONT before their own timing): idle
runtime threads (ONNX Runtime's spinning pool) would otherwise take a core
from granattn's 2-thread rounds. Cold cache: K/V sets totalling > 2.5x the
LLC rotate per call, exactly the sets granattn-bench --cache=cold builds
(their count is its cold_sets counter).

Outputs in --out DIR: peers.json (raw: every round of every side, the order
they ran in ("timeline"), reference errors, peer versions and SIMD paths, thread
settings, CPU; rewritten after every shape), and through
tools/peers/report.py ratios.tsv, ratios.png and the printed table.
A progress line per shape (with an ETA) goes to stderr.

Peers come from the venv of tools/peers/setup.sh (.venv-peers); this script
re-executes itself on that venv's interpreter. Exit status: 0 done, 2 bad
command line, 3 no peer usable (run tools/peers/setup.sh), 1 other failures.
Test hook: GA_PEERS_PERTURB=PEER-VARIANT:EPS adds EPS to that variant's output
before the reference check (tests/test_peers.sh shows the check rejects it).
"""

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))
import report  # noqa: E402  (pure Python; plotting happens in a separate process)

PEERS = ("torch", "ort", "openvino", "ggml")
ALL_N = [64, 256, 1024, 4096, 16384, 65536]
DH = 64
SPARSE_MIX = "70-20-10"
DEBIAN_PY = "/usr/bin/python3"


def int_list(text, what, lo=1, hi=1 << 24):
    try:
        vals = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what}: not a comma-separated list of integers: {text!r}")
    bad = [v for v in vals if not lo <= v <= hi]
    if bad:
        raise argparse.ArgumentTypeError(f"{what}: {bad[0]} is out of range ({lo}..{hi})")
    return vals


def name_list(text, what, allowed):
    vals = [v for v in text.split(",")]
    bad = [v for v in vals if v not in allowed]
    if bad or not vals:
        raise argparse.ArgumentTypeError(f"{what}: unknown {bad[0] if bad else '(empty)'!r} "
                                         f"(one of {', '.join(allowed)})")
    return vals


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="tools/peers/run.py",
        description="Time granattn's decode step (granattn-bench attend / attend_block, dense "
                    "and sparse) against PyTorch, ONNX Runtime, OpenVINO and ggml on the same "
                    "work, interleaved rounds, medians; writes peers.json, ratios.tsv and a plot.",
        epilog="Examples: tools/peers/run.py --out results/<machine>/peers (the full grid, 96 "
               "shapes x 5 rounds, 45-60 min on a 2-core box); tools/peers/run.py --quick "
               "--peers ort --out /tmp/p (a smoke run, seconds).")
    p.add_argument("--out", metavar="DIR", help="result directory (default results/<machine>/peers)")
    p.add_argument("--N", type=lambda s: int_list(s, "--N", 1, 1 << 20),
                   help="key counts (default 64,256,1024,4096,16384,65536)")
    p.add_argument("--H", type=lambda s: int_list(s, "--H", 1, 256), help="heads (default 4,8)")
    p.add_argument("--T", type=lambda s: int_list(s, "--T", 1, 32),
                   help="queries per step: 1 (attend) and/or 32 (attend_block) (default 1,32)")
    p.add_argument("--threads", type=lambda s: int_list(s, "--threads", 1, 1024),
                   help="thread counts (default 1,2, at most the CPUs available)")
    p.add_argument("--cache", type=lambda s: name_list(s, "--cache", ("hot", "cold")),
                   help="hot and/or cold (default hot,cold)")
    p.add_argument("--peers", type=lambda s: name_list(s, "--peers", PEERS),
                   help="peers (default: every one tools/peers/setup.sh installed)")
    p.add_argument("--rounds", type=int, help="interleaved rounds per shape (default 5)")
    p.add_argument("--min-time", type=float, help="seconds per side and round (default 0.1)")
    p.add_argument("--chunks", type=int, help="timing windows per side and round (default 5)")
    p.add_argument("--tol", type=float, default=2e-5,
                   help="largest accepted max|C - C_ref| / max|V| (default 2e-5)")
    p.add_argument("--bench", default=os.path.join(ROOT, "build/bench/granattn-bench"),
                   help="granattn-bench (default build/bench/granattn-bench)")
    p.add_argument("--isa", help="granattn ISA (default: the best one granattn-bench runs)")
    p.add_argument("--limits", metavar="FILE",
                   help="machine limits for frac_limit (default results/<machine>/limits.json "
                        "when present)")
    p.add_argument("--venv", default=os.path.join(ROOT, ".venv-peers"),
                   help="the peers' venv (default .venv-peers, made by tools/peers/setup.sh)")
    p.add_argument("--quick", action="store_true",
                   help="smoke preset for axes not given: N 64,1024, H 4, T 1,32, threads 1, "
                        "cache hot, 2 rounds, 0.03 s, 3 chunks")
    p.add_argument("--no-report", action="store_true", help="write peers.json only")
    a = p.parse_args(argv)
    q = a.quick
    a.N = a.N or ([64, 1024] if q else ALL_N)
    a.H = a.H or ([4] if q else [4, 8])
    a.T = a.T or [1, 32]
    a.threads = a.threads or ([1] if q else [1, 2])
    a.cache = a.cache or (["hot"] if q else ["hot", "cold"])
    a.rounds = a.rounds if a.rounds is not None else (2 if q else 5)
    a.min_time = a.min_time if a.min_time is not None else (0.03 if q else 0.1)
    a.chunks = a.chunks if a.chunks is not None else (3 if q else 5)
    bad_T = [t for t in a.T if t not in (1, 32)]
    if bad_T:
        p.error(f"--T: {bad_T[0]} is not a granattn-bench family (1: attend, 32: attend_block)")
    if a.rounds < 1:
        p.error("--rounds must be >= 1")
    if not (a.min_time > 0 and a.min_time <= 60):
        p.error("--min-time must be in (0, 60] seconds")
    if not 1 <= a.chunks <= 100:
        p.error("--chunks must be in 1..100")
    if not (a.tol > 0):
        p.error("--tol must be > 0")
    ncpu = len(os.sched_getaffinity(0))
    if max(a.threads) > ncpu:
        p.error(f"--threads {max(a.threads)} > the {ncpu} CPUs this process may use")
    return a


def reexec_in_venv(venv):
    """Runs this script on the venv's interpreter (numpy, the peers) unless already there."""
    py = os.path.join(venv, "bin", "python3")
    if os.path.realpath(sys.prefix) == os.path.realpath(venv):
        return
    if not os.path.exists(py):
        print(f"run.py: no peers venv at {venv}: run tools/peers/setup.sh first", file=sys.stderr)
        sys.exit(3)
    os.execv(py, [py, os.path.abspath(__file__)] + sys.argv[1:])


def log(msg):
    print(f"peers: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- machine

def machine_slug():
    try:
        return subprocess.run([DEBIAN_PY, os.path.join(ROOT, "tools/machine_info.py"), "--slug"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_info():
    info = {"model": "", "flags": []}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k.strip() == "model name" and not info["model"]:
                    info["model"] = v.strip()
                if k.strip() in ("flags", "Features") and not info["flags"]:
                    info["flags"] = [x for x in v.split() if x.startswith(("avx", "fma", "amx", "asimd", "sve"))]
    except OSError:
        pass
    info["cpus"] = sorted(os.sched_getaffinity(0))
    info["llc_bytes"] = llc_bytes()
    return info


def llc_bytes():
    """The last-level cache size (sum over instances) from sysfs (for peers.json only)."""
    best = (0, 0)
    seen = set()
    base = "/sys/devices/system/cpu"
    try:
        for cpu in os.listdir(base):
            d = os.path.join(base, cpu, "cache")
            if not cpu.startswith("cpu") or not os.path.isdir(d):
                continue
            for idx in os.listdir(d):
                try:
                    rd = lambda n: open(os.path.join(d, idx, n)).read().strip()  # noqa: E731
                    if rd("type") == "Instruction":
                        continue
                    lvl, size, ident = int(rd("level")), rd("size"), rd("shared_cpu_list")
                    b = int(size[:-1]) * {"K": 1 << 10, "M": 1 << 20}.get(size[-1], 1)
                    if (lvl, ident) in seen:
                        continue
                    seen.add((lvl, ident))
                    best = (lvl, b) if lvl > best[0] else (lvl, best[1] + b) if lvl == best[0] else best
                except (OSError, ValueError):
                    pass
    except OSError:
        pass
    return best[1]


def pool_cpus(threads):
    """OS indices of the PUs granattn's pool binds with place:compact: the first
    `threads` PUs in hwloc's logical order (lstopo) within this process's CPU mask."""
    mask = set(os.sched_getaffinity(0))
    order = sorted(mask)
    try:
        out = subprocess.run(["lstopo-no-graphics", "--only", "pu", "-p"],
                             capture_output=True, text=True, timeout=30)
        cand = [int(w[2:]) for w in out.stdout.split() if w.startswith("P#") and w[2:].isdigit()]
        if out.returncode == 0 and [c for c in cand if c in mask]:
            order = [c for c in cand if c in mask]
    except (OSError, subprocess.TimeoutExpired):
        pass
    return order[:threads]


def git_rev():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def read_pins():
    pins = {}
    with open(os.path.join(HERE, "pins.txt"), encoding="utf-8") as f:
        for line in f:
            parts = line.split("#")[0].split()
            if len(parts) >= 2:
                pins[parts[0]] = parts[1]
    return pins


def read_setup_status(venv):
    st = {}
    try:
        with open(os.path.join(venv, "peers-status.tsv"), encoding="utf-8") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) >= 3:
                    st[parts[0]] = {"status": parts[1], "what": parts[2]}
    except OSError:
        pass
    return st


# ---------------------------------------------------------------- granattn-bench

def best_isa(bench):
    out = subprocess.run([bench, "--list", "--sweep=quick", "--family=attend", "--N=64", "--H=4",
                          "--mix=dense", "--path=full"], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{bench} --list failed: {out.stderr.strip()[-300:]}")
    order = ["scalar", "neon", "avx2", "avx512"]
    isas = {part.split(":", 1)[1] for line in out.stdout.split() for part in line.split("/")
            if part.startswith("isa:")}
    known = [i for i in order if i in isas]
    if not known:
        raise RuntimeError(f"{bench} --list shows no ISA")
    return known[-1]


def run_bench(args, shape, cpus, outjson):
    """One round of granattn-bench for a shape: dense and sparse, CHUNKS repetitions."""
    N, H, T, threads, cache = shape
    fam = "attend" if T == 1 else "attend_block"
    cmd = [args.bench, "--sweep=quick", f"--family={fam}", f"--N={N}", f"--H={H}", f"--dh={DH}",
           f"--mix=dense,{SPARSE_MIX}", "--mode=seed", "--path=full", "--dist=gauss2",
           f"--threads={threads}", "--place=compact", f"--cache={cache}", f"--isa={args.isa}",
           f"--benchmark_repetitions={args.chunks}",
           f"--benchmark_min_time={args.min_time / args.chunks:.6g}",
           f"--benchmark_out={outjson}", "--benchmark_out_format=json"]
    if args.limits:
        cmd.append(f"--limits={args.limits}")
    if os.path.exists(outjson):
        os.unlink(outjson)
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                       preexec_fn=lambda: os.sched_setaffinity(0, cpus))
    res = {"cmd": " ".join(cmd), "dense_us": None, "sparse_us": None, "frac_limit_dense": None,
           "cold_sets": None}
    if p.returncode != 0 or not os.path.exists(outjson):
        res["error"] = f"granattn-bench exit {p.returncode}: {p.stderr.strip()[-300:]}"
        return res
    import lib_results as lr
    _, entries = lr.load_bench(outjson)
    per = {"dense": [], SPARSE_MIX: []}
    frac, cold, errors = [], None, []
    for e in entries:
        if e.get("run_type", "iteration") != "iteration":
            continue
        _, fields, _ = lr.parse_name(lr.entry_run_name(e))
        mix = fields.get("mix")
        if e.get("error_occurred"):
            errors.append(f"{mix}: {e.get('error_message')}")
            continue
        if mix in per:
            per[mix].append(lr.entry_time_ns(e, "real_time") / 1e3)
            if mix == "dense" and "frac_limit" in e:
                frac.append(float(e["frac_limit"]))
            if "cold_sets" in e:
                cold = int(e["cold_sets"])
    res["dense_us"] = report.median(per["dense"])
    res["sparse_us"] = report.median(per[SPARSE_MIX])
    res["frac_limit_dense"] = report.median(frac)
    res["cold_sets"] = cold
    if errors:
        res["error"] = "; ".join(errors)[:400]
    return res


# ---------------------------------------------------------------- peers

class Worker:
    """A tools/peers/worker.py process for one peer at one thread count."""

    def __init__(self, args, peer, threads, cpus):
        self.peer, self.threads = peer, threads
        env = dict(os.environ)
        t = str(threads)
        env.update(OMP_NUM_THREADS=t, MKL_NUM_THREADS=t, OPENBLAS_NUM_THREADS=t,
                   OMP_WAIT_POLICY="PASSIVE", OMP_PROC_BIND="close",
                   OMP_PLACES=",".join("{%d}" % c for c in cpus), PYTHONUNBUFFERED="1")
        env.pop("OMP_DISPLAY_ENV", None)
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "worker.py"), "--peer", peer, "--threads", t,
             "--ggml", os.path.join(args.venv, "ggml_attn")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True,
            bufsize=1, env=env, preexec_fn=lambda: os.sched_setaffinity(0, cpus),
            start_new_session=True)  # its own process group (pause/resume: the ggml driver too)
        ready = self._read()
        if not ready.get("ok"):
            self.close()
            raise RuntimeError(ready.get("why", "did not start"))

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            self.stderr.seek(0)
            tail = self.stderr.read()[-600:].strip()
            raise RuntimeError(f"{self.peer} worker exited (status {self.proc.poll()}): {tail}")
        return json.loads(line)

    def _signal(self, sig):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def pause(self):
        """SIGSTOP the worker's process group (between its own timings)."""
        self._signal(signal.SIGSTOP)

    def resume(self):
        self._signal(signal.SIGCONT)

    def ask(self, **msg):
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self):
        try:
            if self.proc.poll() is None:
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            self.proc.kill()
            self.proc.wait()


def make_inputs(d, N, H, T):
    """Q (scores with std ~2, as granattn-bench's gauss2), K, V: fp32 files in d;
    returns the float64 reference C [H,T,dh] and max|V|."""
    import numpy as np
    rng = np.random.default_rng(1000003 * N + 101 * H + T)
    q = (2.0 * rng.standard_normal((H, T, DH), dtype=np.float32)).astype(np.float32)
    k = rng.standard_normal((H, N, DH), dtype=np.float32)
    v = rng.standard_normal((H, N, DH), dtype=np.float32)
    q.tofile(os.path.join(d, "q.f32"))
    k.tofile(os.path.join(d, "k.f32"))
    v.tofile(os.path.join(d, "v.f32"))
    ref = np.empty((H, T, DH))
    for h in range(H):   # per head: keeps the float64 scores at T*N
        s = (q[h].astype(np.float64) @ k[h].astype(np.float64).T) / math.sqrt(DH)
        s -= s.max(axis=1, keepdims=True)
        a = np.exp(s)
        a /= a.sum(axis=1, keepdims=True)
        ref[h] = a @ v[h].astype(np.float64)
    return ref, float(np.abs(v).max())


def check_outputs(d, peer, variant, sets, ref, vmax, perturb):
    """err = max|C - ref| / max|V| over the written sets (nan when non-finite)."""
    import numpy as np
    worst = 0.0
    for s in sets:
        c = np.fromfile(os.path.join(d, f"out-{peer}-{variant}-{s}.f32"), dtype=np.float32)
        c = c.reshape(ref.shape).astype(np.float64)
        if perturb:
            c = c + perturb
        if not np.all(np.isfinite(c)):
            return float("nan")
        worst = max(worst, float(np.abs(c - ref).max()) / vmax)
    return worst


def parse_perturb():
    spec = os.environ.get("GA_PEERS_PERTURB", "")
    if not spec:
        return {}
    key, _, eps = spec.rpartition(":")
    try:
        return {key: float(eps)}
    except ValueError:
        log(f"ignoring GA_PEERS_PERTURB={spec!r} (expected PEER-VARIANT:EPS)")
        return {}


# ---------------------------------------------------------------- main

def shape_weight(shape):
    N, H, T, threads, cache = shape
    return 1.0 + N * H * T / (4.0 * 65536) * (1.5 if cache == "cold" else 1.0)


def fmt_eta(s):
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def main(argv):
    args = parse_args(argv)
    reexec_in_venv(args.venv)
    if not (os.path.isfile(args.bench) and os.access(args.bench, os.X_OK)):
        log(f"ERROR: {args.bench} not found: build it (ninja -C build bench/granattn-bench)")
        return 1
    slug = machine_slug()
    args.out = os.path.abspath(args.out or os.path.join(ROOT, "results", slug, "peers"))
    if args.limits is None:
        cand = os.path.join(ROOT, "results", slug, "limits.json")
        args.limits = cand if os.path.exists(cand) else ""
    elif not os.path.exists(args.limits):
        log(f"ERROR: --limits {args.limits}: not found")
        return 2
    if not args.limits:
        log("no machine limits (results/<machine>/limits.json): frac_limit_dense stays empty")
    try:
        args.isa = args.isa or best_isa(args.bench)
    except RuntimeError as e:
        log(f"ERROR: {e}")
        return 1
    os.makedirs(args.out, exist_ok=True)

    status = read_setup_status(args.venv)
    wanted = args.peers or [p for p in PEERS if status.get(p, {}).get("status") == "ok"]
    skipped = {p: status[p]["what"] if p in status else "not installed (tools/peers/setup.sh)"
               for p in (args.peers or PEERS) if status.get(p, {}).get("status") != "ok"}
    peers = [p for p in wanted if p not in skipped]
    for p, why in skipped.items():
        log(f"peer {p}: skipped: {why}")
    if not peers:
        log("ERROR: no peer usable: run tools/peers/setup.sh (see .venv-peers/peers-status.tsv)")
        return 3
    perturb = parse_perturb()

    shapes = [(N, H, T, t, c) for t in args.threads for c in args.cache for T in args.T
              for H in args.H for N in args.N]
    doc = {
        "tool": "tools/peers/run.py", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git": git_rev(), "machine": slug, "cpu": cpu_info(), "argv": argv,
        "bench": {"path": os.path.relpath(args.bench, ROOT), "isa": args.isa,
                  "limits": os.path.relpath(args.limits, ROOT) if args.limits else None,
                  "sparse": f"mix {SPARSE_MIX}, mode seed, path full, dist gauss2",
                  "place": "compact"},
        "config": {"dh": DH, "rounds": args.rounds, "min_time_s": args.min_time,
                   "chunks": args.chunks, "tol": args.tol,
                   "statistic": "per round: median of CHUNKS windows' mean time per call "
                                "(wall clock); per shape: median over rounds",
                   "error": "max|C - C_ref| / max|V|, C_ref float64 numpy, first and last K/V set",
                   "cpus": {}, "perturb": perturb or None},
        "pins": read_pins(), "setup": status, "peers": {}, "skipped_peers": skipped,
        "shapes": [],
    }
    json_path = os.path.join(args.out, "peers.json")

    def save():
        with open(json_path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
        os.replace(json_path + ".tmp", json_path)

    total_w = sum(shape_weight(s) for s in shapes)
    done_w = 0.0
    t_start = time.time()
    workers, workers_threads = {}, None
    tmp_root = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    log(f"{len(shapes)} shapes x {args.rounds} rounds; granattn-bench isa {args.isa}; peers "
        f"{', '.join(peers)}; out {args.out}")
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    rc = 0
    try:
        for si, shape in enumerate(shapes):
            N, H, T, threads, cache = shape
            cpus = pool_cpus(threads)
            doc["config"]["cpus"][str(threads)] = cpus
            if workers_threads != threads:
                for w in workers.values():
                    w.close()
                workers, workers_threads = {}, threads
                for p in peers:
                    try:
                        workers[p] = Worker(args, p, threads, cpus)
                        info = workers[p].ask(cmd="info")
                        doc["peers"].setdefault(p, {})[str(threads)] = info
                    except (RuntimeError, OSError, ValueError) as e:
                        log(f"peer {p} ({threads} threads): unavailable: {e}")
                        doc["skipped_peers"][f"{p}@{threads}"] = str(e)[:400]
            rec = {"N": N, "H": H, "T": T, "threads": threads, "cache": cache, "nsets": 1,
                   "granattn": {"dense_us": [], "sparse_us": [], "frac_limit_dense": [],
                                "errors": []},
                   "peers": {}, "timeline": []}
            d = tempfile.mkdtemp(prefix="ga-peers-", dir=tmp_root)
            try:
                ref, vmax = make_inputs(d, N, H, T)
                counters = {}
                for r in range(args.rounds):
                    # the peers' processes stay stopped while granattn-bench
                    # runs: idle runtime threads (ONNX Runtime spins by
                    # default) must not take a core from the other side
                    for w in workers.values():
                        w.pause()
                    try:
                        b = run_bench(args, shape, cpus, os.path.join(d, "bench.json"))
                    finally:
                        for w in workers.values():
                            w.resume()
                    rec["timeline"].append(f"{r}:granattn")
                    g = rec["granattn"]
                    g["dense_us"].append(b["dense_us"])
                    g["sparse_us"].append(b["sparse_us"])
                    g["frac_limit_dense"].append(b["frac_limit_dense"])
                    if b.get("error"):
                        g["errors"].append(b["error"])
                    if r == 0:
                        g["cmd"] = b["cmd"]
                        if cache == "cold":
                            if not b["cold_sets"]:
                                raise RuntimeError("granattn-bench reported no cold_sets "
                                                   f"({b.get('error', 'no result')})")
                            rec["nsets"] = b["cold_sets"]
                        load_peers(workers, rec, d, shape, ref, vmax, args, perturb)
                    order = list(workers)
                    order = order[r % len(order):] + order[:r % len(order)] if order else order
                    for p in order:
                        for v, pr in rec["peers"].items():
                            if not v.startswith(p + "-") or not pr["ok"]:
                                continue
                            start = counters.get(v, 0)
                            try:
                                t = workers[p].ask(cmd="time", variant=pr["variant"],
                                                   min_time=args.min_time, start=start,
                                                   chunks=args.chunks)
                            except (RuntimeError, OSError, ValueError) as e:
                                t = {"ok": False, "why": str(e)}
                            if not t.get("ok"):
                                pr["ok"], pr["why"] = False, f"timing failed: {t.get('why')}"
                                continue
                            counters[v] = start + t["calls"]
                            rec["timeline"].append(f"{r}:{v}")
                            for key in ("us", "mean_us", "median_call_us", "calls"):
                                pr.setdefault(key, []).append(t[key])
            except (RuntimeError, OSError, ValueError) as e:
                rec["error"] = str(e)[:400]
                log(f"shape N={N} H={H} T={T} threads={threads} {cache}: {e}")
            finally:
                for w in workers.values():
                    try:
                        w.ask(cmd="drop")
                    except (RuntimeError, OSError, ValueError):
                        pass
                shutil.rmtree(d, ignore_errors=True)
            doc["shapes"].append(rec)
            save()
            done_w += shape_weight(shape)
            el = time.time() - t_start
            row = report.shape_row(rec)
            best = (f"best peer {row['best_peer']} {row['best_peer_us']:.1f} us"
                    if row["best_peer"] else "no valid peer")
            log(f"[{si + 1}/{len(shapes)}] N={N} H={H} T={T} threads={threads} {cache}: "
                f"granattn dense {report.fmt_us(row['ga_dense_us'])}, sparse "
                f"{report.fmt_us(row['ga_sparse_us'])}; {best}; dense x{report.fmt_x(row['x_dense'])} "
                f"sparse x{report.fmt_x(row['x_sparse'])} | {fmt_eta(el)} elapsed, ETA "
                f"{fmt_eta(el / done_w * (total_w - done_w))}")
    except KeyboardInterrupt:
        log("interrupted: peers.json has the shapes done so far")
        rc = 130
    finally:
        for w in workers.values():
            w.close()
        save()
    if not args.no_report and doc["shapes"]:
        p = subprocess.run([DEBIAN_PY if os.path.exists(DEBIAN_PY) else sys.executable,
                            os.path.join(HERE, "report.py"), args.out])
        if p.returncode != 0:
            log(f"tools/peers/report.py failed (exit {p.returncode})")
            rc = rc or 1
    log(f"done in {fmt_eta(time.time() - t_start)}: {args.out}")
    return rc


def load_peers(workers, rec, d, shape, ref, vmax, args, perturb):
    """Loads the shape into every worker and checks each variant against the reference."""
    N, H, T, threads, cache = shape
    sets = sorted({0, rec["nsets"] - 1})
    for p, w in workers.items():
        try:
            res = w.ask(cmd="load", dir=d, N=N, H=H, T=T, dh=DH, nsets=rec["nsets"])
        except (RuntimeError, OSError, ValueError) as e:
            res = {"ok": False, "why": str(e)}
        if not res.get("ok"):
            rec["peers"][f"{p}-*"] = {"variant": "*", "ok": False, "why": res.get("why")}
            continue
        for v, st in res["variants"].items():
            key = f"{p}-{v}"
            pr = {"variant": v, "ok": bool(st["ok"]), "wrong": False}
            if not st["ok"]:
                pr["why"] = st.get("why")
            else:
                err = check_outputs(d, p, v, sets, ref, vmax, perturb.get(key, 0.0))
                pr["err"] = err
                if not err <= args.tol:   # nan too
                    pr["ok"], pr["wrong"] = False, True
                    pr["why"] = f"wrong: max|C - C_ref| / max|V| = {err:.3g} > tol {args.tol:g}"
                    log(f"{key} N={N} H={H} T={T}: {pr['why']} (excluded from best peer)")
            rec["peers"][key] = pr


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
