#!/usr/bin/python3
"""frontier.py — the quality-density frontier of issue 12, in one resumable command.

Protocol (every choice made on the dev split, never on test):
  trunks   sentence (the history of models/default.ckpt's dense step): 1.
             configs/default.ini (learned GPN) from scratch for --trunk-steps
             steps (1 571) on data/tok, 2. its best.ckpt fine-tuned with dense
             attention for --trunk-dense-steps steps (1 000, warm-up 100, the
             config's lr); or --sentence-trunk CKPT;
           passage: the sentence trunk fine-tuned, dense, on the passage windows
             (data/windows/tok, tools/corpus/windows.py; max_len 640, warm-up
             100, lr 5e-4) for --passage-trunk-steps steps (1 610), or
             --passage-trunk CKPT.  The cheapest honest protocol: no second
             from-scratch model; say so in results.
  points   per set (sentence | passage), per point, per seed: a branch fine-tune
             from that set's trunk (granattn train --init TRUNK,
             lr 5e-4, inverse sqrt, --steps updates (100, warm-up --warmup 20),
             seed = GPN init + data order
             + dropout), then granattn eval on dev and test (beam --beam, sacreBLEU
             BLEU/chrF, decode density).  Methods (--points, comma separated):
               dense                      dense attention continued
               learned:MODE:LAMBDA[:gumbel]  learned GPN, MODE seed|renorm, lambda
                                          (gumbel: Gumbel sampling of the training levels)
               fixed:MODE:TAU             one threshold tau for every pair
               topk:MODE:FRAC             the FRAC * N largest weights per (query, head)
               fixed:MODE:@learned-M-L    tau calibrated on dev (granattn calibrate on
               topk:MODE:@learned-M-L     the set's dense trunk) / frac = the dev density
               random:MODE:@learned-M-L   / the dev level mix of learned:M:L (mean over
                                          its seeds): matched-density baselines
                                          (@learned-M-L-gumbel for a Gumbel point)
  report   results/<machine>/frontier/: points.tsv (test), points-dev.tsv,
             tests.tsv (sacreBLEU paired bootstrap, learned vs each baseline per
             density band and set), dense-cross.tsv (sentence vs passage dense
             model on the passage test), frontier-bleu.png / frontier-chrf.png
             (mean +- sd over seeds), gpn-analysis.png + gpn-analysis.tsv
             (tools/frontier_report.py).

Resumable: RUNS/<set>/<point>/s<seed>/ holds the run (config, checkpoints) and a
`done` marker; a killed run continues with granattn train --resume, finished
stages are skipped.  One progress line per finished run with the elapsed time
and an estimate of the rest.

Usage: tools/frontier.py [--quick] [--out RUNS] [--results DIR] [--steps N]
         [--seeds 1,2,3] [--points LIST] [--sets sentence,passage] [--jobs J]
         [--threads T] [--phase all|trunks|points|report] [--plan] ...
  --quick: the whole pipeline on configs/tiny.ini with toy data
  (tests/toy_data.py) in a few minutes (tests/test_frontier.sh).
Exit status: 0 done, 1 a run failed (its log is named), 2 bad usage, 3 stopped
at --budget-hours (report of what is done; rerun to continue), 130 stopped by
SIGINT/SIGTERM (rerun to continue).
"""

import argparse
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = "/usr/bin/python3"
VENV_PY = os.path.join(ROOT, ".venv-eval", "bin", "python3")
METHODS = ("dense", "learned", "fixed", "random", "topk")
MODES = ("seed", "renorm")
SETS = ("sentence", "passage")

# The plan of results/<machine>/frontier (9 points x 3 seeds x 2 sets, 100
# steps each: ~7 min per run on one core): two learned operating points
# (passage dev density ~0.42 and ~0.20), each with its three matched baselines,
# and dense.
DEFAULT_LAMBDAS = ("0.001", "0.01")
DEFAULT_POINTS = ",".join(
    ["learned:seed:%s" % l for l in DEFAULT_LAMBDAS]
    + ["%s:seed:@learned-seed-%s" % (b, l) for l in DEFAULT_LAMBDAS
       for b in ("fixed", "topk", "random")]
    + ["dense"])
