#!/usr/bin/python3
"""bible.py — build the aligned English→Spanish Bible corpus and its standard split.

Source: the Debian SWORD modules engWEB2015eb (World English Bible, package
sword-text-web) and spaRV1909eb (Reina-Valera 1909, sword-text-sparv), dumped
with raw `mod2imp MODULE` (libsword-utils).  The markup rules live in
osis.py; the pairing, misalignment drops and split follow the section "The
real translation corpus" of docs/NOTES.md.

Writes, under --out (default data/corpus):
  {train,dev,test}.en / .es   one verse per line, aligned line by line
  {train,dev,test}.ref        the "Book C:V" reference of each line
  aligned.tsv                 every aligned pair before the length filter:
                              ref <TAB> chapter index k <TAB> en <TAB> es
  counts.json                 the counts checked by prepare-data.sh

Usage: tools/corpus/bible.py [--out DIR] [--imp-dir DIR] [--check] [--diagnose]
       tools/corpus/bible.py [--out DIR] --verify
"""

import argparse
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import osis  # noqa: E402  (local module, path set above)

MODULES = {"en": "engWEB2015eb", "es": "spaRV1909eb"}

# Chapters whose versification differs from the given verse to the chapter's
# end (docs/NOTES.md); (book, chapter, first verse, last verse or None = to
# end).
MISALIGNED = (
    ("Numbers", 13, 1, None), ("Numbers", 30, 1, None),
    ("I Samuel", 24, 1, None), ("I Kings", 22, 43, None),
    ("I Chronicles", 21, 15, None), ("II Chronicles", 33, 10, None),
    ("Job", 39, 1, None), ("Job", 40, 1, None), ("Hosea", 12, 1, None),
    ("Jonah", 2, 1, None), ("Matthew", 23, 13, 14), ("Acts", 19, 40, None),
    ("Romans", 14, 23, None), ("II Corinthians", 13, 13, None),
)

# The counts docs/NOTES.md gives for this procedure.
EXPECTED = {"web_verses": 37457, "pairs_by_reference": 31077,
            "aligned_pairs": 30886, "train": 25286, "dev": 1506,
            "test": 1384}

MIN_WORDS, MAX_WORDS = 1, 40
SPLITS = ("train", "dev", "test")


def dump_module(module, imp_dir=None):
    """Return the raw mod2imp dump of a module (or read MODULE.imp from imp_dir)."""
    if imp_dir:
        with open(os.path.join(imp_dir, module + ".imp"),
                  encoding="utf-8") as f:
            return f.read()
    out = subprocess.run(["mod2imp", module], check=True,
                         stdout=subprocess.PIPE)
    return out.stdout.decode("utf-8")


def clean_module(entries):
    """Clean every entry; return an ordered dict (book, c, v) -> text.

    Chapter 0 and verse 0 (introductions, headings) and verses that are
    empty after cleaning (WEB's omitted verses) are left out.
    """
    verses = {}
    for book, chap, verse, markup in entries:
        if chap == 0 or verse == 0:
            continue
        text = osis.clean_osis(markup)
        if text:
            verses[(book, chap, verse)] = text
    return verses


def fix_rv1909(verses):
    """Apply the RV1909 rules: opening capitals, Pauline subscriptions.

    Modifies and returns `verses`.  The chapter opening is the first verse
    present for each chapter (always verse 1 in this module); the
    subscription is cut from the last verse of each Pauline epistle.
    """
    lexicon = osis.build_case_lexicon(verses.values())
    seen, last_of_book = set(), {}
    for key in verses:
        book, chap, _ = key
        if (book, chap) not in seen:
            seen.add((book, chap))
            verses[key] = osis.decapitalise_opening(verses[key], lexicon)
        last_of_book[book] = key
    for book in osis.PAULINE_EPISTLES:
        key = last_of_book[book]
        verses[key] = osis.drop_subscription(verses[key])
    return verses


