#!/usr/bin/python3
"""eval_bleu.py — sacreBLEU BLEU and chrF of a translation against a reference.

sacrebleu is not packaged by Debian 12; on first use this script creates a
project-local virtual environment .venv-eval (Debian's /usr/bin/python3 with
--system-site-packages, so it also sees Debian's sentencepiece), installs
sacrebleu into it with pip, and re-runs itself with that interpreter.  Later
runs find it there.  Scores use sacreBLEU's defaults (13a tokenisation, exp
smoothing; chrF with char order 6, beta 2), the settings of the reference
point in docs/NOTES.md (Apertium: BLEU 13.1, chrF 39.4 on the test split).

Usage:
  tools/eval_bleu.py --hyp hyp.txt --ref data/corpus/test.es
  tools/eval_bleu.py --hyp-ids hyp.ids --ref data/corpus/test.es \\
        --extra decode.json --json result.json --hyp-out hyp.txt

--hyp-ids decodes lines of SentencePiece ids (data/spm/spm.model) first; it is
what `granattn eval` calls.  With --spm none the ids are not decoded: each
hypothesis is its id sequence as text ("110 121 3" -> "110 121", eos ends it,
pad/bos dropped) and the reference file holds id lines too (the toy task of
the shell tests, which have no SentencePiece model).  --extra merges a JSON object (decode statistics)
into the result.  Exit status: 0 on success, 1 on any error (message on
stderr), 2 on bad usage.
"""

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, ".venv-eval")
VENV_PY = os.path.join(VENV, "bin", "python3")
SYSTEM_PY = "/usr/bin/python3"
PAD, BOS, EOS = 0, 2, 3
# docs/NOTES.md: `apertium -u eng-spa` on the 1 384-sentence test split.
APERTIUM_TEST = (13.1, 39.4)
APERTIUM_TEST_SENTENCES = 1384


def fail(msg):
    """Print an error and exit with status 1."""
    print("eval_bleu.py: error: %s" % msg, file=sys.stderr)
    sys.exit(1)


def in_venv():
    """True when running on the .venv-eval interpreter."""
    return os.path.realpath(sys.prefix) == os.path.realpath(VENV)


def ensure_sacrebleu():
    """Import sacrebleu, installing it into .venv-eval (and re-executing
    this script there) when it is missing."""
    try:
        import sacrebleu  # noqa: F401
        return
    except ImportError:
        pass
    if in_venv():
        fail("sacrebleu is missing from %s; remove that directory and rerun "
             "(it is recreated), or run: %s -m pip install sacrebleu"
             % (VENV, VENV_PY))
    if not os.path.exists(VENV_PY):
        print("eval_bleu.py: creating %s (sacrebleu is not in Debian 12)"
              % VENV, file=sys.stderr)
        rc = subprocess.call([SYSTEM_PY, "-m", "venv", "--system-site-packages",
                              VENV])
        if rc != 0:
            fail("python3 -m venv failed (exit %d); on Debian: apt-get install "
                 "python3-venv" % rc)
    rc = subprocess.call([VENV_PY, "-c", "import sacrebleu"],
                         stderr=subprocess.DEVNULL)
    if rc != 0:
        print("eval_bleu.py: installing sacrebleu into %s" % VENV,
              file=sys.stderr)
        rc = subprocess.call([VENV_PY, "-m", "pip", "install", "--quiet",
                              "--disable-pip-version-check", "sacrebleu"])
        if rc != 0:
            fail("pip install sacrebleu failed (exit %d)" % rc)
    os.execv(VENV_PY, [VENV_PY, os.path.abspath(__file__)] + sys.argv[1:])


def read_lines(path, limit=None):
    """Lines of a UTF-8 file without their newlines."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except OSError as e:
        fail("cannot read %s: %s" % (path, e.strerror))
    except UnicodeDecodeError:
        fail("%s is not UTF-8 text" % path)
    if lines and lines[-1] == "":
        lines.pop()
    if limit is not None:
        lines = lines[:limit]
    return lines


def hyp_ids(lines):
    """Each line's ids up to eos, without pad/bos, with its 1-based line number."""
    for n, line in enumerate(lines, 1):
        try:
            ids = [int(t) for t in line.split()]
        except ValueError:
            fail("hypothesis line %d is not a list of ids: %r" % (n, line[:60]))
        if EOS in ids:
            ids = ids[:ids.index(EOS)]
        yield n, [i for i in ids if i not in (PAD, BOS)]


def ids_as_text(lines):
    """Lines of ids as space-separated id text (stops at eos, drops pad/bos)."""
    return [" ".join(str(i) for i in ids) for _, ids in hyp_ids(lines)]


