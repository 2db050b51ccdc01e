#!/usr/bin/python3
"""release-model.py — a checkpoint fit to hand to users: weights only, no
machine paths.

  tools/release-model.py IN.ckpt OUT.ckpt [--note TEXT]

Reads a granattn checkpoint (layout: model/checkpoint.h), keeps the CONFIG,
STATE and PARAMS sections, drops the Adam moments (ADAM_M, ADAM_V: a third
of the size each; --resume then is not possible, --init and translate are),
sets `data_dir` in the embedded config back to the default `data/tok` (the
training run's absolute path says nothing to a user), adds or replaces a
NOTES section with TEXT (where the weights came from), and rewrites both
CRC-32s.  The result loads with every `granattn` subcommand that takes
--model.  Exit status 2 with a message on a file that is not a checkpoint.
"""

import argparse
import os
import re
import struct
import sys
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "ct2"))
import gackpt  # noqa: E402  (the checkpoint container reader, with gk_load's checks)

KEEP = ("CONFIG", "STATE", "PARAMS", "NOTES")


def fail(msg):
    sys.stderr.write("release-model.py: error: %s\n" % msg)
    sys.exit(2)


def read(path):
    """(header bytes, [(tag, bytes)]) of a verified checkpoint (tools/ct2/gackpt.py)."""
    try:
        blob, secs = gackpt.read_sections(path)
    except gackpt.GackptError as e:
        fail(str(e))
    return blob[:64], secs


def write(path, head, secs):
    body = b""
    for tag, data in secs:
        t = tag.encode("ascii")
        body += t + b"\0" * (8 - len(t)) + struct.pack("<Q", len(data)) + data
        body += b"\0" * (-len(data) % 8)
    h = bytearray(head)
    struct.pack_into("<QII", h, 16, len(body), zlib.crc32(body), len(secs))
    struct.pack_into("<I", h, 60, zlib.crc32(bytes(h[:60])))
    with open(path, "wb") as f:
        f.write(bytes(h) + body)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--note", default="", help="text of the NOTES section")
    a = ap.parse_args()
    head, secs = read(a.input)
    tags = [t for t, _ in secs]
    for need in ("CONFIG", "STATE", "PARAMS"):
        if need not in tags:
            fail("%s: no %s section" % (a.input, need))
    out = []
    for tag, data in secs:
        if tag not in KEEP or tag == "NOTES":
            continue
        if tag == "CONFIG":
            text = data.rstrip(b"\0").decode("utf-8")
            text = re.sub(r"(?m)^data_dir = .*$", "data_dir = data/tok", text)
            data = text.encode("utf-8") + b"\0"
        out.append((tag, data))
    if a.note:
        out.append(("NOTES", a.note.encode("utf-8")))
    write(a.output, head, out)
    print("%s: %d bytes (sections %s)" % (a.output, sum(16 + len(d) + (-len(d) % 8) for _, d in out) + 64,
                                          ", ".join(t for t, _ in out)))


if __name__ == "__main__":
    main()
