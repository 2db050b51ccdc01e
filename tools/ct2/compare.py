#!/usr/bin/python3
"""compare.py — granattn and CTranslate2 side by side on one checkpoint
(run through tools/ct2/compare.sh, which provides the .venv-ct2 interpreter).

Translates a token-id set (default: data/tok/test.en.ids, the in-process
SentencePiece ids of data/corpus/test.en, so that tokenisation is outside
both engines' timings) with both engines from the same checkpoint:

  granattn      BUILD/model/granattn translate --ids --output-ids --beam K
                --alpha A --threads T [--batch B] --max-len-a 0 --max-len-b M
                --timing; the time is the one --timing prints (decoding only:
                no model load, no file I/O)
  ctranslate2   the checkpoint exported by tools/ct2/export.py (float32),
                Translator(inter_threads=T, intra_threads=1) and
                translate_batch(max_batch_size=B) timed in-process
                (tools/ct2/ct2run.py: the model load is not timed either)

for every threads x batch combination, --reps times, the engines alternating
(which one goes first flips every run) and reports medians.  BLEU / chrF:
the ids decoded with data/spm/spm.model and scored against data/corpus/SET.es
with sacreBLEU's defaults (tools/eval_bleu.py's functions, imported).

Same decoding on both sides: beam K (default 4), granattn's GNMT length
penalty ((5 + len) / 6)^A with A = 0.6, reproduced exactly on the CTranslate2
side by re-ranking its K finished hypotheses (ct2run.py explains why and the
remaining corner cases), a fixed output limit of M generated tokens (eos
included; default: the model's max_len), pad/bos never generated, no minimum
length.  CTranslate2's own length penalty (score / len^B) is run once too,
with B = A * L0 / (6 + L0) (the B whose log-penalty has the same slope in
log(len) as granattn's at the median output length L0; --ct2-lp to choose),
to report how often that native rule changes the output.

Writes OUT/results.tsv (engine, model, set, threads, batch, beam,
sent_per_s, tok_per_s, bleu, chrf; tok_per_s counts generated tokens, eos
included, as granattn --timing does), OUT/runs.tsv (every timed run) and
OUT/README.md (machine, versions, command, greedy and beam agreement with
examples that differ, the length-penalty comparison, caveats).
"""

import argparse
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))


def fail(msg):
    print("compare: error: %s" % msg, file=sys.stderr)
    sys.exit(1)


def show(path):
    """A path as the README records it: relative to the repository when inside it, else
    its last two components (a machine's absolute paths mean nothing to a reader)."""
    if not path.startswith("/"):
        return path
    rel = os.path.relpath(path, ROOT)
    return rel if not rel.startswith("..") else os.path.join(*path.split("/")[-2:])


def parse_list(s, name):
    try:
        v = [int(x) for x in s.replace(",", " ").split()]
    except ValueError:
        fail("%s %r: expected integers" % (name, s))
    if not v or min(v) < 1:
        fail("%s %r: expected integers >= 1" % (name, s))
    return v