QUICK_POINTS = ("dense,learned:seed:0.01,learned:seed:0.1,fixed:seed:@learned-seed-0.01,"
                "topk:seed:@learned-seed-0.01,random:seed:@learned-seed-0.01,topk:seed:0.3,"
                "fixed:seed:0.05")


def die(msg, code=2):
    print("frontier: %s" % msg, file=sys.stderr)
    sys.exit(code)


def fmt_dur(s):
    s = int(max(0, s))
    return "%dh%02dm" % (s // 3600, s // 60 % 60) if s >= 3600 else "%dm%02ds" % (s // 60, s % 60)


# ------------------------------------------------------------------ points
class Point:
    """One operating point: method, mode, param (a number, '@learned-M-L' or '-')."""

    def __init__(self, spec):
        parts = spec.strip().split(":")
        self.spec = spec.strip()
        self.gumbel = False
        self.method = parts[0]
        if self.method not in METHODS:
            raise ValueError("unknown method %r (one of %s)" % (self.method, ", ".join(METHODS)))
        if self.method == "dense":
            if len(parts) != 1:
                raise ValueError("'dense' takes no mode or parameter")
            self.mode, self.param = "-", "-"
        else:
            self.gumbel = len(parts) == 4 and parts[3] == "gumbel"
            if len(parts) != 3 and not (self.gumbel and parts[0] == "learned"):
                raise ValueError("expected METHOD:MODE:PARAM (learned: [:gumbel]), got %r" % spec)
            self.mode, self.param = parts[1], parts[2]
            if self.mode not in MODES:
                raise ValueError("%r: mode must be seed or renorm" % spec)
            if self.param.startswith("@"):
                if self.method in ("learned",):
                    raise ValueError("%r: a learned point takes a lambda, not a match" % spec)
                m = re.fullmatch(r"@learned-(seed|renorm)-([0-9.eE+]+)(-gumbel)?", self.param)
                if not m:
                    raise ValueError("%r: expected @learned-MODE-LAMBDA[-gumbel]" % spec)
                self.target = "learned-%s-%s%s" % (m.group(1), m.group(2), m.group(3) or "")
            else:
                if self.method == "random":
                    raise ValueError("%r: random takes @learned-MODE-LAMBDA (its level mix)" % spec)
                try:
                    v = float(self.param)
                except ValueError:
                    raise ValueError("%r: parameter %r is not a number" % (spec, self.param))
                lim = {"learned": (0, 1e6), "fixed": (0, 0.999999), "topk": (1e-9, 1)}[self.method]
                if not lim[0] <= v <= lim[1]:
                    raise ValueError("%r: %s outside [%g, %g]" % (spec, self.param, *lim))
        self.matched = self.param.startswith("@")
        self.name = self.method if self.method == "dense" else "%s-%s-%s%s" % (
            self.method, self.mode, self.param.replace("@", "m."), "-gumbel" if self.gumbel else "")

    def __repr__(self):
        return self.name


# -------------------------------------------------------------- toy data
def read_bin_targets(path):
    """Target id lists of a GATK token file (tools/corpus/spm.py's format)."""
    b = open(path, "rb").read()
    n = struct.unpack_from("<I", b, 8)[0]
    off, out = 16, []
    for _ in range(n):
        k = struct.unpack_from("<H", b, off)[0]
        off += 2 + 2 * k
        k = struct.unpack_from("<H", b, off)[0]
        out.append(list(struct.unpack_from("<%dH" % k, b, off + 2)))
        off += 2 + 2 * k
    return out


def make_toy_data(base):
    """Two toy sets (tests/toy_data.py): sentence (3-15 ids) and passage
    (20-60 ids), train/dev/test, with id-line references for --spm none."""
    for name, length, seed in (("sentence", "3:15", "7"), ("passage", "20:60", "8")):
        d = os.path.join(base, name)
        if os.path.exists(os.path.join(d, "ok")):
            continue
        os.makedirs(d, exist_ok=True)
        subprocess.check_call([PY, os.path.join(ROOT, "tests", "toy_data.py"), d, "train:600",
                               "dev:40", "test:30", "--seed", seed, "--len", length],
                              stdout=subprocess.DEVNULL)
        for split in ("dev", "test"):
            with open(os.path.join(d, split + ".es"), "w") as f:
                for ids in read_bin_targets(os.path.join(d, split + ".bin")):
                    f.write(" ".join(str(i) for i in ids if i not in (0, 2, 3)) + "\n")
        open(os.path.join(d, "ok"), "w").close()


# ------------------------------------------------------------- the runner
class Runner:
    def __init__(self, a):
        self.a = a
        self.bin = os.environ.get("GRANATTN_BIN") or os.path.join(ROOT, "build", "model", "granattn")
        self.lock = threading.Lock()
        self.procs = set()
        self.stopping = False
        self.t0 = time.time()
        self.durations = []
        self.done_runs = 0
        self.total_runs = 0
        self.out_of_budget = False
        self.match_locks = {}  # match.json path -> Lock (the seeds of a point start together)

    def match_lock(self, path):
        with self.lock:
            return self.match_locks.setdefault(path, threading.Lock())

    # data of a set: (token dir, reference dir, max_len, spm option)
    def data(self, s):
        a = self.a
        if a.quick:
            d = os.path.join(a.out, "toydata", s)
            return d, d, 64 if s == "sentence" else 128, ["--spm", "none"]
        if s == "sentence":
            return os.path.join(ROOT, "data/tok"), os.path.join(ROOT, "data/corpus"), None, []
        return (os.path.join(ROOT, "data/windows/tok"), os.path.join(ROOT, "data/windows"),
                a.passage_max_len, [])

    def run(self, cmd, log, cwd=ROOT):
        """Runs cmd (stdout+stderr appended to log); returns its exit status."""
        if self.stopping:
            return 143
        with open(log, "a") as f:
            f.write("$ %s\n" % " ".join(cmd))
            f.flush()
            p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=cwd,
                                 start_new_session=True)
            with self.lock:
                self.procs.add(p)
            rc = p.wait()
            with self.lock:
                self.procs.discard(p)
        return rc

    def stop(self, signum):
        """Forwards a signal to the running children (granattn train writes
        last.ckpt on SIGTERM/SIGINT) and stops starting new work."""
        self.stopping = True
        with self.lock:
            for p in list(self.procs):
                try:
                    os.killpg(p.pid, signum)
                except OSError:
                    pass

    def train(self, rdir, log, args, steps):
        """granattn train into rdir, resuming a killed run; marker train.done."""
        if os.path.exists(os.path.join(rdir, "train.done")):
            return 0
        last = os.path.join(rdir, "last.ckpt")
        if os.path.exists(last):
            cmd = [self.bin, "train", "--out", rdir, "--resume", "--threads", str(self.a.threads),
                   "--set", "max_steps=%d" % steps, "--quiet"]
        else:
            if os.path.isdir(rdir):  # killed before its first checkpoint: start over
                for f in ("config.ini", "log.tsv"):
                    if os.path.exists(os.path.join(rdir, f)):
                        os.remove(os.path.join(rdir, f))
            cmd = [self.bin, "train", "--out", rdir, "--threads", str(self.a.threads),
                   "--quiet"] + args
        rc = self.run(cmd, log)
        if rc == 0:
            open(os.path.join(rdir, "train.done"), "w").close()
        return rc

    def evaluate(self, rdir, log, s, split, name=None, extra=()):
        """granattn eval of rdir/last.ckpt on split of set s -> rdir/eval-NAME.json."""
        name = name or split
        js = os.path.join(rdir, "eval-%s.json" % name)
        if os.path.exists(js):
            return 0
        tok, ref, _, spm = self.data(s)
        cmd = [self.bin, "eval", "--model", os.path.join(rdir, "last.ckpt"), "--split", split,
               "--beam", str(self.a.beam), "--threads", str(self.a.threads), "--data-dir", tok,
               "--corpus-dir", ref, "--json", js, "--hyp", os.path.join(rdir, "hyp-%s.txt" % name)]
        return self.run(cmd + spm + list(extra), log)

    def progress(self, what, secs):
        with self.lock:
            self.done_runs += 1
            self.durations.append(secs)
            el = time.time() - self.t0
            left = self.total_runs - self.done_runs
            mean = sum(self.durations) / len(self.durations)
            est = left * mean / max(1, self.a.jobs)
            print("[%d/%d] %s: %s | elapsed %s | est. remaining %s (%s per run, %d in parallel)"
                  % (self.done_runs, self.total_runs, what, fmt_dur(secs), fmt_dur(el),
                     fmt_dur(est), fmt_dur(mean), self.a.jobs), flush=True)


