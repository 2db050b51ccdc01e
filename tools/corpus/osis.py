#!/usr/bin/python3
"""osis.py — parse raw `mod2imp` dumps and turn OSIS verse markup into plain text.

This module has no side effects and no dependencies beyond the standard
library, so that the unit tests (test_corpus.py) can exercise every rule on
small hand-written snippets.  bible.py drives it on the two real modules.

Rules (see tools/corpus/README.md and docs/NOTES.md):

* everything after the end-of-book marker `<div … eID=… type="book"/>` is
  dropped (WEB appends a glossary to Revelation 22:21);
* `<note>…</note>` (footnotes, cross-references) is dropped; where it sat
  between two words it becomes a space;
* `<title>` is dropped unless it has canonical="true" (the psalm titles),
  whose text is kept;
* `<speaker>…</speaker>` (Song of Solomon labels) is dropped;
* `<transChange>` keeps its text as a separate word; the only exception is
  an insertion glued to plain letters of the same word (9 Spanish enclitics
  such as "preguntándo<transChange>le</transChange>"), which stays glued;
* `<w>`, `<q>`, `<name>`, … keep their text inline; every other tag
  (div, l, lg, lb, chapter, milestone, …) is a soft boundary;
* HTML entities are decoded, text is NFC-normalised, whitespace collapsed.

A *soft boundary* is a place where markup was removed.  It becomes a single
space when whitespace is already next to it or when it separates two pieces
of text that would otherwise glue into one word; it vanishes next to the
edge of the verse, before closing punctuation ( . , ; : ! ? ) ] ” ’ » — ) and
after opening punctuation ( ( [ “ ‘ « ¡ ¿ — ).
"""

import html
import re
import unicodedata

SOFT = "\x01"

NO_SPACE_BEFORE = set(".,;:!?)]}”’»—")
NO_SPACE_AFTER = set("([{“‘«¡¿—")

# Tags whose text is inline: removing the tag itself adds nothing.
INLINE_TAGS = {"w", "q", "name", "seg", "hi", "foreign", "divineName", "rdg"}

HEADER_RE = re.compile(r"^\$\$\$(.*)$", re.M)
REF_RE = re.compile(r"^(.+) (\d+):(\d+)$")
END_OF_BOOK_RE = re.compile(
    r'<div\b(?=[^>]*\beID=")(?=[^>]*\btype="book")[^>]*/>')
NOTE_RE = re.compile(r"<note\b[^>]*>.*?</note>", re.S)
NOTE_EMPTY_RE = re.compile(r"<note\b[^>]*/>")
TITLE_RE = re.compile(r"<title\b([^>]*)>(.*?)</title>", re.S)
SPEAKER_RE = re.compile(r"<speaker\b[^>]*>.*?</speaker>", re.S)
TRANSCHANGE_OPEN_RE = re.compile(r"<transChange\b[^>]*>")
TRANSCHANGE_CLOSE_RE = re.compile(r"</transChange>")
TAG_RE = re.compile(r"<(/?)([A-Za-z][\w:.-]*)[^>]*>")
SOFT_RUN_RE = re.compile(r"[\s%s]*%s[\s%s]*" % (SOFT, SOFT, SOFT))


def parse_imp(text):
    """Split a raw mod2imp dump into (book, chapter, verse, markup) tuples.

    Entries are returned in dump order (canonical order).  Headers that are
    not `Book C:V` references (`[ Module Heading ]`, `[ Testament 1
    Heading ]`) are skipped.  The markup is the raw text of the entry with
    its trailing newline(s) removed.
    """
    entries = []
    heads = list(HEADER_RE.finditer(text))
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        body = text[head.end():end].strip("\n")
        ref = REF_RE.match(head.group(1).strip())
        if ref is None:
            continue
        entries.append((ref.group(1), int(ref.group(2)), int(ref.group(3)),
                        body))
    return entries


def _title(match):
    """Keep the text of a canonical (psalm) title, drop any other title."""
    if 'canonical="true"' in match.group(1):
        return " " + match.group(2) + " "
    return SOFT


def _transchange_open(match):
    """Soft boundary before a <transChange>, unless glued to a letter."""
    text = match.string
    before = text[match.start() - 1] if match.start() > 0 else " "
    return "" if before.isalpha() else SOFT


def _transchange_close(match):
    """Soft boundary after a </transChange>, unless glued to a letter."""
    text = match.string
    after = text[match.end()] if match.end() < len(text) else " "
    return "" if after.isalpha() else SOFT


def _other_tag(match):
    """Inline tags vanish, every other tag becomes a soft boundary."""
    return "" if match.group(2) in INLINE_TAGS else SOFT


def _resolve_soft(match):
    """Turn a run of soft boundaries (and whitespace) into ' ' or ''."""
    run = match.group(0)
    if run.strip(SOFT) != "":          # whitespace already there
        return " "
    text = match.string
    if match.start() == 0 or match.end() == len(text):
        return ""
    left, right = text[match.start() - 1], text[match.end()]
    if right in NO_SPACE_BEFORE or left in NO_SPACE_AFTER:
        return ""
    return " "


def cut_end_of_book(markup):
    """Drop everything after the end-of-book marker (the marker included)."""
    match = END_OF_BOOK_RE.search(markup)
    return markup if match is None else markup[:match.start()]


