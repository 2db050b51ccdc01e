#!/usr/bin/python3
"""toy_data.py — the toy translation task of the shell tests, as token files.

  tests/toy_data.py OUT SPLIT:N [SPLIT:N ...] [--seed 7] [--ids LO:HI]
                    [--len LO:HI] [--extra FILE:N]

Task: target = source ids + 100, reversed.  Each source has a length drawn
from [len LO, HI) and ids from [ids LO, HI) (defaults 3:15 and 10:60, so the
targets are ids 110..159), one random.Random(seed) for everything, in the
order given.  Writes OUT/SPLIT.bin (GATK version 1: tools/corpus/spm.py's
format without the CRC; vocabulary 8000) for each SPLIT:N, then --extra
FILE:N writes N more sources as id lines (space separated) to FILE.
"""

import argparse
import os
import random
import struct
import sys


def span(text):
    try:
        lo, hi = (int(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError("expected LO:HI, got %r" % text)
    if not 0 <= lo < hi:
        raise argparse.ArgumentTypeError("need 0 <= LO < HI: %r" % text)
    return lo, hi


def named(text):
    name, _, n = text.rpartition(":")
    if not name or not n.isdigit():
        raise argparse.ArgumentTypeError("expected NAME:N, got %r" % text)
    return name, int(n)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("out")
    ap.add_argument("splits", nargs="+", type=named, help="SPLIT:N (pairs)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--ids", type=span, default=(10, 60), help="source ids LO:HI (default 10:60)")
    ap.add_argument("--len", type=span, default=(3, 15), help="source lengths LO:HI (default 3:15)")
    ap.add_argument("--extra", type=named, help="FILE:N more sources as id lines")
    a = ap.parse_args()
    rng = random.Random(a.seed)

    def sent():
        return [rng.randrange(*a.ids) for _ in range(rng.randrange(*a.len))]

    os.makedirs(a.out, exist_ok=True)
    for name, n in a.splits:
        with open(os.path.join(a.out, name + ".bin"), "wb") as f:
            f.write(struct.pack("<4sIII", b"GATK", 1, n, 8000))
            for _ in range(n):
                src = sent()
                tgt = [x + 100 for x in reversed(src)]
                f.write(struct.pack("<H%dH" % len(src), len(src), *src))
                f.write(struct.pack("<H%dH" % len(tgt), len(tgt), *tgt))
    if a.extra:
        with open(a.extra[0], "w") as f:
            for _ in range(a.extra[1]):
                f.write(" ".join(map(str, sent())) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
