#!/usr/bin/python3
"""check_logits.py — the exported CTranslate2 model against the C model's own
inference log-probabilities, teacher forced.

    tools/ct2/check_logits.py DUMP CT2DIR [--rtol 1e-5]

DUMP is written by tools/torch_check/dump.c (--ckpt CKPT; tests/test_ct2.sh
builds it): the C model's tensor table (gm_tensor), a fixed batch of 4
sentences (random source ids without eos, random targets ending in eos) and
gm_decode_step's log-probabilities over the whole vocabulary at every target
position (teacher forced).  It is read with tools/torch_check/check.py's
load_dump (imported: check.py needs PyTorch, which tools/deps.sh installs).

Checks (one line each, exit 1 on any failure):
  layout     tools/ct2/gackpt.py's parameter layout = the C tensor table
             (names, offsets, shapes), so the exporter reads the right floats
  logits     CTranslate2 translate_batch with the target as a forced prefix
             and return_logits_vocab (raw logits at every step, log-softmaxed
             here in float64): max |lp_ct2 - lp_c| over every position and
             every vocabulary entry <= rtol * max |lp_c|
  scores     CTranslate2 score_batch (its own log-probabilities of the target
             tokens, eos included) against lp_c at the targets, same bound

Tolerance: both engines compute in float32 from the same float32 weights;
they differ only in summation order (GEMM blocking, MKL / oneDNN vs the C
kernels) and in float vs double accumulations, so the log-probabilities
agree to a few float32 roundoffs of the largest values (measured: ~1e-7 to
3e-7 * max|lp| on the tiny and default configs).  rtol 1e-5 leaves a 30x
margin, yet catches mapping errors that change the outputs only slightly:
layer-norm eps 1e-6 instead of 1e-5 gives ~2e-5 on the tiny config and a
wrong position table, a missing sqrt(d) or a transposed weight give errors
of order 1e-2 .. 1.
"""

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import gackpt  # noqa: E402


def load_dump(path):
    sys.path.insert(0, os.path.join(ROOT, "tools", "torch_check"))
    try:
        from check import load_dump as ld  # noqa: E402  (imports torch)
    except SystemExit:
        print("check_logits.py: tools/torch_check/check.py cannot import torch "
              "(Debian: apt-get install python3-torch)", file=sys.stderr)
        sys.exit(3)
    return ld(path)


def log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("dump")
    p.add_argument("model", help="CTranslate2 model directory (export.py)")
    p.add_argument("--rtol", type=float, default=1e-5)
    args = p.parse_args()

    import ct2env
    ct2env.ensure()
    import ctranslate2

    meta, arr = load_dump(args.dump)
    c = meta["config"]
    fails = 0

    def report(ok, what):
        nonlocal fails
        fails += 0 if ok else 1
        print("%s %s" % ("ok  " if ok else "FAIL", what))

    # layout
    mine = []
    off = 0
    for name, shape in gackpt.layout(c):
        rows, cols = (shape[0], shape[1]) if len(shape) == 2 else (1, shape[0])
        mine.append((name, off, rows, cols))
        off += rows * cols
    theirs = [(t["name"], t["offset"], t["rows"], t["cols"]) for t in meta["tensors"]]
    bad = [(a, b) for a, b in zip(mine, theirs) if a != b]
    report(not bad and len(mine) == len(theirs),
           "layout: %d tensors, %d floats, same names/offsets/shapes as gm_tensor%s"
           % (len(theirs), off, "" if not bad else " (first difference: %s vs %s)" % bad[0]))

    B, S, T, V = meta["batch"]["B"], meta["batch"]["S"], meta["batch"]["T"], c["vocab"]
    src = arr["src"].reshape(B, S)
    tout = arr["tgt_out"].reshape(B, T)
    lp_c = arr["logp"].astype(np.float64).reshape(-1, V)
    tr = ctranslate2.Translator(args.model, device="cpu", compute_type="float32",
                                inter_threads=1, intra_threads=1)
    row = 0
    err_full = err_tok = 0.0
    scale = float(np.abs(lp_c).max())
    rows = 0
    for b in range(B):
        Tb = int((tout[b] != 0).sum())
        if Tb == 0:
            continue
        Sb = int((src[b] != 0).sum())
        s = [str(int(x)) for x in src[b, :Sb]]
        y = [str(int(x)) for x in tout[b, :Tb]]  # ends with eos
        ref = lp_c[row:row + Tb]
        # full distributions, target forced as a prefix
        r = tr.translate_batch([s], target_prefix=[y[:-1]], beam_size=1, min_decoding_length=0,
                               max_decoding_length=Tb, return_logits_vocab=True,
                               max_input_length=0)[0]
        got = log_softmax(np.stack([np.asarray(r.logits[0][t]) for t in range(Tb)]))
        err_full = max(err_full, float(np.abs(got - ref).max()))
        # score_batch: log p of each target token (eos included)
        sc = tr.score_batch([s], [y[:-1]], max_input_length=0)[0]
        yt = np.array([int(x) for x in y])
        err_tok = max(err_tok, float(np.abs(np.array(sc.log_probs) - ref[np.arange(Tb), yt]).max()))
        row += Tb
        rows += Tb
    tol = args.rtol * scale
    report(err_full <= tol, "logits: %d positions x %d: max|lp_ct2 - lp_c| %.3g (%.2g * max|lp| %.3g; "
           "tol %g * max|lp|)" % (rows, V, err_full, err_full / scale, scale, args.rtol))
    report(err_tok <= tol, "scores: score_batch on %d target tokens: max|diff| %.3g (%.2g * max|lp|)"
           % (rows, err_tok, err_tok / scale))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
