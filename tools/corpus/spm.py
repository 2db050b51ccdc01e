#!/usr/bin/python3
"""spm.py — joint SentencePiece model for the WEB→RV1909 corpus, and token files.

Subcommands:
  train    train the joint model on data/corpus/train.{en,es}
           -> data/spm/spm.model, data/spm/spm.vocab
  splits   encode every split -> data/tok/{split}.{en,es}.ids (one sentence per
           line, space-separated ids, no bos/eos) and data/tok/{split}.bin
           (the pairs, binary; format below), and data/tok/stats.json
  encode   text -> ids, one line per line (file or stdin), for translation;
           --sample ALPHA draws a random segmentation (subword regularisation)
  decode   ids  -> text, one line per line (file or stdin), for evaluation
  verify   check .bin against .ids, the corpus line counts and round trip
  stats    print the subword statistics of data/tok

Model: unigram, vocabulary 8000, character_coverage 1.0, byte_fallback (no
input is ever unknown), identity normalisation (decode(encode(s)) == s for
our whitespace-normalised text), pad=0 unk=1 bos=2 eos=3, fixed seed and a
single training thread so that the model is byte-for-byte reproducible.

Binary format of {split}.bin (little-endian throughout):
  header   char magic[4] = "GATK"; uint32 version = 2; uint32 n_pairs;
           uint32 vocab_size; uint32 crc32                   (20 bytes)
  n_pairs  records, each: uint16 n_src, uint16 src_ids[n_src],
           uint16 n_tgt, uint16 tgt_ids[n_tgt]
  crc32 is the CRC-32 (zlib.crc32) of header bytes 0..15 followed by every
  byte after the header.  Version 1 files (no crc32 field, 16-byte header)
  are still read.
  Source = English, target = Spanish; pair i is line i of {split}.ref.
  Ids carry no pad/bos/eos: the trainer adds bos=2 / eos=3 itself.
"""

import argparse
import json
import os
import struct
import sys
import zlib

try:
    import sentencepiece as spm
except ImportError:  # the token-file functions work without it
    spm = None

VOCAB_SIZE = 8000
MODEL_TYPE = "unigram"
SEED = 20240601
PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPLITS = ("train", "dev", "test")
LANGS = ("en", "es")
MAGIC = b"GATK"
VERSION = 2
HEADER = struct.Struct("<4sIII")      # magic, version, n_pairs, vocab_size
CRC = struct.Struct("<I")             # version >= 2: after HEADER


def read_lines(path):
    """Read a UTF-8 file as a list of lines without their newlines."""
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n")[:-1]


def train_model(corpus, out, vocab_size=VOCAB_SIZE, model_type=MODEL_TYPE,
                seed=SEED, threads=1):
    """Train the joint model on corpus/train.en + corpus/train.es.

    Writes out/spm.model and out/spm.vocab and returns the model path.
    """
    os.makedirs(out, exist_ok=True)
    inputs = [os.path.join(corpus, "train.%s" % lang) for lang in LANGS]
    if spm is None:
        load(None)  # exits with the message
    spm.set_random_generator_seed(seed)
    spm.SentencePieceTrainer.train(
        input=",".join(inputs),
        model_prefix=os.path.join(out, "spm"),
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=1.0,
        byte_fallback=True,
        normalization_rule_name="identity",
        pad_id=PAD, unk_id=UNK, bos_id=BOS, eos_id=EOS,
        input_sentence_size=0,
        shuffle_input_sentence=False,
        num_threads=threads,
        minloglevel=2)
    return os.path.join(out, "spm.model")


def load(model_path):
    """Load a SentencePiece model."""
    if spm is None:
        sys.exit("spm.py: the Python module sentencepiece is missing (Debian: "
                 "python3-sentencepiece; run tools/prepare-data.sh)")
    return spm.SentencePieceProcessor(model_file=model_path)


def encode_lines(sp, lines):
    """Encode lines of text to lists of ids (no bos/eos)."""
    return sp.encode(lines, out_type=int)


def write_ids(path, seqs):
    """Write id sequences, one per line, ids separated by spaces."""
    with open(path + ".tmp", "w") as f:
        for seq in seqs:
            f.write(" ".join(map(str, seq)) + "\n")
    os.replace(path + ".tmp", path)


def read_ids(path):
    """Read an .ids file back into a list of lists of ints."""
    with open(path) as f:
        return [[int(t) for t in line.split()] for line in f]


def write_bin(path, src, tgt, vocab_size):
    """Write aligned id sequences in the GATK binary format (module doc)."""
    if len(src) != len(tgt):
        raise ValueError("source and target differ in length")
    body = bytearray()
    for pair in zip(src, tgt):
        for seq in pair:
            if len(seq) > 0xFFFF or any(not 0 <= i < vocab_size
                                        for i in seq):
                raise ValueError("sequence does not fit the format")
            if any(i in (PAD, BOS, EOS) for i in seq):
                raise ValueError("pad/bos/eos id inside a sequence")
            body += struct.pack("<H%dH" % len(seq), len(seq), *seq)
    head = HEADER.pack(MAGIC, VERSION, len(src), vocab_size)
    with open(path + ".tmp", "wb") as f:
        f.write(head + CRC.pack(zlib.crc32(head + body) & 0xFFFFFFFF))
        f.write(body)
    os.replace(path + ".tmp", path)