def clean_osis(markup):
    """Return the plain text of one verse's OSIS markup (rules: module doc)."""
    text = cut_end_of_book(markup)
    text = NOTE_RE.sub(SOFT, text)
    text = NOTE_EMPTY_RE.sub(SOFT, text)
    text = TITLE_RE.sub(_title, text)
    text = SPEAKER_RE.sub(SOFT, text)
    text = TRANSCHANGE_OPEN_RE.sub(_transchange_open, text)
    text = TRANSCHANGE_CLOSE_RE.sub(_transchange_close, text)
    text = TAG_RE.sub(_other_tag, text)
    text = SOFT_RUN_RE.sub(_resolve_soft, text)
    text = html.unescape(text)
    text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())


# --- Reina-Valera 1909 specifics -------------------------------------------

PAULINE_EPISTLES = (
    "Romans", "I Corinthians", "II Corinthians", "Galatians", "Ephesians",
    "Philippians", "Colossians", "I Thessalonians", "II Thessalonians",
    "I Timothy", "II Timothy", "Titus", "Philemon", "Hebrews")

AMEN_RE = re.compile(r"Amén\.")
SENTENCE_END = tuple(".:!?")


def drop_subscription(text):
    """Cut a Pauline subscription: keep text up to the last 'Amén.'.

    Text without 'Amén.' is returned unchanged.
    """
    last = None
    for last in AMEN_RE.finditer(text):
        pass
    return text if last is None else text[:last.end()]


def _letters(token):
    """The letters of a token (punctuation stripped)."""
    return "".join(ch for ch in token if ch.isalpha())


def is_caps(token):
    """True for a token with at least one letter and no lowercase letter."""
    letters = _letters(token)
    return bool(letters) and letters == letters.upper() and \
        letters != letters.lower()


def _recase(token, title):
    """Lower-case a token's letters; with title=True capitalise the first."""
    out, first = [], title
    for ch in token:
        if ch.isalpha():
            out.append(ch.upper() if first else ch.lower())
            first = False
        else:
            out.append(ch)
    return "".join(out)


def strip_accents(word):
    """Remove combining diacritics: "Achâb" -> "Achab"."""
    decomposed = unicodedata.normalize("NFD", word)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def build_case_lexicon(texts):
    """Learn from RV1909 itself which words are proper nouns.

    Returns a dict: lower-cased word (letters only) -> True for a proper
    noun, False for a common word.  A word is a proper noun when it occurs
    capitalised after a non-sentence-final token more often than in lower
    case ("Jehová", "Dios", "Abraham").  Accent-stripped forms are added as
    extra keys (decided on their own pooled counts) where they do not clash
    with a real word, because the capitalised openings sometimes drop a
    diacritic ("ACHAB" for "Achâb").
    """
    upper, lower = {}, {}
    for text in texts:
        prev = "."
        for token in text.split():
            word = _letters(token)
            if len(word) >= 2 and not is_caps(token):
                key = word.lower()
                if word[0].isupper() and word[1:] == word[1:].lower():
                    if not prev.endswith(SENTENCE_END) and \
                            not token.startswith(("¡", "¿", "(")):
                        upper[key] = upper.get(key, 0) + 1
                elif word == word.lower():
                    lower[key] = lower.get(key, 0) + 1
            prev = token
    lexicon = {w: upper.get(w, 0) > lower.get(w, 0)
               for w in set(upper) | set(lower)}
    pooled_upper, pooled_lower = {}, {}
    for counts, pooled in ((upper, pooled_upper), (lower, pooled_lower)):
        for w, n in counts.items():
            key = strip_accents(w)
            pooled[key] = pooled.get(key, 0) + n
    for key in set(pooled_upper) | set(pooled_lower):
        lexicon.setdefault(
            key, pooled_upper.get(key, 0) > pooled_lower.get(key, 0))
    return lexicon


def is_proper_noun(word, lexicon):
    """Look a lower-cased word up in the lexicon (exact, then accent-free).

    Words never seen in either case count as common words.
    """
    if word in lexicon:
        return lexicon[word]
    return lexicon.get(strip_accents(word), False)


def decapitalise_opening(text, lexicon):
    """Normal-case the capitalised opening of a chapter's first verse.

    RV1909 prints a chapter's first word(s) in capitals: "Y ACONTECIÓ que"
    or, after a psalm title, "Salmo de David. JEHOVÁ es mi pastor".  The run
    is the first token with two or more capital letters and no lowercase
    one, extended backwards over single capital letters ("Y", "E", "A", "Á")
    and forwards over further all-capital tokens ("YO DIJE:", "A TI").  Its
    first token keeps a capital initial (it starts the text or a sentence),
    and so does a token after one ending in . : ! ? ("ALEPH. BIENAVENTURADOS"
    → "Aleph. Bienaventurados"); the others become lower case, except
    proper nouns, which become capitalised ("Y JEHOVÁ habló" → "Y Jehová
    habló"); `lexicon` comes from build_case_lexicon and is read by
    is_proper_noun.  Everything outside the run (e.g. the inscription
    "EFESO:" later in Revelation 2:1) is left alone.
    """
    tokens = text.split(" ")
    start = next((i for i, t in enumerate(tokens)
                  if is_caps(t) and len(_letters(t)) >= 2), None)
    if start is None:
        return text
    while start > 0 and is_caps(tokens[start - 1]) and \
            len(_letters(tokens[start - 1])) == 1:
        start -= 1
    end = start
    while end < len(tokens) and is_caps(tokens[end]):
        end += 1
    for i in range(start, end):
        word = _letters(tokens[i]).lower()
        title = i == start or tokens[i - 1].endswith(SENTENCE_END) or \
            is_proper_noun(word, lexicon)
        tokens[i] = _recase(tokens[i], title)
    return " ".join(tokens)