def trunk_paths(a):
    sent = a.sentence_trunk or os.path.join(a.out, "trunk-sentence", "best.ckpt")
    pas = a.passage_trunk or os.path.join(a.out, "trunk-passage", "best.ckpt")
    return {"sentence": sent, "passage": pas}


def run_trunks(R, a):
    """The dense trunks (each stage skipped when given or done): sentence =
    1. from scratch with the config as it is (learned GPN), 2. its dense
    fine-tune; passage = the sentence trunk fine-tuned dense on the windows."""
    tp = trunk_paths(a)
    stages = []  # (run dir, what, steps, granattn train arguments)
    if not a.sentence_trunk:
        tok, _, ml, _ = R.data("sentence")
        d1 = os.path.join(a.out, "trunk-sentence-scratch")
        common = ["--set", "data_dir=%s" % tok] + (["--set", "max_len=%d" % ml] if ml else [])
        stages += [(d1, "sentence trunk from scratch", a.trunk_steps,
                    ["--config", a.config] + common),
                   (os.path.dirname(tp["sentence"]), "sentence trunk dense fine-tune",
                    a.trunk_dense_steps,
                    ["--config", a.config, "--init", os.path.join(d1, "best.ckpt"),
                     "--set", "dense=true", "--set", "warmup=100"] + common)]
    if "passage" in a.sets and not a.passage_trunk:
        tok, _, ml, _ = R.data("passage")
        stages.append((os.path.dirname(tp["passage"]), "passage trunk dense fine-tune",
                       a.passage_trunk_steps,
                       ["--config", a.config, "--init", tp["sentence"], "--set", "dense=true",
                        "--set", "data_dir=%s" % tok, "--set", "max_len=%d" % ml,
                        "--set", "warmup=100", "--set", "lr=5e-4"]))
    for d, what, steps, args in stages:
        os.makedirs(d, exist_ok=True)
        t = time.time()
        args = args + ["--set", "max_steps=%d" % steps, "--set", "max_minutes=0",
                       "--set", "ckpt_every=%d" % a.ckpt_every]
        if R.train(d, os.path.join(d, "train.log"), args, steps) != 0:
            if R.stopping:
                die("stopped; rerun the same command to continue", 130)
            die("%s failed (%s)" % (what, os.path.join(d, "train.log")), 1)
        if time.time() - t > 1:
            print("%s: %s (%d steps)" % (what, fmt_dur(time.time() - t), steps), flush=True)
    for s in a.sets:
        if not os.path.exists(tp[s]):
            die("no %s trunk %s (run --phase trunks)" % (s, tp[s]), 1)
    return tp


