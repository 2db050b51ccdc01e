#!/usr/bin/python3
"""ct2run.py — translate lines of token ids with an exported CTranslate2 model,
the way `granattn translate --ids --output-ids` does.

    tools/ct2/ct2run.py --model CT2DIR --input IDS [--output OUT] [--beam K]
        [--alpha A | --length-penalty B] [--max-len M] [--threads T]
        [--batch N] [--thread-mode inter|intra] [--compute-type T] [--timing]

Same conventions as granattn (model/decode.c): eos ("3") is appended to
every source; output lines are the ids without bos / eos; pad (0) and bos
(2) are never generated (suppress_sequences); no minimum length
(min_decoding_length = 0; CTranslate2's default is 1); the output limit is
a fixed M generated tokens, eos included (max_decoding_length = M; give
granattn --max-len-a 0 --max-len-b M for the same limit: CTranslate2 has
no per-sentence limit like granattn's default 1.5 * source + 10).

Length penalty (beam > 1):
  --alpha A (default 0.6): granattn's GNMT penalty, exactly: CTranslate2
      searches with length_penalty = 1e-6 (any non-zero value gives the
      same stopping rule as granattn: stop when K hypotheses have finished;
      0 would enable CTranslate2's early exit instead), returns its K
      finished hypotheses with scores, and they are re-ranked here by
      sum log p / ((5 + len) / 6)^A, len counting the eos (granattn's
      rule), after undoing the 1e-6 penalty.
  --length-penalty B: CTranslate2's own rule, sum log p / len^B, len
      without the eos (no re-ranking).
Remaining differences from granattn's beam search (model/decode.c): at the
length limit granattn finishes all 2K candidates of the last step,
CTranslate2 only the top K; when more than K hypotheses finish at the final
step, CTranslate2 keeps the K best by raw score, granattn by penalised score;
an empty hypothesis (eos first) gets score -inf under any CTranslate2 length
penalty.  All three only matter in rare corner cases.

Threads (granattn --threads T decodes T sentences in parallel, one per
thread): --thread-mode inter (default) = inter_threads T, intra_threads 1
(T batches in parallel, each on one core); intra = inter_threads 1,
intra_threads T (one batch at a time on T cores).  --batch N =
max_batch_size N (examples): CTranslate2 sorts the inputs by length and
cuts them into batches of N.

--timing prints on stderr the seconds spent in translate_batch (the model
load and file I/O excluded, like granattn's --timing).
"""

import argparse
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

EOS = "3"
LP_EPS = 1e-6  # search-time length penalty of the GNMT mode (see the top comment)


def read_ids(path, vocab=None):
    """Lines of space-separated ids -> lists of id strings (validated)."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out = []
    for n, line in enumerate(lines, 1):
        toks = line.split()
        for t in toks:
            if not t.isdigit() or (vocab is not None and int(t) >= vocab):
                raise ValueError("%s:%d: %r is not a token id%s"
                                 % (path, n, t, "" if vocab is None else " < %d" % vocab))
        out.append(toks)
    return out


def make_translator(model, threads=1, mode="inter", compute_type="float32"):
    import ctranslate2
    if mode == "inter":
        inter, intra = threads, 1
    elif mode == "intra":
        inter, intra = 1, threads
    else:
        raise ValueError("thread mode %r: expected inter or intra" % mode)
    return ctranslate2.Translator(model, device="cpu", compute_type=compute_type,
                                  inter_threads=inter, intra_threads=intra)


def gnmt(score_sum, length, alpha):
    return score_sum / math.pow((5.0 + length) / 6.0, alpha) if alpha else score_sum


def translate(tr, sources, beam=1, alpha=0.6, length_penalty=None, max_len=128, batch=1):
    """sources: lists of id strings (no eos).  Returns (outputs, seconds):
    outputs are lists of id strings (no eos), seconds the time in
    translate_batch plus the re-ranking."""
    src = [s + [EOS] for s in sources]
    opts = dict(beam_size=beam, max_decoding_length=max_len, min_decoding_length=0,
                max_batch_size=batch, batch_type="examples", suppress_sequences=[["0"], ["2"]],
                max_input_length=0)
    rerank = beam > 1 and length_penalty is None
    if beam == 1:
        opts["length_penalty"] = 0.0
    elif rerank:
        opts.update(length_penalty=LP_EPS, num_hypotheses=beam, return_scores=True)
    else:
        opts["length_penalty"] = float(length_penalty)
    t0 = time.perf_counter()
    res = tr.translate_batch(src, **opts)
    if rerank:
        outs = []
        for r in res:
            best, best_norm = None, -math.inf
            for hyp, sc in zip(r.hypotheses, r.scores):
                L = len(hyp)
                raw = sc * math.pow(L, LP_EPS) if L > 0 else -math.inf
                # a hypothesis of max_len tokens stopped at the limit (no eos)
                n = gnmt(raw, L if L >= max_len else L + 1, alpha)
                if n > best_norm:
                    best, best_norm = hyp, n
            outs.append(best if best is not None else r.hypotheses[0])
    else:
        outs = [r.hypotheses[0] for r in res]
    return outs, time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(
        prog="tools/ct2/ct2run.py",
        description="Translate token-id lines with an exported CTranslate2 model, with "
                    "granattn's conventions (see the top of this file).")
    p.add_argument("--model", required=True, help="CTranslate2 model directory (export.py)")
    p.add_argument("--input", required=True, help="source id lines (no eos)")
    p.add_argument("--output", help="output id lines (default: stdout)")
    p.add_argument("--beam", type=int, default=1)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--alpha", type=float, default=0.6,
                   help="granattn's GNMT length penalty, by re-ranking (default 0.6)")
    g.add_argument("--length-penalty", type=float,
                   help="CTranslate2's own length penalty score / len^B instead")
    p.add_argument("--max-len", type=int, default=128,
                   help="output limit in generated tokens, eos included (default 128)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--thread-mode", choices=("inter", "intra"), default="inter")
    p.add_argument("--batch", type=int, default=1, help="max_batch_size (examples)")
    p.add_argument("--compute-type", default="float32")
    p.add_argument("--timing", action="store_true")
    args = p.parse_args()
    for name in ("beam", "max_len", "threads", "batch"):
        if getattr(args, name) < 1:
            p.error("--%s must be >= 1" % name.replace("_", "-"))

    import ct2env
    ct2env.ensure()
    try:
        srcs = read_ids(args.input)
    except (OSError, ValueError) as e:
        print("ct2run.py: error: %s" % e, file=sys.stderr)
        return 1
    try:
        tr = make_translator(args.model, args.threads, args.thread_mode, args.compute_type)
    except (RuntimeError, ValueError) as e:
        print("ct2run.py: error: cannot load %s: %s" % (args.model, e), file=sys.stderr)
        return 1
    outs, sec = translate(tr, srcs, beam=args.beam, alpha=args.alpha,
                          length_penalty=args.length_penalty, max_len=args.max_len,
                          batch=args.batch)
    text = "".join(" ".join(o) + "\n" for o in outs)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    if args.timing:
        ntok = sum(len(o) + 1 for o in outs)
        print("ct2run.py: %d sentences in %.3fs: %.2f sentences/s, %.1f tokens/s (beam %d, "
              "%d thread(s) %s, batch %d)" % (len(outs), sec, len(outs) / max(sec, 1e-9),
                                               ntok / max(sec, 1e-9), args.beam, args.threads,
                                               args.thread_mode, args.batch), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