def args_parser():
    p = argparse.ArgumentParser(
        prog="tools/ct2/compare.sh",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n", 1)[1].split("\nWrites")[0],
        epilog="Example (the lead's quiet run):\n"
               "  tools/ct2/compare.sh --model runs/default-dense/best.ckpt\n"
               "Preliminary / quick:\n"
               "  tools/ct2/compare.sh --model runs/default-dense/best.ckpt --limit 300 "
               "--reps 3 --preliminary --out /tmp/ct2-prelim")
    p.add_argument("--model", default="runs/default-dense/best.ckpt",
                   help="granattn checkpoint (default: runs/default-dense/best.ckpt)")
    p.add_argument("--set", default="test",
                   help="test | dev: data/tok/SET.en.ids against data/corpus/SET.es; "
                        "passage-LEN: passages of ~LEN pieces built by "
                        "tools/corpus/passages.py (positions raised to fit); windows: "
                        "the passage test set of tools/corpus/windows.py (data/windows/tok/"
                        "test.en.ids against data/windows/test.es: 2-16 consecutive verses, "
                        "for models fine-tuned on data/windows)")
    p.add_argument("--engines", default="granattn,ctranslate2",
                   help="engines to run (default granattn,ctranslate2; granattn alone, e.g. "
                        "for a sparse model, which CTranslate2 can only run dense)")
    p.add_argument("--name",
                   help="model name in results.tsv (default: the checkpoint's directory name)")
    p.add_argument("--limit", type=int, help="first N sentences only")
    p.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    p.add_argument("--batch", default="1,32", help="batch sizes (default 1,32)")
    p.add_argument("--beam", type=int, default=4)
    p.add_argument("--alpha", type=float, default=0.6, help="GNMT length penalty (default 0.6)")
    p.add_argument("--ct2-lp", type=float,
                   help="CTranslate2 native length penalty for the side comparison "
                        "(default: matched to alpha at the median output length)")
    p.add_argument("--max-len", type=int,
                   help="output limit M, generated tokens incl. eos (default: the model's "
                        "max_len)")
    p.add_argument("--reps", type=int, default=3, help="timed repetitions (default 3)")
    p.add_argument("--ct2-thread-mode", choices=("inter", "intra"), default="inter",
                   help="threads T as inter_threads T (default; like granattn: sentences "
                        "in parallel) or intra_threads T")
    p.add_argument("--compute-type", default="float32",
                   help="CTranslate2 compute type (default float32, as granattn)")
    p.add_argument("--granattn", default="build/model/granattn", help="granattn binary")
    p.add_argument("--out", help="output directory (default: results/<machine>/decode-vs-ct2)")
    p.add_argument("--preliminary", action="store_true",
                   help="label the README as a preliminary run (busy machine)")
    p.add_argument("--examples", type=int, default=5, help="differing examples shown (default 5)")
    return p


# ---------------------------------------------------------------- helpers

def read_lines(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def write_ids(path, rows):
    with open(path, "w") as f:
        f.write("".join(" ".join(r) + "\n" for r in rows))


def machine_info(build):
    try:
        out = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "machine_info.py"),
                              "--build", build], capture_output=True, text=True, timeout=60)
        return json.loads(out.stdout)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return {}


def git_rev():
    try:
        rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except OSError:
        return "?"


class Granattn:
    def __init__(self, binary, ckpt, max_pos):
        self.bin, self.ckpt, self.max_pos = binary, ckpt, max_pos
        h = subprocess.run([binary, "translate", "--help"], capture_output=True, text=True)
        if h.returncode != 0:
            fail("%s translate --help failed: %s" % (binary, h.stderr.strip()))
        self.has_batch = re.search(r"--batch\b", h.stdout) is not None

    def run(self, src_path, out_path, beam, alpha, threads, batch, max_len):
        cmd = [self.bin, "translate", "--model", self.ckpt, "--ids", "--input", src_path,
               "--output-ids", "--output", out_path, "--beam", str(beam), "--alpha", repr(alpha),
               "--threads", str(threads), "--max-len-a", "0", "--max-len-b", str(max_len),
               "--timing"]
        if self.max_pos:
            cmd += ["--max-len", str(self.max_pos)]
        if self.has_batch:  # always: translate's default is batched (64 / beam)
            cmd += ["--batch", str(batch)]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            fail("granattn translate failed (exit %d): %s\n  command: %s"
                 % (p.returncode, p.stderr.strip()[-600:], " ".join(cmd)))
        m = re.search(r"(\d+) sentences in [0-9.]+s: ([0-9.]+) sentences/s", p.stderr)
        if not m:
            fail("no timing line in granattn's output: %s" % p.stderr.strip()[-400:])
        n, sps = int(m.group(1)), float(m.group(2))
        return [l.split() for l in read_lines(out_path)], n / sps if sps > 0 else float("nan")


def agreement(a, b):
    same = sum(x == y for x, y in zip(a, b))
    return same, len(a)


# ---------------------------------------------------------------- main