def read_bin(path):
    """Read a GATK file; return (vocab_size, src_seqs, tgt_seqs)."""
    with open(path, "rb") as f:
        data = f.read()
    magic, version, count, vocab_size = HEADER.unpack_from(data, 0)
    if magic != MAGIC or version not in (1, VERSION):
        raise ValueError("%s: not a GATK v1/v%d file" % (path, VERSION))
    pos, src, tgt = HEADER.size, [], []
    if version >= 2:
        (crc,) = CRC.unpack_from(data, pos)
        pos += CRC.size
        if zlib.crc32(data[:HEADER.size] + data[pos:]) & 0xFFFFFFFF != crc:
            raise ValueError("%s: checksum mismatch (corrupt or cut short)" % path)
    for _ in range(count):
        for out in (src, tgt):
            (n,) = struct.unpack_from("<H", data, pos)
            out.append(list(struct.unpack_from("<%dH" % n, data, pos + 2)))
            pos += 2 + 2 * n
    if pos != len(data):
        raise ValueError("%s: %d trailing bytes" % (path, len(data) - pos))
    return vocab_size, src, tgt


def length_stats(seqs):
    """Mean, p95 and max length of a list of sequences."""
    lengths = sorted(len(s) for s in seqs)
    p95 = lengths[min(len(lengths) - 1, int(0.95 * len(lengths)))]
    return {"n": len(lengths), "mean": round(sum(lengths) / len(lengths), 2),
            "p95": p95, "max": lengths[-1]}


def encode_splits(corpus, model_path, out):
    """Encode every split to .ids and .bin files; return the statistics."""
    sp = load(model_path)
    os.makedirs(out, exist_ok=True)
    stats = {"vocab_size": sp.get_piece_size(), "model_type": MODEL_TYPE}
    for split in SPLITS:
        seqs = {}
        for lang in LANGS:
            lines = read_lines(os.path.join(corpus, "%s.%s" % (split, lang)))
            seqs[lang] = encode_lines(sp, lines)
            unk = sum(seq.count(UNK) for seq in seqs[lang])
            if unk:
                raise RuntimeError("%s.%s: %d unknown tokens" % (
                    split, lang, unk))
            write_ids(os.path.join(out, "%s.%s.ids" % (split, lang)),
                      seqs[lang])
            stats["%s.%s" % (split, lang)] = length_stats(seqs[lang])
        stats["%s.both" % split] = length_stats(seqs["en"] + seqs["es"])
        write_bin(os.path.join(out, "%s.bin" % split), seqs["en"],
                  seqs["es"], sp.get_piece_size())
    with open(os.path.join(out, "stats.json"), "w") as f:
        json.dump(stats, f, indent=1)
        f.write("\n")
    return stats


def print_stats(stats):
    """Print the subword statistics as a small table."""
    print("subwords per verse (vocab %d, %s):" % (stats["vocab_size"],
                                                  stats["model_type"]))
    print("  %-11s %6s %6s %4s %4s" % ("", "n", "mean", "p95", "max"))
    for key in sorted(k for k in stats if "." in k):
        s = stats[key]
        print("  %-11s %6d %6.2f %4d %4d" % (key, s["n"], s["mean"],
                                            s["p95"], s["max"]))


def open_input(path):
    """A readable text stream: the named file, or stdin for None / '-'."""
    if path in (None, "-"):
        return sys.stdin
    return open(path, encoding="utf-8")


def input_lines(path):
    """(line number, text or None) for each line of a file or stdin.

    Lines are split on "\n" only (as the C tool splits them; text mode would
    also split on "\r" and other line breaks, shifting every later line).
    A line that is not UTF-8 gives None: the caller reports it and keeps
    going, so one bad line does not lose the others.
    """
    if path in (None, "-"):
        data = sys.stdin.buffer.read()
    else:
        with open(path, "rb") as f:
            data = f.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for k, raw in enumerate(lines, 1):
        try:
            yield k, raw.decode("utf-8")
        except UnicodeDecodeError:
            yield k, None


def cmd_train(args):
    """Subcommand: train the model."""
    path = train_model(args.corpus, args.spm_dir, args.vocab_size,
                       args.model_type, args.seed, args.threads)
    print("wrote %s (%d pieces)" % (path, load(path).get_piece_size()))


def cmd_splits(args):
    """Subcommand: encode every split."""
    print_stats(encode_splits(args.corpus, args.model, args.tok_dir))