def learned_dev(a, s, target, seeds):
    """Mean dev density and level mix of learned point `target` over seeds."""
    dens, mixes = [], []
    for sd in seeds:
        js = os.path.join(a.out, s, target, "s%d" % sd, "eval-dev.json")
        d = json.load(open(js))
        dens.append(d["density"])
        mixes.append([lv["fraction"] for lv in d["levels"]])
    L = len(mixes[0])
    mix = [sum(m[l] for m in mixes) / len(mixes) for l in range(L)]
    tot = sum(mix)
    return sum(dens) / len(dens), [x / tot for x in mix]


def calibrate_match(R, a, s, p, trunk, log, cal):
    """Writes match.json of matched point p: the learned target's mean dev
    density and level mix over the seeds (fixed: the calibrated tau)."""
    rho, mix = learned_dev(a, s, p.target, a.seeds)
    m = {"target": p.target, "dev_density": rho, "dev_mix": mix}
    if p.method == "fixed":
        tok = R.data(s)[0]
        out = subprocess.run([R.bin, "calibrate", "--model", trunk, "--density", "%.6f" % rho,
                              "--split", "dev", "--data-dir", tok], cwd=ROOT,
                             capture_output=True, text=True)
        with open(log, "a") as f:
            f.write(out.stdout + out.stderr)
        mt = re.search(r"fixed_tau = ([0-9.eE+-]+)", out.stdout)
        if out.returncode != 0 or not mt:
            raise RuntimeError("calibrate failed for %s (%s)" % (p.name, log))
        m["tau"] = float(mt.group(1))
    tmp = cal + ".tmp"
    with open(tmp, "w") as f:
        json.dump(m, f, indent=1)
    os.replace(tmp, cal)