def decode_ids(lines, spm_model):
    """SentencePiece-decode lines of ids (stops at eos, drops pad/bos)."""
    if spm_model == "none":
        return ids_as_text(lines)
    try:
        import sentencepiece as spm
    except ImportError:
        fail("sentencepiece is not importable (Debian: apt-get install "
             "python3-sentencepiece)")
    if not os.path.exists(spm_model):
        fail("%s: no such file (run tools/prepare-data.sh)" % spm_model)
    sp = spm.SentencePieceProcessor(model_file=spm_model)
    out = []
    for n, ids in hyp_ids(lines):
        bad = [i for i in ids if i < 0 or i >= sp.get_piece_size()]
        if bad:
            fail("hypothesis line %d: id %d outside the vocabulary" % (n, bad[0]))
        out.append(sp.decode(ids))
    return out


def score(hyps, refs):
    """BLEU and chrF (sacreBLEU defaults) as a dict."""
    from sacrebleu.metrics import BLEU, CHRF
    bleu, chrf = BLEU(), CHRF()
    b = bleu.corpus_score(hyps, [refs])
    c = chrf.corpus_score(hyps, [refs])
    import sacrebleu
    return {
        "bleu": round(b.score, 4),
        "chrf": round(c.score, 4),
        "bleu_precisions": [round(p, 4) for p in b.precisions],
        "bleu_bp": round(b.bp, 6),
        "hyp_len": b.sys_len,
        "ref_len": b.ref_len,
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
        "sacrebleu_version": sacrebleu.__version__,
    }


def main():
    """Command-line entry point."""
    p = argparse.ArgumentParser(
        description="sacreBLEU BLEU + chrF of a translation (installs "
                    "sacrebleu into .venv-eval on first use).")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--hyp", help="hypothesis text, one sentence per line")
    src.add_argument("--hyp-ids", help="hypothesis as SentencePiece id lines")
    p.add_argument("--ref", required=True, help="reference text (e.g. "
                   "data/corpus/test.es)")
    p.add_argument("--limit", type=int, help="score only the first N lines")
    p.add_argument("--spm", default=os.path.join(ROOT, "data", "spm",
                                                 "spm.model"),
                   help="SentencePiece model for --hyp-ids "
                        "(default: data/spm/spm.model; none: score the ids "
                        "as tokens against id-line references)")
    p.add_argument("--extra", help="JSON object merged into the result")
    p.add_argument("--json", help="write the result here")
    p.add_argument("--hyp-out", help="write the (decoded) hypothesis text here")
    p.add_argument("--quiet", action="store_true", help="no summary line")
    args = p.parse_args()
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be >= 1")

    ensure_sacrebleu()

    refs = read_lines(args.ref, args.limit)
    if args.hyp is not None:
        hyps = read_lines(args.hyp, args.limit)
    else:
        hyps = decode_ids(read_lines(args.hyp_ids, args.limit), args.spm)
    if len(hyps) != len(refs):
        fail("%d hypothesis lines but %d reference lines" % (len(hyps),
                                                             len(refs)))
    if not refs:
        fail("nothing to score (empty files)")
    result = {}
    if args.extra:
        try:
            with open(args.extra, encoding="utf-8") as f:
                result.update(json.load(f))
        except (OSError, ValueError) as e:
            fail("cannot read --extra %s: %s" % (args.extra, e))
    result["reference"] = args.ref
    result["scored_sentences"] = len(refs)
    result.update(score(hyps, refs))
    if args.hyp_out:
        with open(args.hyp_out, "w", encoding="utf-8") as f:
            f.write("".join(h + "\n" for h in hyps))
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2, ensure_ascii=False)
            f.write("\n")
        os.replace(tmp, args.json)
    if not args.quiet:
        line = "BLEU %.2f  chrF %.2f  (%d sentences" % (
            result["bleu"], result["chrf"], len(refs))
        if "density" in result:
            line += ", density %.3f" % result["density"]
        if result.get("levels"):
            line += ", levels " + "/".join(
                "%.0f" % (100 * lv["fraction"]) for lv in result["levels"])
        if "sentences_per_second" in result:
            line += ", %.1f sent/s, %.0f tok/s" % (
                result["sentences_per_second"], result["tokens_per_second"])
        line += ")"
        print(line)
        if (os.path.basename(args.ref) == "test.es"
                and len(refs) == APERTIUM_TEST_SENTENCES):
            print("reference point on this split: Apertium (rule-based) BLEU "
                  "%.1f, chrF %.1f" % APERTIUM_TEST)
        if args.json:
            print("wrote %s" % args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