def is_misaligned(ref):
    """True when a (book, c, v) reference falls in a MISALIGNED range."""
    book, chap, verse = ref
    for m_book, m_chap, first, last in MISALIGNED:
        if book == m_book and chap == m_chap and verse >= first and \
                (last is None or verse <= last):
            return True
    return False


def pair_verses(en, es):
    """Pair verses present on both sides, in English (canonical) order."""
    return [(ref, en[ref], es[ref]) for ref in en if ref in es]


def assign_chapters(pairs):
    """Give each chapter an index k in order of first appearance.

    Returns a list of (ref, k, en, es).
    """
    index, out = {}, []
    for ref, en, es in pairs:
        k = index.setdefault(ref[:2], len(index))
        out.append((ref, k, en, es))
    return out


def split_of(k):
    """The standard split of chapter index k."""
    if k % 20 == 0:
        return "test"
    if k % 20 == 10:
        return "dev"
    return "train"


def keep_length(en, es):
    """True when both sides have MIN_WORDS..MAX_WORDS whitespace words."""
    return all(MIN_WORDS <= len(s.split()) <= MAX_WORDS for s in (en, es))


def ref_str(ref):
    """'Book C:V' for a (book, c, v) tuple."""
    return "%s %d:%d" % ref


def write_outputs(out_dir, indexed, splits):
    """Write the split files, aligned.tsv and counts.json to out_dir."""
    os.makedirs(out_dir, exist_ok=True)
    for name, rows in splits.items():
        for ext, col in (("en", 2), ("es", 3), ("ref", 0)):
            path = os.path.join(out_dir, "%s.%s" % (name, ext))
            with open(path + ".tmp", "w", encoding="utf-8") as f:
                for row in rows:
                    f.write((ref_str(row[0]) if ext == "ref" else row[col])
                            + "\n")
            os.replace(path + ".tmp", path)
    with open(os.path.join(out_dir, "aligned.tsv"), "w",
              encoding="utf-8") as f:
        for ref, k, en, es in indexed:
            f.write("%s\t%d\t%s\t%s\n" % (ref_str(ref), k, en, es))


def word_stats(lines):
    """Whitespace words per line (mean, p95, max) and vocabulary size.

    The vocabulary counts distinct lower-cased runs of word characters
    (punctuation stripped).
    """
    lengths = sorted(len(s.split()) for s in lines)
    vocab = {w for s in lines for w in re.findall(r"\w+", s.lower())}
    p95 = lengths[min(len(lengths) - 1, int(0.95 * len(lengths)))]
    return {"mean": round(sum(lengths) / len(lengths), 2), "p95": p95,
            "max": lengths[-1], "vocab": len(vocab)}


def diagnose(en, es, pairs, aligned):
    """Print where the verses go, to explain differences from docs/NOTES.md."""
    only_en = [r for r in en if r not in es]
    only_es = [r for r in es if r not in en]
    books_only_en = sorted({r[0] for r in only_en} - {r[0] for r in es},
                           key=lambda b: next(i for i, r in enumerate(en)
                                              if r[0] == b))
    print("WEB verses only in deuterocanonical books: %d (%s)" % (
        sum(1 for r in only_en if r[0] in books_only_en),
        ", ".join(books_only_en)), file=sys.stderr)
    shared = [r for r in only_en if r[0] not in books_only_en]
    print("WEB verses in shared books missing from RV1909: %d %s" % (
        len(shared), [ref_str(r) for r in shared]), file=sys.stderr)
    print("RV1909 verses missing from WEB: %d %s" % (
        len(only_es), [ref_str(r) for r in only_es]), file=sys.stderr)
    dropped = {}
    for ref, _, _ in pairs:
        if is_misaligned(ref):
            dropped[ref[:2]] = dropped.get(ref[:2], 0) + 1
    for (book, chap), n in dropped.items():
        print("dropped misaligned %s %d: %d pairs" % (book, chap, n),
              file=sys.stderr)
    print("pairs %d - dropped %d = aligned %d" % (
        len(pairs), len(pairs) - len(aligned), len(aligned)), file=sys.stderr)