def resolve(R, a, s, p, trunk, log):
    """The config keys of point p in set s (matched points: calibrated on dev)."""
    if p.method == "dense":
        return ["--set", "dense=true"], "-"
    keys = ["--set", "norm=%s" % p.mode]
    if p.method == "learned":
        return keys + ["--set", "gpn=learned", "--set", "lambda=%s" % p.param,
                       "--set", "gumbel=%s" % ("true" if p.gumbel else "false")], p.param
    if not p.matched:
        if p.method == "fixed":
            return keys + ["--set", "gpn=fixed", "--set", "fixed_tau=%s" % p.param], p.param
        return keys + ["--set", "gpn=topk", "--set", "topk_frac=%s" % p.param], p.param
    cal = os.path.join(a.out, s, p.name, "match.json")
    with R.match_lock(cal):  # one calibration per point, not one per seed
        if not os.path.exists(cal):
            calibrate_match(R, a, s, p, trunk, log, cal)
    m = json.load(open(cal))
    if p.method == "fixed":
        return keys + ["--set", "gpn=fixed", "--set", "fixed_tau=%.6g" % m["tau"]], "%.6g" % m["tau"]
    if p.method == "topk":
        return keys + ["--set", "gpn=topk", "--set", "topk_frac=%.6f" % m["dev_density"]], \
            "%.6f" % m["dev_density"]
    mix = ",".join("%.6f" % x for x in m["dev_mix"])
    return keys + ["--set", "gpn=random", "--set", "random_probs=%s" % mix], mix.replace(",", "/")


def run_point(R, a, s, p, seed, trunk):
    """One (set, point, seed): fine-tune, dev and test evals; marker `done`."""
    rdir = os.path.join(a.out, s, p.name, "s%d" % seed)
    if os.path.exists(os.path.join(rdir, "done")):
        return True
    os.makedirs(rdir, exist_ok=True)
    log = os.path.join(rdir, "run.log")
    t = time.time()
    keys, param = resolve(R, a, s, p, trunk, log)
    tok, _, ml, _ = R.data(s)
    args = ["--config", a.config, "--init", trunk, "--set", "data_dir=%s" % tok,
            "--set", "seed=%d" % seed, "--set", "warmup=%d" % a.warmup, "--set", "lr=%s" % a.lr,
            "--set", "max_steps=%d" % a.steps, "--set", "max_minutes=0",
            "--set", "eval_every=%d" % a.steps, "--set", "ckpt_every=%d" % a.ckpt_every] + keys
    if ml:
        args += ["--set", "max_len=%d" % ml]
    rc = R.train(rdir, log, args, a.steps)
    t_train = time.time() - t
    for split in ("dev", "test"):
        if rc == 0:
            rc = R.evaluate(rdir, log, s, split)
    if rc == 0 and s == "sentence" and p.method == "dense" and "passage" in a.sets:
        # the sentence-level dense model on the passage test (dense-cross.tsv)
        tok, ref, pml, spm = R.data("passage")
        js = os.path.join(rdir, "eval-passage-test.json")
        if not os.path.exists(js):
            rc = R.run([R.bin, "eval", "--model", os.path.join(rdir, "last.ckpt"), "--split", "test",
                        "--beam", str(a.beam), "--threads", str(a.threads), "--data-dir", tok,
                        "--corpus-dir", ref, "--max-len", str(pml), "--json", js,
                        "--hyp", os.path.join(rdir, "hyp-passage-test.txt")] + spm, log)
    if rc != 0:
        if not R.stopping:
            print("frontier: %s %s seed %d failed (exit %d): %s" % (s, p.name, seed, rc, log),
                  file=sys.stderr, flush=True)
        return False
    json.dump({"set": s, "method": p.method, "mode": p.mode + ("+gumbel" if p.gumbel else ""),
               "param": param, "seed": seed,
               "point": p.name, "spec": p.spec, "train_seconds": round(t_train, 1),
               "seconds": round(time.time() - t, 1)}, open(os.path.join(rdir, "run.json"), "w"))
    # checkpoints of finished runs (121 MB per run at the default config):
    # analysis keeps last.ckpt of each learned point's first seed (the GPN
    # analysis traces one of them), all keeps everything, none nothing
    if a.keep_ckpt == "all":
        drop = ()
    elif a.keep_ckpt == "analysis" and p.method == "learned" and seed == a.seeds[0]:
        drop = ("best.ckpt",)
    else:
        drop = ("last.ckpt", "best.ckpt")
    for f in drop:
        if os.path.exists(os.path.join(rdir, f)):
            os.remove(os.path.join(rdir, f))
    open(os.path.join(rdir, "done"), "w").close()
    R.progress("%s %s seed %d (train %s)" % (s, p.name, seed, fmt_dur(t_train)), time.time() - t)
    return True