def main():
    args = args_parser().parse_args()
    import ct2env
    ct2env.ensure()
    import ctranslate2
    import sacrebleu
    import gackpt
    import ct2run
    import eval_bleu

    os.chdir(ROOT)
    threads = parse_list(args.threads, "--threads")
    batches = parse_list(args.batch, "--batch")
    if args.beam < 1 or args.reps < 1:
        fail("--beam and --reps must be >= 1")
    if not os.access(args.granattn, os.X_OK):
        fail("%s not found (build first: ninja -C build)" % args.granattn)
    try:
        ck = gackpt.load(args.model)
    except gackpt.GackptError as e:
        fail(str(e))
    m = ck.model
    spm_model = os.path.join(ROOT, "data", "spm", "spm.model")
    if not os.path.exists(spm_model):
        fail("%s missing (run tools/prepare-data.sh)" % spm_model)
    tmp = tempfile.mkdtemp(prefix="granattn-ct2cmp.")
    try:
        return run(args, threads, batches, ck, m, spm_model, tmp, ctranslate2, sacrebleu,
                   ct2run, eval_bleu)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_set(args, spm_model, tmp):
    """(source id rows, reference lines, source text lines, description)"""
    import sentencepiece as spm
    if args.set == "windows":
        wdir = os.path.join(ROOT, "data", "windows")
        ids_path = os.path.join(wdir, "tok", "test.en.ids")
        ref_path = os.path.join(wdir, "test.es")
        for pth in (ids_path, ref_path):
            if not os.path.exists(pth):
                fail("%s missing (run tools/prepare-data.sh)" % pth)
        src = [l.split() for l in read_lines(ids_path)]
        refs = read_lines(ref_path)
        text = read_lines(os.path.join(wdir, "test.en"))
        desc = ("data/windows/tok/test.en.ids (tools/corpus/windows.py: passages of 2-16 "
                "consecutive test verses of one chapter, SentencePiece ids) -> data/windows/test.es")
    elif args.set in ("test", "dev"):
        ids_path = os.path.join(ROOT, "data", "tok", args.set + ".en.ids")
        ref_path = os.path.join(ROOT, "data", "corpus", args.set + ".es")
        src_txt = os.path.join(ROOT, "data", "corpus", args.set + ".en")
        for pth in (ids_path, ref_path):
            if not os.path.exists(pth):
                fail("%s missing (run tools/prepare-data.sh)" % pth)
        src = [l.split() for l in read_lines(ids_path)]
        refs = read_lines(ref_path)
        text = read_lines(src_txt) if os.path.exists(src_txt) else [""] * len(src)
        desc = "data/tok/%s.en.ids (SentencePiece ids of data/corpus/%s.en) -> data/corpus/%s.es" % (
            args.set, args.set, args.set)
    else:
        mm = re.fullmatch(r"passage-(\d+)", args.set)
        if not mm:
            fail("--set %s: expected test, dev or passage-LEN" % args.set)
        n = mm.group(1)
        pdir = os.path.join(ROOT, "data", "passages")
        if not os.path.exists(os.path.join(pdir, "test-%s.en" % n)):
            pdir = os.path.join(tmp, "passages")
            p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "corpus", "passages.py"),
                                "--out", pdir, "--lengths", n, "--count", "8"],
                               capture_output=True, text=True)
            if p.returncode != 0:
                fail("tools/corpus/passages.py failed: %s" % p.stderr.strip()[-400:])
        text = read_lines(os.path.join(pdir, "test-%s.en" % n))
        refs = read_lines(os.path.join(pdir, "test-%s.es" % n))
        sp = spm.SentencePieceProcessor(model_file=spm_model)
        src = [[str(i) for i in ids] for ids in sp.encode(text, out_type=int)]
        desc = ("passages of ~%s pieces (tools/corpus/passages.py, test split), encoded with "
                "data/spm/spm.model before timing" % n)
    if len(src) != len(refs):
        fail("%d sources but %d references" % (len(src), len(refs)))
    if args.limit:
        src, refs, text = src[:args.limit], refs[:args.limit], text[:args.limit]
    return src, refs, text, desc