def cmd_encode(args):
    """Subcommand: text lines -> id lines (a non-UTF-8 line: empty, exit 1)."""
    sp = load(args.model)
    if args.sample is not None:
        spm.set_random_generator_seed(args.seed)
    name = args.file if args.file not in (None, "-") else "<stdin>"
    bad = 0
    for k, text in input_lines(args.file):
        if text is None:
            print("spm.py: %s:%d: not valid UTF-8; encoded as an empty line"
                  % (name, k), file=sys.stderr)
            bad += 1
            ids = []
        elif args.sample is None:
            ids = sp.encode(text, out_type=int)
        else:
            ids = sp.encode(text, out_type=int, enable_sampling=True,
                            alpha=args.sample, nbest_size=-1)
        if args.bos_eos:
            ids = [BOS] + ids + [EOS]
        print(" ".join(map(str, ids)))
    if bad:
        sys.exit(1)


def cmd_decode(args):
    """Subcommand: id lines -> text lines (pad, bos, eos are dropped)."""
    sp = load(args.model)
    name = args.file if args.file not in (None, "-") else "<stdin>"
    with open_input(args.file) as f:
        for k, line in enumerate(f, 1):
            try:
                ids = [int(t) for t in line.split()]
            except ValueError:
                sys.exit("spm.py: %s:%d: not a line of token ids" % (name, k))
            if any(not 0 <= i < sp.get_piece_size() for i in ids):
                sys.exit("spm.py: %s:%d: token id outside the vocabulary [0, %d)"
                         % (name, k, sp.get_piece_size()))
            if EOS in ids:
                ids = ids[:ids.index(EOS)]
            print(sp.decode([i for i in ids if i not in (PAD, BOS)]))


def verify(corpus, model_path, tok_dir):
    """Check the token files against each other and the corpus.

    Every split's .bin must decode to the same ids as its .ids files, hold
    as many pairs as the corpus has lines, contain no unknown token, and
    decode back to the corpus text.  Returns True when all holds.
    """
    sp = load(model_path)
    ok = True
    for split in SPLITS:
        vocab_size, src, tgt = read_bin(os.path.join(tok_dir, split + ".bin"))
        for lang, seqs in (("en", src), ("es", tgt)):
            name = "%s.%s" % (split, lang)
            lines = read_lines(os.path.join(corpus, name))
            problems = []
            if vocab_size != sp.get_piece_size():
                problems.append("vocab size %d in .bin" % vocab_size)
            if seqs != read_ids(os.path.join(tok_dir, name + ".ids")):
                problems.append(".bin and .ids differ")
            if len(seqs) != len(lines):
                problems.append("%d sequences for %d lines" % (
                    len(seqs), len(lines)))
            if any(UNK in seq for seq in seqs):
                problems.append("unknown tokens")
            if sp.decode(seqs) != lines:
                problems.append("does not decode to the corpus text")
            for problem in problems:
                print("%s: %s" % (name, problem), file=sys.stderr)
            ok = ok and not problems
    return ok


def cmd_verify(args):
    """Subcommand: check the token files; exit status 1 on a problem."""
    ok = verify(args.corpus, args.model, args.tok_dir)
    print("token files %s" % ("consistent" if ok else "INCONSISTENT"))
    if not ok:
        sys.exit(1)


def cmd_stats(args):
    """Subcommand: print data/tok/stats.json."""
    with open(os.path.join(args.tok_dir, "stats.json")) as f:
        print_stats(json.load(f))


def main():
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        description="Joint SentencePiece model and token files for the "
                    "WEB/RV1909 corpus.")
    parser.add_argument("--corpus", default="data/corpus",
                        help="corpus directory (default: data/corpus)")
    parser.add_argument("--spm-dir", default="data/spm",
                        help="model directory (default: data/spm)")
    parser.add_argument("--tok-dir", default="data/tok",
                        help="token directory (default: data/tok)")
    parser.add_argument("--model", default=None,
                        help="model file (default: SPM_DIR/spm.model)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train the joint model")
    p.add_argument("--vocab-size", type=int, default=VOCAB_SIZE)
    p.add_argument("--model-type", default=MODEL_TYPE,
                   choices=("unigram", "bpe"))
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--threads", type=int, default=1,
                   help="training threads (1 = reproducible; default 1)")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("splits", help="encode every split to .ids and .bin")
    p.set_defaults(func=cmd_splits)
    p = sub.add_parser("encode", help="text -> ids, line by line")
    p.add_argument("file", nargs="?", help="input file (default: stdin)")
    p.add_argument("--bos-eos", action="store_true",
                   help="wrap each line in bos=2 ... eos=3")
    p.add_argument("--sample", type=float, metavar="ALPHA",
                   help="subword regularisation: sample a segmentation "
                        "(unigram; smoothing ALPHA, e.g. 0.1)")
    p.add_argument("--seed", type=int, default=SEED,
                   help="random seed for --sample")
    p.set_defaults(func=cmd_encode)
    p = sub.add_parser("decode", help="ids -> text, line by line")
    p.add_argument("file", nargs="?", help="input file (default: stdin)")
    p.set_defaults(func=cmd_decode)
    p = sub.add_parser("verify", help="check .bin/.ids against the corpus")
    p.set_defaults(func=cmd_verify)
    p = sub.add_parser("stats", help="print the subword statistics")
    p.set_defaults(func=cmd_stats)
    args = parser.parse_args()
    if args.model is None:
        args.model = os.path.join(args.spm_dir, "spm.model")
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