def run_points(R, a, points, tp):
    """Every (set, point, seed), a.jobs at a time; matched points wait for
    every seed of their learned target in the same set."""
    jobs = [(s, p, sd) for s in a.sets for p in points for sd in a.seeds]
    R.total_runs = len(jobs)
    state = {}  # (s, name, seed) -> None (pending) | 'run' | True | False
    for s, p, sd in jobs:
        d = os.path.join(a.out, s, p.name, "s%d" % sd, "done")
        state[(s, p.name, sd)] = True if os.path.exists(d) else None
    already = sum(1 for v in state.values() if v is True)
    R.done_runs = already
    if already:
        print("resuming: %d of %d runs already done" % (already, len(jobs)), flush=True)
    cv = threading.Condition()
    failed = []

    def ready(s, p):
        if not p.matched:
            return True
        return all(state.get((s, p.target, sd)) is True for sd in a.seeds)

    def worker(s, p, sd):
        ok = False
        try:
            ok = run_point(R, a, s, p, sd, tp[s])
        except Exception as e:  # a failed calibration, a missing file
            print("frontier: %s %s seed %d: %s" % (s, p.name, sd, e), file=sys.stderr, flush=True)
        with cv:
            state[(s, p.name, sd)] = ok
            if not ok:
                failed.append((s, p.name, sd))
            cv.notify_all()

    with cv:
        while True:
            running = sum(1 for v in state.values() if v == "run")
            pending = [(s, p, sd) for s, p, sd in jobs if state[(s, p.name, sd)] is None]
            blocked = [j for j in pending if j[1].matched and any(
                state.get((j[0], j[1].target, sd)) is False for sd in a.seeds)]
            for s, p, sd in blocked:
                state[(s, p.name, sd)] = False
                failed.append((s, p.name, sd))
            pending = [j for j in pending if j not in blocked]
            if R.stopping and running == 0:
                break
            if not pending and running == 0:
                break
            started = False
            if a.budget_hours and pending and not R.stopping:
                # start no run that would end after the budget (mean run time so far)
                est = mean_or(R.durations, 0.0)
                if time.time() - R.t0 + est > a.budget_hours * 3600:
                    if not R.out_of_budget:
                        print("frontier: budget of %g h reached: no new runs (rerun the same "
                              "command to continue)" % a.budget_hours, flush=True)
                    R.out_of_budget = True
                    if running == 0:
                        break
            if not R.stopping and not R.out_of_budget:
                for s, p, sd in pending:
                    if running >= a.jobs:
                        break
                    if ready(s, p):
                        state[(s, p.name, sd)] = "run"
                        threading.Thread(target=worker, args=(s, p, sd), daemon=True).start()
                        running += 1
                        started = True
            if not started:
                cv.wait(timeout=5)
    return failed


def mean_or(x, default):
    return sum(x) / len(x) if x else default


def check_points(a, points):
    names = {p.name for p in points}
    for p in points:
        if p.matched and p.target not in names:
            die("%s matches %s, which is not among --points" % (p.spec, p.target))


