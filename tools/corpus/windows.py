#!/usr/bin/python3
"""windows.py — passage-level training and test data: windows of consecutive
verses, each window inside one chapter of one split.

For every split (train, dev, test) the chapters keep the split they have
(data/corpus/{split}.ref: the chapter split of docs/NOTES.md), so no train
window contains a test verse.  Each chapter (the split's consecutive lines of
one "Book C", in corpus order) is cut, from its start, into windows of
2..--max-verses verses (lengths drawn uniformly with a fixed seed), a window
joining its verses with one space on each side (English and Spanish alike:
verse i of the window in English is verse i in Spanish).  A window whose
source (English, SentencePiece pieces, encoded once more as a whole) is over
--max-src pieces is split in two halves until it fits; one left with a single
verse is kept (a chapter of one verse gives one such window).

Writes OUT/{split}.en, OUT/{split}.es, OUT/{split}.ref ("first - last  N
verses") and the token files OUT/tok/{split}.bin (+ .en.ids/.es.ids) in the
format of tools/corpus/spm.py, so that `granattn train --set
data_dir=OUT/tok` and `granattn eval --data-dir OUT/tok --corpus-dir OUT`
use them as they are; OUT/stats.tsv: windows, verses and source/target
pieces (min, mean, p95, max) per split.

Usage:
  tools/corpus/windows.py                    # data/corpus -> data/windows
  tools/corpus/windows.py --max-verses 16 --max-src 512 --seed 1 --out DIR
Needs data/corpus and data/spm/spm.model (tools/prepare-data.sh).
"""

import argparse
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import spm as S  # noqa: E402  (tools/corpus/spm.py: reader, encoder, .bin writer)

SPLITS = ("train", "dev", "test")


def chapter_of(ref):
    """'Genesis 1:3' -> 'Genesis 1'."""
    return ref.rsplit(":", 1)[0]


def chapters(refs):
    """[(i, j)]: runs of consecutive lines of one chapter."""
    out, i = [], 0
    for j in range(1, len(refs) + 1):
        if j == len(refs) or chapter_of(refs[j]) != chapter_of(refs[i]):
            out.append((i, j))
            i = j
    return out


def cut(i, j, rng, max_verses):
    """Windows [a, b) covering [i, j): lengths uniform in 2..max_verses (the
    last one takes what is left; a remainder of 1 joins the previous one
    when that stays <= max_verses, else stands alone)."""
    out, a = [], i
    while a < j:
        b = min(j, a + rng.randint(2, max_verses))
        if j - b == 1 and b - a + 1 <= max_verses:
            b = j
        out.append((a, b))
        a = b
    return out


def fit(win, en, sp, max_src):
    """Split windows whose joined source is over max_src pieces in halves."""
    out, todo = [], list(win)
    while todo:
        a, b = todo.pop(0)
        n = len(sp.encode(" ".join(en[a:b]), out_type=int))
        if n <= max_src or b - a == 1:
            out.append((a, b))
        else:
            m = (a + b) // 2
            todo[:0] = [(a, m), (m, b)]
    return out


def stats(seqs):
    n = sorted(len(s) for s in seqs)
    if not n:
        return "0\t0\t0\t0"
    return "%d\t%.1f\t%d\t%d" % (n[0], sum(n) / len(n), n[min(len(n) - 1, int(0.95 * len(n)))], n[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--corpus", default=os.path.join(ROOT, "data", "corpus"),
                    help="directory with {split}.en/.es/.ref (default: data/corpus)")
    ap.add_argument("--spm", default=os.path.join(ROOT, "data", "spm", "spm.model"),
                    help="SentencePiece model (default: data/spm/spm.model)")
    ap.add_argument("--out", default=os.path.join(ROOT, "data", "windows"),
                    help="output directory (default: data/windows)")
    ap.add_argument("--max-verses", type=int, default=16, help="longest window (default 16)")
    ap.add_argument("--max-src", type=int, default=512,
                    help="most source pieces per window (default 512)")
    ap.add_argument("--seed", type=int, default=1, help="window-length seed (default 1)")
    a = ap.parse_args()
    if a.max_verses < 2:
        ap.error("--max-verses must be >= 2")
    if a.max_src < 1:
        ap.error("--max-src must be >= 1")
    for s in SPLITS:
        for ext in ("en", "es", "ref"):
            p = os.path.join(a.corpus, "%s.%s" % (s, ext))
            if not os.path.isfile(p):
                sys.exit("windows.py: %s missing (run tools/prepare-data.sh)" % p)
    if not os.path.isfile(a.spm):
        sys.exit("windows.py: %s missing (run tools/prepare-data.sh)" % a.spm)
    sp = S.load(a.spm)
    vocab = sp.get_piece_size()
    tok = os.path.join(a.out, "tok")
    os.makedirs(tok, exist_ok=True)
    rows = ["split\twindows\tverses\tsrc_min\tsrc_mean\tsrc_p95\tsrc_max\ttgt_min\ttgt_mean\ttgt_p95\ttgt_max"]
    for split in SPLITS:
        en = S.read_lines(os.path.join(a.corpus, split + ".en"))
        es = S.read_lines(os.path.join(a.corpus, split + ".es"))
        ref = S.read_lines(os.path.join(a.corpus, split + ".ref"))
        if not (len(en) == len(es) == len(ref)):
            sys.exit("windows.py: %s: .en/.es/.ref line counts differ" % split)
        rng = random.Random("%d/%s" % (a.seed, split))
        win = []
        for i, j in chapters(ref):
            win += fit(cut(i, j, rng, a.max_verses), en, sp, a.max_src)
        src_txt = [" ".join(en[x:y]) for x, y in win]
        tgt_txt = [" ".join(es[x:y]) for x, y in win]
        refs = ["%s - %s  %d verses" % (ref[x], ref[y - 1], y - x) for x, y in win]
        for ext, lines in (("en", src_txt), ("es", tgt_txt), ("ref", refs)):
            with open(os.path.join(a.out, "%s.%s" % (split, ext)), "w", encoding="utf-8") as f:
                f.write("".join(line + "\n" for line in lines))
        src = S.encode_lines(sp, src_txt)
        tgt = S.encode_lines(sp, tgt_txt)
        S.write_ids(os.path.join(tok, split + ".en.ids"), src)
        S.write_ids(os.path.join(tok, split + ".es.ids"), tgt)
        S.write_bin(os.path.join(tok, split + ".bin"), src, tgt, vocab)
        rows.append("%s\t%d\t%d\t%s\t%s" % (split, len(win), sum(y - x for x, y in win),
                                          stats(src), stats(tgt)))
        print("%s: %d windows of %d verses, source pieces %s (min/mean/p95/max)"
              % (split, len(win), sum(y - x for x, y in win), stats(src).replace("\t", "/")))
    with open(os.path.join(a.out, "stats.tsv"), "w") as f:
        f.write("\n".join(rows) + "\n")
    print("wrote %s/{train,dev,test}.{en,es,ref}, %s/*.bin, stats.tsv" % (a.out, tok))


if __name__ == "__main__":
    main()