def run(args, threads, batches, ck, m, spm_model, tmp, ctranslate2, sacrebleu, ct2run, eval_bleu):
    src, refs, src_text, set_desc = load_set(args, spm_model, tmp)
    n = len(src)
    if n == 0:
        fail("no sentences")
    longest = max(len(s) for s in src)
    passage = args.set.startswith("passage") or args.set == "windows"
    # output limit: the model's max_len; for passages granattn's default rule for the longest
    M = args.max_len or (int(1.5 * longest) + 10 if passage else m["max_len"])
    max_pos = 0  # granattn --max-len / export --max-len: only when the model's is too short
    need = max(longest + 1, M)
    if need > m["max_len"]:
        if passage:
            max_pos = need
        else:
            fail("the longest source has %d ids (+ eos) and the output limit is %d, but the model "
                 "has max_len %d (use --max-len <= %d)" % (longest, M, m["max_len"], m["max_len"]))
    model_name = args.name or os.path.basename(os.path.dirname(os.path.abspath(args.model))) or args.model
    engines = [e for e in args.engines.split(",") if e]
    if not engines or any(e not in ("granattn", "ctranslate2") for e in engines):
        fail("--engines %r: expected granattn and/or ctranslate2" % args.engines)
    use_ct2 = "ctranslate2" in engines
    sparse = not m["dense"]

    # export
    ct2_dir = os.path.join(tmp, "ct2-model")
    cmd = [sys.executable, os.path.join(HERE, "export.py"), args.model, ct2_dir]
    if max_pos:
        cmd += ["--max-len", str(max_pos)]
    if use_ct2:
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            fail("export.py failed: %s" % p.stderr.strip())
        print(p.stderr.strip(), file=sys.stderr)
    src_path = os.path.join(tmp, "src.ids")
    write_ids(src_path, src)
    g = Granattn(args.granattn, args.model, max_pos)
    if not g.has_batch and any(b > 1 for b in batches):
        print("compare: %s translate has no --batch option: granattn rows only for batch 1"
              % args.granattn, file=sys.stderr)

    def ct2_translate(T, B, beam, lp=None):
        tr = ct2run.make_translator(ct2_dir, T, args.ct2_thread_mode, args.compute_type)
        outs, sec = ct2run.translate(tr, src, beam=beam, alpha=args.alpha, length_penalty=lp,
                                     max_len=M, batch=B)
        del tr
        return outs, sec

    def g_translate(T, B, beam):
        return g.run(src_path, os.path.join(tmp, "g.out"), beam, args.alpha, T, B, M)

    load0 = os.getloadavg()
    t_start = time.time()
    # greedy agreement (untimed), threads 1, batch 1
    print("compare: greedy pass (%d sentences)" % n, file=sys.stderr)
    g_greedy, _ = g_translate(1, 1, 1)
    c_greedy = ct2_translate(1, 1, 1)[0] if use_ct2 else None

    # timed runs
    configs = [(T, B) for T in threads for B in batches]
    runs = []  # (engine, T, B, rep, seconds)
    outputs = {}  # (engine, T, B) -> outputs of the first rep
    nondet = set()
    for rep in range(args.reps):
        for ci, (T, B) in enumerate(configs):
            order = ["granattn", "ctranslate2"] if (rep + ci) % 2 == 0 else ["ctranslate2", "granattn"]
            for eng in order:
                if eng not in engines:
                    continue
                if eng == "granattn" and B > 1 and not g.has_batch:
                    continue
                if eng == "granattn":
                    outs, sec = g_translate(T, B, args.beam)
                else:
                    outs, sec = ct2_translate(T, B, args.beam)
                key = (eng, T, B)
                if key in outputs and outputs[key] != outs:
                    nondet.add(key)
                outputs.setdefault(key, outs)
                runs.append((eng, T, B, rep, sec))
                print("compare: rep %d %-11s threads %d batch %2d: %.3f s (%.1f sent/s)"
                      % (rep + 1, eng, T, B, sec, n / sec), file=sys.stderr)

    # length penalty: CTranslate2's native rule vs the GNMT re-ranking (threads 1, batch 1)
    key1 = ("ctranslate2", threads[0], batches[0])
    gkey1 = ("granattn", threads[0], batches[0])
    lens = sorted(len(o) for o in outputs[gkey1]) if gkey1 in outputs else sorted(len(o) for o in outputs[key1])
    L0 = statistics.median(lens) if lens else 20
    beta = args.ct2_lp if args.ct2_lp is not None else args.alpha * L0 / (6.0 + L0)
    if use_ct2:
        native, _ = ct2_translate(threads[0], batches[0], args.beam, lp=beta) if args.beam > 1 else (outputs[key1], 0)
    load1 = os.getloadavg()
    elapsed = time.time() - t_start

    # scores
    hyp_cache = {}

    def bleu(outs):
        k = tuple(tuple(o) for o in outs)
        if k not in hyp_cache:
            hyps = eval_bleu.decode_ids([" ".join(o) for o in outs], spm_model)
            hyp_cache[k] = (eval_bleu.score(hyps, refs), hyps)
        return hyp_cache[k]

    def ntok(outs):
        return sum(len(o) + 1 for o in outs)

    rows = []
    for (eng, T, B), outs in outputs.items():
        secs = [r[4] for r in runs if r[:3] == (eng, T, B)]
        med = statistics.median(secs)
        sc, _ = bleu(outs)
        rows.append((eng, model_name, args.set, T, B, args.beam, n / med, ntok(outs) / med,
                     sc["bleu"], sc["chrf"]))
    rows.sort(key=lambda r: (r[3], r[4], r[0] != "granattn"))

    # output
    slug = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "machine_info.py"), "--slug"],
                          capture_output=True, text=True).stdout.strip() or socket.gethostname()
    top = args.out or os.path.join(ROOT, "results", slug, "decode-vs-ct2")
    out = os.path.join(top, "%s-%s" % (model_name, args.set))
    os.makedirs(out, exist_ok=True)
    header = "engine\tmodel\tset\tthreads\tbatch\tbeam\tsent_per_s\ttok_per_s\tbleu\tchrf\n"
    lines = ["%s\t%s\t%s\t%d\t%d\t%d\t%.3f\t%.1f\t%.2f\t%.2f\n" % r for r in rows]
    with open(os.path.join(out, "results.tsv"), "w") as f:
        f.write(header + "".join(lines))
    # TOP/results.tsv: every run's rows; this run replaces the rows of the same model and set
    merged, path = [], os.path.join(top, "results.tsv")
    if os.path.exists(path):
        merged = [l if l.endswith("\n") else l + "\n" for l in read_lines(path)[1:]
                  if l.split("\t")[1:3] != [model_name, args.set]]
    with open(path, "w") as f:
        f.write(header + "".join(merged + lines))
    with open(os.path.join(out, "runs.tsv"), "w") as f:
        f.write("engine\tthreads\tbatch\trep\tseconds\n")
        for r in runs:
            f.write("%s\t%d\t%d\t%d\t%.4f\n" % r)

    info = machine_info(os.path.join(ROOT, "build"))
    cpu = info.get("cpu", {})
    gs, gn = agreement(g_greedy, c_greedy) if use_ct2 else (0, 0)
    readme = []
    w = readme.append
    w("# granattn vs CTranslate2: decoding speed and output, side by side%s\n"
      % (" — PRELIMINARY (busy machine)" if args.preliminary else ""))
    if args.preliminary:
        w("**Preliminary run**: the machine was shared with other work (load average %.2f at the "
          "start, %.2f at the end); the timings are indicative only.\n"
          % (load0[0], load1[0]))
    w("Command: `tools/ct2/compare.sh %s`  \n" % " ".join(show(a) for a in sys.argv[1:]))
    w("Date: %s, %.0f s in all; git %s\n" % (time.strftime("%Y-%m-%d %H:%M %Z"), elapsed, git_rev()))
    w("## Machine and versions\n")
    w("- CPU: %s, %s logical CPUs (%s cores x %s threads)%s%s" % (
        cpu.get("model", "?"), cpu.get("logical_cpus", "?"), cpu.get("physical_cores", "?"),
        cpu.get("threads_per_core", "?"),
        ", max %s MHz" % cpu["max_mhz"] if cpu.get("max_mhz") else "",
        ", hypervisor %s" % cpu["hypervisor"] if cpu.get("hypervisor") else ""))
    w("- memory %.1f GiB; load average %.2f / %.2f / %.2f at the start" % (
        info.get("memory_bytes", 0) / 2**30, *load0))
    isa = info.get("chosen_isa", "?")
    w("- granattn: %s (kernels %s), git %s; %s" % (
        args.granattn, isa.get("isa", "?") if isinstance(isa, dict) else isa, git_rev(),
        platform.platform()))
    w("- CTranslate2 %s (pip wheel, CPU, compute type %s; %s), sacreBLEU %s, Python %s\n" % (
        ctranslate2.__version__, args.compute_type,
        ", ".join("%s" % x for x in sorted(ctranslate2.get_supported_compute_types("cpu"))),
        sacrebleu.__version__, sys.version.split()[0]))
    w("## What was run\n")
    w("- checkpoint `%s` (step %d; d=%d, H=%d, ff=%d, %d+%d layers, vocab %d, %s)" % (
        show(args.model), ck.step, m["d"], m["H"], m["ff"], m["n_enc"], m["n_dec"], m["vocab"],
        "dense" if not sparse else "sparse, gpn = %s" % m.get("gpn", "learned")))
    if sparse:
        w("  - **sparse model**: granattn runs its sparse cross-attention; CTranslate2 runs the "
          "exported DENSE model (same weights, full softmax; CTranslate2 has no GPN), so the "
          "two engines do not compute the same function and differing outputs are expected")
    w("- set: %s, %d sentences%s (longest source %d ids); tokenisation is outside both "
      "engines' timings (both read ids)" % (set_desc, n, " (--limit)" if args.limit else "", longest))
    if max_pos:
        w("- positions raised to %d on both sides (granattn `--max-len %d`, export.py `--max-len "
          "%d`): the model was trained with max_len %d, so quality beyond that is not "
          "meaningful (BLEU), only the timings are" % (max_pos, max_pos, max_pos, m["max_len"]))
    w("- beam %d, GNMT length penalty alpha %.2f on both sides (CTranslate2: re-ranking of its %d "
      "finished hypotheses, tools/ct2/ct2run.py), output limit %d tokens incl. eos for both "
      "(granattn `--max-len-a 0 --max-len-b %d`; CTranslate2 `max_decoding_length`)" % (
          args.beam, args.alpha, args.beam, M, M))
    w("- threads T: granattn `--threads T` (T sentences in parallel, one per thread); "
      "CTranslate2 %s" % ("`inter_threads=T, intra_threads=1` (T batches in parallel, one core "
                          "each)" if args.ct2_thread_mode == "inter" else
                          "`inter_threads=1, intra_threads=T` (one batch on T cores)"))
    w("- batch B: granattn `--batch B`%s; CTranslate2 `max_batch_size=B` (examples; it sorts "
      "the inputs by length and cuts batches of B)" % (
          "" if g.has_batch else " — **not available in this granattn build** (no `--batch` in "
          "`granattn translate --help`): granattn rows only for batch 1"))
    w("- %d repetition(s), engines alternating (the first engine flips every run); medians. "
      "Timed: granattn's own `--timing` (decoding only), CTranslate2's `translate_batch` call "
      "(+ the re-ranking); model loading is outside both.  tok/s counts generated tokens incl. "
      "eos.\n" % args.reps)
    w("## Results\n")
    w("| engine | threads | batch | beam | sent/s | tok/s | BLEU | chrF |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        w("| %s | %d | %d | %d | %.2f | %.0f | %.2f | %.2f |" % (r[0], r[3], r[4], r[5], r[6], r[7],
                                                               r[8], r[9]))
    w("")
    if nondet:
        w("Outputs differed between repetitions for: %s (BLEU from the first).\n"
          % ", ".join("%s T%d B%d" % k for k in sorted(nondet)))
    w("## Agreement\n")
    if use_ct2:
        w("- greedy (beam 1, 1 thread, batch 1): **%d / %d sentences identical (%.1f %%)**" % (
            gs, gn, 100.0 * gs / gn))
    else:
        w("- CTranslate2 not run (--engines %s)" % args.engines)
    if gkey1 in outputs and key1 in outputs:
        bs, bn = agreement(outputs[gkey1], outputs[key1])
        w("- beam %d, GNMT alpha %.2f (T%d B%d): %d / %d identical (%.1f %%)" % (
            args.beam, args.alpha, threads[0], batches[0], bs, bn, 100.0 * bs / bn))
    for T, B in configs:
        k = ("ctranslate2", T, B)
        if k != key1 and k in outputs:
            s_, n_ = agreement(outputs[key1], outputs[k])
            w("- CTranslate2 T%d B%d vs T%d B%d: %d / %d identical" % (T, B, key1[1], key1[2], s_, n_))
        k = ("granattn", T, B)
        if k != gkey1 and k in outputs and gkey1 in outputs:
            s_, n_ = agreement(outputs[gkey1], outputs[k])
            w("- granattn T%d B%d vs T%d B%d: %d / %d identical" % (T, B, gkey1[1], gkey1[2], s_, n_))
    hit_g = sum(len(o) >= M for o in g_greedy)
    hit_c = sum(len(o) >= M for o in c_greedy) if use_ct2 else 0
    w("- greedy outputs stopped by the %d-token limit: granattn %d, CTranslate2 %d" % (M, hit_g, hit_c))
    w("")
    diff = [i for i in range(n) if g_greedy[i] != c_greedy[i]] if use_ct2 else []
    if diff:
        w("Greedy outputs that differ (first %d of %d; text decoded with data/spm/spm.model):\n"
          % (min(args.examples, len(diff)), len(diff)))
        gt = eval_bleu.decode_ids([" ".join(g_greedy[i]) for i in diff[:args.examples]], spm_model)
        ct = eval_bleu.decode_ids([" ".join(c_greedy[i]) for i in diff[:args.examples]], spm_model)
        for j, i in enumerate(diff[:args.examples]):
            first = next((k for k in range(min(len(g_greedy[i]), len(c_greedy[i])))
                          if g_greedy[i][k] != c_greedy[i][k]), min(len(g_greedy[i]), len(c_greedy[i])))
            w("- sentence %d (first difference at output token %d): %s" % (i + 1, first + 1, src_text[i]))
            w("  - granattn:    %s" % gt[j])
            w("  - CTranslate2: %s" % ct[j])
        w("")
    if args.beam > 1 and use_ct2:
        ns, nn = agreement(native, outputs[key1])
        sc_n, _ = bleu(native)
        sc_r, _ = bleu(outputs[key1])
        w("## Length penalty\n")
        w("granattn ranks finished hypotheses by sum log p / ((5 + len) / 6)^alpha, len counting "
          "the eos; CTranslate2's own rule is sum log p / len^B, len without the eos.  No B "
          "reproduces GNMT at every length: B = alpha * L0 / (6 + L0) = %.3f matches the slope "
          "of the log-penalty in log(len) at the median output length L0 = %s.  The results "
          "above re-rank CTranslate2's beam with GNMT exactly; with its native length_penalty "
          "= %.3f instead (T%d B%d):\n" % (beta, L0, beta, key1[1], key1[2]))
        w("- the output changes for %d / %d sentences (%.1f %%)" % (nn - ns, nn, 100.0 * (nn - ns) / nn))
        w("- BLEU %.2f / chrF %.2f (native) vs %.2f / %.2f (GNMT re-ranked)\n" % (
            sc_n["bleu"], sc_n["chrf"], sc_r["bleu"], sc_r["chrf"]))
    w("## Caveats\n")
    w("- Both engines decode the same float32 weights; CTranslate2 runs the exported dense "
      "Transformer (tools/ct2/export.py: token ids as vocabulary, our sinusoidal table stored "
      "as its position table, eps 1e-5, tied embeddings).  tests/test_ct2.sh checks the "
      "export: identical greedy output on a toy model and log-probabilities within 1e-5 * max|lp|.")
    w("- The fixed output limit replaces granattn's default 1.5 * source + 10 (CTranslate2 has "
      "no per-sentence limit); it only matters for hypotheses that do not stop.")
    w("- CTranslate2's batching sorts by source length (less padding); at batch 1 both engines "
      "see the same single sentences.")
    w("- pad and bos are never generated on either side (CTranslate2: suppress_sequences, which "
      "renormalises over the remaining tokens; their probabilities are ~0 in a trained model).")
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(readme) + "\n")
    print(open(os.path.join(out, "results.tsv")).read(), end="")
    print("compare: greedy agreement %d/%d; wrote %s/{results.tsv,runs.tsv,README.md}, rows "
          "merged into %s/results.tsv" % (gs, gn, out, top), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