def main():
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="toy data + configs/tiny.ini, small budgets (a few minutes)")
    ap.add_argument("--out", help="run directory (default runs/frontier; --quick: runs/frontier-quick)")
    ap.add_argument("--results", help="report directory (default results/<machine>/frontier; "
                    "--quick: OUT/results)")
    ap.add_argument("--config", help="base config (default configs/default.ini; --quick tiny.ini)")
    ap.add_argument("--phase", default="all", choices=("all", "trunks", "points", "report"))
    ap.add_argument("--sets", default="sentence,passage", help="sentence,passage (default both)")
    ap.add_argument("--points", help="comma-separated point specs (default: see --plan)")
    ap.add_argument("--seeds", default="1,2,3", help="seeds, comma separated, or a count N (1..N)")
    ap.add_argument("--steps", type=int, help="fine-tuning steps per point (default 100; quick 30)")
    ap.add_argument("--trunk-steps", type=int,
                    help="sentence trunk steps from scratch (default 1571; quick 300)")
    ap.add_argument("--trunk-dense-steps", type=int,
                    help="sentence trunk dense fine-tune steps (default 1000; quick 100)")
    ap.add_argument("--passage-trunk-steps", type=int,
                    help="passage trunk fine-tune steps (default 1610; quick 100)")
    ap.add_argument("--sentence-trunk", help="use this dense checkpoint as the sentence trunk")
    ap.add_argument("--passage-trunk", help="use this dense checkpoint as the passage trunk")
    ap.add_argument("--passage-max-len", type=int, default=640, help="max_len of passage models")
    ap.add_argument("--lr", default="5e-4", help="fine-tuning peak learning rate (5e-4)")
    ap.add_argument("--warmup", type=int, default=20, help="fine-tuning warm-up steps (20)")
    ap.add_argument("--ckpt-every", type=int, help="checkpoint interval (default 50; quick 10)")
    ap.add_argument("--beam", type=int, default=4, help="beam of every evaluation (4)")
    ap.add_argument("--threads", type=int, default=1, help="threads per run (1)")
    ap.add_argument("--jobs", type=int, default=2, help="runs in parallel (2)")
    ap.add_argument("--keep-ckpt", default="analysis", choices=("analysis", "all", "none"),
                    help="checkpoints of finished runs (~120 MB each at the default config): "
                         "analysis (default) keeps last.ckpt of each learned point's first seed "
                         "(what the GPN analysis traces), all keeps every run's, none deletes them")
    ap.add_argument("--analysis-sents", type=int, default=200,
                    help="test sentences traced for the GPN analysis (200)")
    ap.add_argument("--budget-hours", type=float, default=0,
                    help="start no run that would end after this many hours of wall time "
                         "(mean run time so far); the runs in progress finish, the report is "
                         "written for what is done, exit status 3; rerun to continue (0: none)")
    ap.add_argument("--plan", action="store_true", help="print the runs and exit")
    a = ap.parse_args()

    if a.quick:
        a.out = a.out or os.path.join(ROOT, "runs", "frontier-quick")
        a.config = a.config or os.path.join(ROOT, "configs", "tiny.ini")
        defaults = {"steps": 30, "trunk_steps": 300, "trunk_dense_steps": 100,
                    "passage_trunk_steps": 100, "ckpt_every": 10}
        for k, v in defaults.items():
            if getattr(a, k) is None:
                setattr(a, k, v)
        a.points = a.points or QUICK_POINTS
        a.analysis_sents = min(a.analysis_sents, 10)
        if a.seeds == "1,2,3":
            a.seeds = "1,2"
    a.out = os.path.abspath(a.out or os.path.join(ROOT, "runs", "frontier"))
    a.config = os.path.abspath(a.config or os.path.join(ROOT, "configs", "default.ini"))
    for k, v in {"steps": 100, "trunk_steps": 1571, "trunk_dense_steps": 1000,
                 "passage_trunk_steps": 1610, "ckpt_every": 50}.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    a.points = a.points or DEFAULT_POINTS
    for k in ("steps", "trunk_steps", "trunk_dense_steps", "passage_trunk_steps", "ckpt_every",
              "beam", "threads", "jobs",
              "analysis_sents", "passage_max_len"):
        if getattr(a, k) < 1:
            die("--%s must be >= 1" % k.replace("_", "-"))
    if not a.budget_hours >= 0:
        die("--budget-hours must be >= 0")
    try:
        if re.fullmatch(r"[0-9]+", a.seeds):
            a.seeds = list(range(1, int(a.seeds) + 1))
        else:
            a.seeds = [int(x) for x in a.seeds.split(",")]
    except ValueError:
        die("--seeds %r: expected N or a list like 1,2,3" % a.seeds)
    if not a.seeds or len(set(a.seeds)) != len(a.seeds) or min(a.seeds) < 0:
        die("--seeds: distinct non-negative integers")
    a.sets = [x for x in a.sets.split(",") if x]
    if not a.sets or any(x not in SETS for x in a.sets) or len(set(a.sets)) != len(a.sets):
        die("--sets: a comma list of sentence, passage")
    try:
        points = [Point(x) for x in a.points.split(",") if x.strip()]
    except ValueError as e:
        die("--points: %s" % e)
    if not points or len({p.name for p in points}) != len(points):
        die("--points: empty or repeated")
    check_points(a, points)
    if not os.path.isfile(a.config):
        die("--config %s: no such file" % a.config)
    for t in (a.sentence_trunk, a.passage_trunk):
        if t and not os.path.isfile(t):
            die("trunk %s: no such file" % t)
    if a.results is None:
        if a.quick:
            a.results = os.path.join(a.out, "results")
        else:
            slug = subprocess.run([PY, os.path.join(ROOT, "tools", "machine_info.py"), "--slug"],
                                  capture_output=True, text=True).stdout.strip() or "machine"
            a.results = os.path.join(ROOT, "results", slug, "frontier")

    n = len(a.sets) * len(points) * len(a.seeds)
    if a.plan:
        print("sets %s, seeds %s, %d steps per point, %d points -> %d runs (%d at a time, %d thread(s) each)"
              % (",".join(a.sets), ",".join(map(str, a.seeds)), a.steps, len(points), n, a.jobs,
                 a.threads))
        for p in points:
            print("  %-34s %s" % (p.name, p.spec))
        return 0

    R = Runner(a)
    if not os.access(R.bin, os.X_OK):
        die("%s missing (meson setup build -Dbuildtype=release && ninja -C build)" % R.bin, 1)
    os.makedirs(a.out, exist_ok=True)
    if a.quick:
        make_toy_data(os.path.join(a.out, "toydata"))
    else:
        for s in a.sets:
            tok, ref, _, _ = R.data(s)
            for f in ("train.bin", "dev.bin", "test.bin"):
                if not os.path.exists(os.path.join(tok, f)):
                    die("%s missing (run tools/prepare-data.sh)" % os.path.join(tok, f), 1)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: R.stop(signum))
    print("frontier: %d runs (%d points x %d seeds x %s), %d steps each, %d at a time; runs in %s"
          % (n, len(points), len(a.seeds), "+".join(a.sets), a.steps, a.jobs, a.out), flush=True)
    rc = 0
    if a.phase in ("all", "trunks", "points"):
        tp = run_trunks(R, a)
        if R.stopping:
            return 130
        if a.phase != "trunks":
            failed = run_points(R, a, points, tp)
            if R.stopping:
                print("frontier: stopped; rerun the same command to continue", file=sys.stderr)
                return 130
            if failed:
                print("frontier: %d run(s) failed: %s" % (len(failed), ", ".join(
                    "%s/%s/s%d" % f for f in failed)), file=sys.stderr)
                rc = 1
            elif R.out_of_budget:
                rc = 3
    if a.phase in ("all", "report") and rc in (0, 3):
        py = VENV_PY if os.path.exists(VENV_PY) else PY
        cmd = [py, os.path.join(ROOT, "tools", "frontier_report.py"), "--runs", a.out,
               "--results", a.results, "--sets", ",".join(a.sets), "--seeds",
               ",".join(map(str, a.seeds)), "--points", ",".join(p.spec for p in points),
               "--analysis-sents", str(a.analysis_sents), "--beam", str(a.beam)]
        cmd += ["--passage-max-len", str(R.data("passage")[2] or a.passage_max_len)]
        if a.quick:
            cmd += ["--toy"]
        tp = trunk_paths(a)
        cmd += ["--trunks", "%s,%s" % (tp["sentence"], tp["passage"])]
        rrc = subprocess.call(cmd, cwd=ROOT)
        rc = rc or rrc
    return rc


if __name__ == "__main__":
    sys.exit(main())
