#!/usr/bin/python3
"""passages.py — long inputs for the kernels and the model: passages of
consecutive verses from the TEST split only.

For each target source length (in SentencePiece pieces of data/spm/spm.model,
as tools/corpus/spm.py encodes; default 128 256 512 1024 2048 4096) it picks
up to --count non-overlapping windows of consecutive test verses whose
English side (the verses joined by single spaces) is as close as possible to
that length, and writes

  OUT/test-<len>.en, OUT/test-<len>.es   one passage per line (the verses of
                                         the window joined by one space)
  OUT/test-<len>.ref                     "first-ref - last-ref  pieces N/M"
  OUT/stats.tsv                          one line per passage set

Windows stay inside one chapter (test lines of the same "Book C") whenever
at least one window of that length fits in a chapter; the longest ones do
not (the longest test chapter, I Chronicles 6, has ~80 verses, ~2.5 k
pieces): for those the window runs over consecutive TEST lines across
chapter (and book) boundaries — in canonical order, but with the verses of
the train/dev chapters in between missing.  Their rows say "cross-chapter"
in stats.tsv and .ref.  Piece counts in the files are those of the joined
text (encoded once more, not the sum of the verses).

Usage:
  tools/corpus/passages.py                       # data/corpus -> data/passages
  tools/corpus/passages.py --lengths 256,1024 --count 2
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n")[:-1]


def chapter_of(ref):
    """'Genesis 1:3' -> 'Genesis 1'."""
    return ref.rsplit(":", 1)[0]


def windows(lens, chap, target, cross):
    """Non-overlapping windows [i, j) of consecutive lines, greedy from the
    start, each the prefix whose summed length is closest to target (ties to
    the shorter); inside one chapter unless cross.  -> [(i, j, est)]"""
    out = []
    n = len(lens)
    i = 0
    while i < n:
        j, tot = i, 0
        while j < n and tot < target and (cross or chap[j] == chap[i]):
            tot += lens[j]
            j += 1
        if tot < target:  # the chapter (or the split) ran out
            if cross:
                break
            i = j
            continue
        # j is the first end with tot >= target; one fewer line may be closer
        if j - 1 > i and target - (tot - lens[j - 1]) <= tot - target:
            j -= 1
            tot -= lens[j]
        out.append((i, j, tot))
        i = j
    return out


def spread(items, k):
    """k items evenly spread over the list (all when there are <= k)."""
    if len(items) <= k:
        return items
    return [items[round(q * (len(items) - 1) / (k - 1))] for q in range(k)] if k > 1 \
        else [items[len(items) // 2]]


def main():
    ap = argparse.ArgumentParser(
        description="Passages of consecutive TEST verses with English source lengths "
                    "(SentencePiece pieces) near given targets.",
        epilog="Outputs OUT/test-<len>.{en,es,ref} and OUT/stats.tsv; see the header "
               "of this script for the window rules.")
    ap.add_argument("--corpus", default=os.path.join(ROOT, "data", "corpus"),
                    help="directory with test.en, test.es, test.ref (default: data/corpus)")
    ap.add_argument("--spm", default=os.path.join(ROOT, "data", "spm", "spm.model"),
                    help="SentencePiece model (default: data/spm/spm.model)")
    ap.add_argument("--out", default=os.path.join(ROOT, "data", "passages"),
                    help="output directory (default: data/passages)")
    ap.add_argument("--lengths", default="128,256,512,1024,2048,4096",
                    help="target source lengths in pieces, comma-separated")
    ap.add_argument("--count", type=int, default=4,
                    help="passages per length (fewer when the split has fewer windows)")
    a = ap.parse_args()
    try:
        targets = [int(x) for x in a.lengths.split(",")]
    except ValueError:
        ap.error("--lengths: comma-separated integers expected")
    if not targets or min(targets) < 1 or a.count < 1:
        ap.error("--lengths must be >= 1 and --count >= 1")
    try:
        import sentencepiece as spm
    except ImportError:
        sys.exit("passages.py: needs the sentencepiece module (use /usr/bin/python3)")
    for p in ("test.en", "test.es", "test.ref"):
        if not os.path.exists(os.path.join(a.corpus, p)):
            sys.exit("passages.py: %s: no such file (run tools/prepare-data.sh)"
                     % os.path.join(a.corpus, p))
    if not os.path.exists(a.spm):
        sys.exit("passages.py: %s: no such file (run tools/prepare-data.sh)" % a.spm)
    sp = spm.SentencePieceProcessor(model_file=a.spm)
    en = read_lines(os.path.join(a.corpus, "test.en"))
    es = read_lines(os.path.join(a.corpus, "test.es"))
    ref = read_lines(os.path.join(a.corpus, "test.ref"))
    if not (len(en) == len(es) == len(ref)) or not en:
        sys.exit("passages.py: test.en/.es/.ref have %d/%d/%d lines" % (len(en), len(es), len(ref)))
    lens = [len(x) for x in sp.encode(en)]
    chap = [chapter_of(r) for r in ref]
    os.makedirs(a.out, exist_ok=True)
    rows = []
    for target in targets:
        ws = windows(lens, chap, target, cross=False)
        kind = "chapter"
        if not ws:
            ws = windows(lens, chap, target, cross=True)
            kind = "cross-chapter"
        if not ws:
            print("passages.py: test split too short for %d pieces; skipped" % target,
                  file=sys.stderr)
            continue
        ws = spread(ws, a.count)
        src = [" ".join(en[i:j]) for i, j, _ in ws]
        tgt = [" ".join(es[i:j]) for i, j, _ in ws]
        ns = [len(x) for x in sp.encode(src)]
        nt = [len(x) for x in sp.encode(tgt)]
        base = os.path.join(a.out, "test-%d" % target)
        for ext, lines in (("en", src), ("es", tgt)):
            with open(base + "." + ext, "w", encoding="utf-8") as f:
                f.write("".join(s + "\n" for s in lines))
        with open(base + ".ref", "w", encoding="utf-8") as f:
            for (i, j, _), s, t in zip(ws, ns, nt):
                f.write("%s - %s\t%d verses\tpieces en %d es %d\t%s\n"
                        % (ref[i], ref[j - 1], j - i, s, t, kind))
        row = (target, len(ws), kind, min(ns), max(ns), min(nt), max(nt),
               sum(j - i for i, j, _ in ws) / len(ws))
        rows.append(row)
        print("test-%d: %d passages (%s), source %d..%d pieces, target %d..%d pieces, "
              "%.1f verses each" % row)
    with open(os.path.join(a.out, "stats.tsv"), "w", encoding="utf-8") as f:
        f.write("target\tpassages\twindows\tsrc_min\tsrc_max\ttgt_min\ttgt_max\tverses_mean\n")
        for r in rows:
            f.write("%d\t%d\t%s\t%d\t%d\t%d\t%d\t%.1f\n" % r)
    print("wrote %s/test-*.{en,es,ref} and stats.tsv" % a.out)


if __name__ == "__main__":
    main()