def build(args):
    """Dump, clean, pair, split and write; return the counts dict."""
    en_entries = osis.parse_imp(dump_module(MODULES["en"], args.imp_dir))
    es_entries = osis.parse_imp(dump_module(MODULES["es"], args.imp_dir))
    en = clean_module(en_entries)
    es = fix_rv1909(clean_module(es_entries))
    pairs = pair_verses(en, es)
    aligned = [p for p in pairs if not is_misaligned(p[0])]
    indexed = assign_chapters(aligned)
    splits = {name: [] for name in SPLITS}
    for row in indexed:
        if keep_length(row[2], row[3]):
            splits[split_of(row[1])].append(row)
    if args.diagnose:
        diagnose(en, es, pairs, aligned)
    write_outputs(args.out, indexed, splits)
    train = splits["train"]
    counts = {"web_verses": len(en), "rv1909_verses": len(es),
              "pairs_by_reference": len(pairs),
              "aligned_pairs": len(aligned),
              "chapters": indexed[-1][1] + 1,
              "length_filtered_out": len(aligned) - sum(
                  len(v) for v in splits.values()),
              **{name: len(rows) for name, rows in splits.items()},
              "train_words_en": word_stats([r[2] for r in train]),
              "train_words_es": word_stats([r[3] for r in train]),
              "aligned_words_en": word_stats([r[2] for r in indexed]),
              "aligned_words_es": word_stats([r[3] for r in indexed])}
    with open(os.path.join(args.out, "counts.json"), "w") as f:
        json.dump(counts, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return counts


def check(counts):
    """Compare with EXPECTED; print differences; return True when all match."""
    ok = True
    for key, want in EXPECTED.items():
        if counts[key] != want:
            print("MISMATCH %s: got %d, docs/NOTES.md says %d" % (
                key, counts[key], want), file=sys.stderr)
            ok = False
    return ok


def verify(out_dir):
    """Check counts.json against docs/NOTES.md and the split files against it.

    Returns True when everything matches; prints each problem to stderr.
    """
    with open(os.path.join(out_dir, "counts.json")) as f:
        counts = json.load(f)
    ok = check(counts)
    for name in SPLITS:
        lengths = set()
        for ext in ("en", "es", "ref"):
            with open(os.path.join(out_dir, "%s.%s" % (name, ext)),
                      encoding="utf-8") as f:
                lines = f.read().split("\n")[:-1]
            lengths.add(len(lines))
            if ext != "ref" and any(not keep_length(s, s) for s in lines):
                print("%s.%s: a line outside %d..%d words" % (
                    name, ext, MIN_WORDS, MAX_WORDS), file=sys.stderr)
                ok = False
        if lengths != {counts[name]}:
            print("%s: line counts %s, counts.json says %d" % (
                name, sorted(lengths), counts[name]), file=sys.stderr)
            ok = False
    return ok


def main():
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        description="Build the aligned WEB/RV1909 corpus and the standard "
                    "train/dev/test split.")
    parser.add_argument("--out", default="data/corpus",
                        help="output directory (default: data/corpus)")
    parser.add_argument("--imp-dir",
                        help="read MODULE.imp dumps from this directory "
                             "instead of running mod2imp")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 unless the counts match docs/NOTES.md")
    parser.add_argument("--diagnose", action="store_true",
                        help="print where verses are lost on the way")
    parser.add_argument("--verify", action="store_true",
                        help="build nothing: check OUT/counts.json against "
                             "docs/NOTES.md and the split files against it")
    args = parser.parse_args()
    if args.verify:
        ok = verify(args.out)
        print("corpus counts %s" % ("match docs/NOTES.md" if ok else "DIFFER"))
        return 0 if ok else 1
    counts = build(args)
    for key in ("web_verses", "rv1909_verses", "pairs_by_reference",
                "aligned_pairs", "chapters", "length_filtered_out",
                "train", "dev", "test"):
        print("%-20s %d" % (key, counts[key]))
    for key in ("aligned_words_en", "aligned_words_es"):
        print("%-20s %s" % (key, counts[key]))
    if args.check and not check(counts):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
