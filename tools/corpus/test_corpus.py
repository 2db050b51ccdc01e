#!/usr/bin/python3
"""Unit tests for the corpus tools (osis.py, bible.py, spm.py).

Run from the repository root with either of
    /usr/bin/python3 -m unittest tools/corpus/test_corpus.py
    /usr/bin/python3 -m unittest discover -s tools/corpus
The markup tests use small hand-written OSIS snippets.  The data tests check
data/corpus and data/tok and skip, with a message, when tools/prepare-data.sh
has not been run.
"""

import json
import struct
import os
import sys
import tempfile
import unittest
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import bible  # noqa: E402
import osis  # noqa: E402

CORPUS = os.path.join(ROOT, "data", "corpus")
TOK = os.path.join(ROOT, "data", "tok")


def w(text, lemma="H0001"):
    """An OSIS <w> element, as the modules write it."""
    return '<w lemma="strong:%s">%s</w>' % (lemma, text)


NOTE = ('<note placement="foot"><reference type="annotateRef">1:1 '
        '</reference>Or, <catchWord>x</catchWord> living.</note>')
XREF = ('<note type="crossReference"><reference subType="x-origin" '
        'type="annotateRef">4:4 </reference><reference>Deuteronomy 8:3'
        '</reference></note>')
TC = '<transChange type="added">%s</transChange>'


class TestParseImp(unittest.TestCase):
    """The mod2imp dump format."""

    def test_entries_and_headers(self):
        dump = ("$$$[ Module Heading ]\n\n$$$[ Testament 1 Heading ]\n"
                "<milestone/>\n$$$Genesis 0:0\nintro\n$$$Genesis 1:0\n"
                "<chapter/>\n$$$Genesis 1:1\nIn the beginning\n"
                "$$$Song of Solomon 2:10\nline one\nline two\n")
        self.assertEqual(osis.parse_imp(dump), [
            ("Genesis", 0, 0, "intro"), ("Genesis", 1, 0, "<chapter/>"),
            ("Genesis", 1, 1, "In the beginning"),
            ("Song of Solomon", 2, 10, "line one\nline two")])

    def test_chapter_and_verse_zero_dropped(self):
        entries = [("Genesis", 0, 0, "Preface"), ("Genesis", 1, 0, "Title"),
                   ("Genesis", 1, 1, "Text."), ("Genesis", 1, 2, "<div/>")]
        self.assertEqual(bible.clean_module(entries),
                         {("Genesis", 1, 1): "Text."})


class TestCleanOsis(unittest.TestCase):
    """Each markup rule of docs/NOTES.md on a small snippet."""

    def test_w_keeps_word_and_punctuation(self):
        self.assertEqual(osis.clean_osis(
            w("In") + " " + w("the") + " " + w("beginning") + ", " +
            w("God") + "."), "In the beginning, God.")

    def test_w_with_several_words(self):
        self.assertEqual(osis.clean_osis(
            w("EN el principio") + " " + w("crió") + "."),
            "EN el principio crió.")

    def test_note_between_words_becomes_space(self):
        self.assertEqual(osis.clean_osis(
            w("God") + NOTE + w("created") + " " + w("it") + "."),
            "God created it.")

    def test_note_after_comma_before_word(self):
        self.assertEqual(osis.clean_osis(
            w("conceived") + "," + NOTE + w("and") + " bore"),
            "conceived, and bore")

    def test_note_before_punctuation_leaves_no_space(self):
        self.assertEqual(osis.clean_osis(
            w("shekels") + NOTE + ", " + w("and") + "."), "shekels, and.")
        self.assertEqual(osis.clean_osis(
            "mouth.’”</q>" + XREF + '<div eID="g1" type="x-p"/>'),
            "mouth.’”")

    def test_note_with_spaces_around(self):
        self.assertEqual(osis.clean_osis("two " + NOTE + " coins"),
                         "two coins")

    def test_note_after_opening_quote(self):
        self.assertEqual(osis.clean_osis("said, “" + NOTE + "Go"),
                         "said, “Go")

    def test_noncanonical_title_dropped(self):
        self.assertEqual(osis.clean_osis(
            '<title level="2" type="main">The Creation</title> ' +
            w("In") + " " + w("the") + " beginning."), "In the beginning.")
        self.assertEqual(osis.clean_osis(
            "<title>BOOK 1</title> Blessed is the man"),
            "Blessed is the man")

    def test_canonical_psalm_title_kept(self):
        self.assertEqual(osis.clean_osis(
            '<div type="x-milestone" subType="x-preverse" sID="pv1"/>'
            '<title canonical="true" type="psalm">A Psalm by ' + w("David") +
            '.</title> <lg sID="g1"/> <l level="1" sID="g2"/>Yahweh, how'),
            "A Psalm by David. Yahweh, how")

    def test_canonical_title_glued_to_text(self):
        self.assertEqual(osis.clean_osis(
            '<title canonical="true" type="psalm">A Psalm.</title>Yahweh'),
            "A Psalm. Yahweh")

    def test_speaker_dropped(self):
        self.assertEqual(osis.clean_osis(
            '<speaker>Beloved</speaker> <l level="1" sID="g1"/>' +
            w("Let") + " him kiss me"), "Let him kiss me")
        self.assertEqual(osis.clean_osis(
            "<lg sID=\"g1\"/><speaker>Lover</speaker><l sID=\"g2\"/>Behold"),
            "Behold")

    def test_transchange_separate_word(self):
        self.assertEqual(osis.clean_osis(
            w("hay allí") + TC % "también" + w("bdelio") + "."),
            "hay allí también bdelio.")
        self.assertEqual(osis.clean_osis(
            w("aguas") + " que " + TC % "están" + " " + w("debajo")),
            "aguas que están debajo")

    def test_transchange_with_punctuation(self):
        self.assertEqual(osis.clean_osis(
            "Dios (" + TC % "dijo ella" + ") " + w("me ha")),
            "Dios (dijo ella) me ha")
        self.assertEqual(osis.clean_osis(
            w("hablaste") + " " + TC % "diciendo" + ":"),
            "hablaste diciendo:")
        self.assertEqual(osis.clean_osis("¿" + TC % "no es" + " la"),
                         "¿no es la")

    def test_transchange_enclitic_stays_glued(self):
        self.assertEqual(osis.clean_osis(
            w("consultó") + " preguntándo" + TC % "le" + ","),
            "consultó preguntándole,")

    def test_transchange_wrapping_w(self):
        self.assertEqual(osis.clean_osis(
            w("Estas") + TC % (w("son las") + " " + w("medidas")) +
            w("Salomón")), "Estas son las medidas Salomón")

    def test_entities_decoded(self):
        self.assertEqual(osis.clean_osis(
            "Tom &amp; Jerry &lt;3 caf&#233; &quot;x&quot;"),
            'Tom & Jerry <3 café "x"')

    def test_end_of_book_marker(self):
        markup = (w("saints") + ". Amen.  <chapter eID=\"Rev.22\"/>"
                  '<div eID="g9" type="x-p"/> <div canonical="true" '
                  'eID="g1" osisID="Rev" type="book"/> <div sID="g2" '
                  'type="glossary"/> <title level="1" type="main">Glossary'
                  "</title> Abba is a Chaldee word for father.")
        self.assertEqual(osis.clean_osis(markup), "saints. Amen.")

    def test_book_start_div_is_not_end(self):
        self.assertEqual(osis.clean_osis(
            '<div canonical="true" osisID="Gen" sID="g1" type="book"/>'
            "In the beginning"), "In the beginning")

    def test_structural_tags_and_whitespace(self):
        self.assertEqual(osis.clean_osis(
            'increased!<l eID="g1" level="1"/> <l level="2" sID="g2"/>Many'
            '<lb type="x-p"/>are\n  here.  '), "increased! Many are here.")

    def test_quote_tag_is_inline(self):
        self.assertEqual(osis.clean_osis(
            'him, <q marker="" who="Jesus">“' + w("Allow") + " it.”</q>"),
            "him, “Allow it.”")


LEXICON = osis.build_case_lexicon([
    "Y dijo Jehová á Moisés: Ve.",
    "y habló Jehová con Abraham, y con Achâb hijo de Dios.",
    "el rey y la tierra y el pueblo de Israel; aconteció que subió el rey.",
])


class TestRvOpening(unittest.TestCase):
    """RV1909's capitalised chapter openings → normal case."""

    def check(self, before, after):
        """Assert decapitalise_opening(before) == after."""
        self.assertEqual(osis.decapitalise_opening(before, LEXICON), after)

    def test_conjunction_and_verb(self):
        self.check("Y ACONTECIÓ que subió el rey.",
                   "Y aconteció que subió el rey.")

    def test_first_word(self):
        self.check("EN el principio crió Dios", "En el principio crió Dios")

    def test_proper_noun_keeps_capital(self):
        self.check("Y JEHOVÁ habló á MOISÉS", "Y Jehová habló á MOISÉS")
        self.check("Y ABRAHAM era viejo", "Y Abraham era viejo")

    def test_proper_noun_missing_accent(self):
        self.check("Y ACHAB dió la nueva", "Y Achab dió la nueva")

    def test_several_capital_words(self):
        self.check("A TI, oh Jehová", "A ti, oh Jehová")
        self.check("Y Á SUS discípulos", "Y á sus discípulos")

    def test_after_psalm_title(self):
        self.check("Salmo de David. JEHOVÁ es mi pastor",
                   "Salmo de David. Jehová es mi pastor")
        self.check("Salmo de David. ¡OH Jehová, cuánto",
                   "Salmo de David. ¡Oh Jehová, cuánto")

    def test_sentence_start_inside_run(self):
        self.check("ALEPH. BIENAVENTURADOS los perfectos",
                   "Aleph. Bienaventurados los perfectos")

    def test_later_capitals_untouched(self):
        self.check("ESCRIBE al ángel de la iglesia en EFESO:",
                   "Escribe al ángel de la iglesia en EFESO:")

    def test_no_capitals_unchanged(self):
        self.check("Y El ángel de Jehová subió", "Y El ángel de Jehová subió")

    def test_fix_rv1909_only_first_verse_of_chapter(self):
        verses = {("Genesis", 1, 1): "EN el principio crió Dios",
                  ("Genesis", 1, 2): "Y dijo Dios: SEA la luz",
                  ("Romans", 16, 27): "Amén. Escrita.",
                  **{(b, 1, 1): "PABLO, siervo" for b in
                     osis.PAULINE_EPISTLES if b != "Romans"}}
        out = bible.fix_rv1909(verses)
        self.assertEqual(out[("Genesis", 1, 1)], "En el principio crió Dios")
        self.assertEqual(out[("Genesis", 1, 2)], "Y dijo Dios: SEA la luz")
        self.assertEqual(out[("Romans", 16, 27)], "Amén.")


class TestPaulineSubscription(unittest.TestCase):
    """Subscriptions after the final 'Amén.' of the Pauline epistles."""

    def test_dropped(self):
        self.assertEqual(osis.drop_subscription(
            "La gracia sea con todos vosotros. Amén. Fué escrita á los "
            "Hebreos desde Italia con Timoteo."),
            "La gracia sea con todos vosotros. Amén.")

    def test_last_amen_wins(self):
        self.assertEqual(osis.drop_subscription(
            "Amén. La gracia sea con vosotros. Amén. Escrita de Roma."),
            "Amén. La gracia sea con vosotros. Amén.")

    def test_without_amen_unchanged(self):
        text = "Sepa que el que hubiere hecho convertir al pecador."
        self.assertEqual(osis.drop_subscription(text), text)

    def test_fourteen_epistles(self):
        self.assertEqual(len(osis.PAULINE_EPISTLES), 14)
        self.assertIn("Hebrews", osis.PAULINE_EPISTLES)


class TestPairingAndSplit(unittest.TestCase):
    """Misalignment drops, chapter index and the standard split."""

    def test_misaligned_tail(self):
        self.assertTrue(bible.is_misaligned(("Numbers", 13, 1)))
        self.assertTrue(bible.is_misaligned(("Numbers", 13, 33)))
        self.assertFalse(bible.is_misaligned(("Numbers", 12, 15)))
        self.assertTrue(bible.is_misaligned(("I Kings", 22, 53)))
        self.assertFalse(bible.is_misaligned(("I Kings", 22, 42)))

    def test_matthew_only_two_verses(self):
        self.assertFalse(bible.is_misaligned(("Matthew", 23, 12)))
        self.assertTrue(bible.is_misaligned(("Matthew", 23, 13)))
        self.assertTrue(bible.is_misaligned(("Matthew", 23, 14)))
        self.assertFalse(bible.is_misaligned(("Matthew", 23, 15)))

    def test_pairing_and_chapter_index(self):
        en = {("Gen", 1, 1): "a", ("Gen", 1, 2): "b", ("Tob", 1, 1): "x",
              ("Gen", 2, 1): "c"}
        es = {("Gen", 1, 1): "A", ("Gen", 2, 1): "C", ("Luk", 1, 1): "L"}
        pairs = bible.pair_verses(en, es)
        self.assertEqual(pairs, [(("Gen", 1, 1), "a", "A"),
                                 (("Gen", 2, 1), "c", "C")])
        self.assertEqual([row[1] for row in bible.assign_chapters(pairs)],
                         [0, 1])

    def test_split_of(self):
        self.assertEqual([bible.split_of(k) for k in (0, 1, 10, 19, 20, 30)],
                         ["test", "train", "dev", "train", "test", "dev"])

    def test_keep_length(self):
        self.assertTrue(bible.keep_length("a", "b"))
        self.assertTrue(bible.keep_length(" ".join("a" * 40), "b"))
        self.assertFalse(bible.keep_length(" ".join("a" * 41), "b"))
        self.assertFalse(bible.keep_length("a", ""))


class TestTokenBinary(unittest.TestCase):
    """The GATK binary format written by spm.py."""

    def test_round_trip(self):
        import spm
        src = [[5, 6, 7], [], [7999]]
        tgt = [[9], [10, 11], [4, 4, 4, 4]]
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "x.bin")
            spm.write_bin(path, src, tgt, 8000)
            with open(path, "rb") as f:
                data = f.read()
            self.assertEqual(data[:16], b"GATK\x02\x00\x00\x00\x03\x00\x00\x00"
                             b"\x40\x1f\x00\x00")
            self.assertEqual(data[16:20], struct.pack(
                "<I", zlib.crc32(data[:16] + data[20:]) & 0xFFFFFFFF))
            self.assertEqual(data[20:28], b"\x03\x00\x05\x00\x06\x00\x07\x00")
            self.assertEqual(len(data), 20 + 2 * (6 + 3 + 0 + 1 + 2 + 4 + 1))
            self.assertEqual(spm.read_bin(path), (8000, src, tgt))

    def test_checksum_catches_a_flipped_byte(self):
        import spm
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "x.bin")
            spm.write_bin(path, [[5, 6]], [[7]], 8000)
            data = bytearray(open(path, "rb").read())
            data[22] ^= 1
            open(path, "wb").write(data)
            with self.assertRaises(ValueError):
                spm.read_bin(path)

    def test_version1_still_read(self):
        import spm
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "x.bin")
            with open(path, "wb") as f:
                f.write(struct.pack("<4sIIIH2HH1H", b"GATK", 1, 1, 8000,
                                    2, 5, 6, 1, 7))
            self.assertEqual(spm.read_bin(path), (8000, [[5, 6]], [[7]]))

    def test_encode_input_lines(self):
        """Split on "\\n" only; a non-UTF-8 line is None, the others survive."""
        import spm
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "in.txt")
            with open(path, "wb") as f:
                f.write(b"one\rstill one\nbad \xff\xfe\n\xc3\xa9t\xc3\xa9\n")
            self.assertEqual(list(spm.input_lines(path)),
                             [(1, "one\rstill one"), (2, None), (3, "\u00e9t\u00e9")])

    def test_special_ids_rejected(self):
        import spm
        with tempfile.TemporaryDirectory() as tmp:
            for bad in (0, 2, 3):
                with self.assertRaises(ValueError):
                    spm.write_bin(os.path.join(tmp, "x.bin"), [[5, bad]], [[7]],
                                  8000)

    def test_out_of_range_id_rejected(self):
        import spm
        with tempfile.TemporaryDirectory() as tmp:
            with self.assertRaises(ValueError):
                spm.write_bin(os.path.join(tmp, "x.bin"), [[8000]], [[1]],
                              8000)


def read_lines(path):
    """Lines of a UTF-8 file without newlines."""
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n")[:-1]


class TestData(unittest.TestCase):
    """The built corpus (skipped unless tools/prepare-data.sh has run)."""

    def setUp(self):
        if not os.path.exists(os.path.join(CORPUS, "counts.json")):
            self.skipTest("data/corpus absent: run tools/prepare-data.sh")

    def test_counts_match_notes(self):
        with open(os.path.join(CORPUS, "counts.json")) as f:
            counts = json.load(f)
        for key, want in bible.EXPECTED.items():
            self.assertEqual(counts[key], want, key)

    def test_split_files(self):
        for split in bible.SPLITS:
            en = read_lines(os.path.join(CORPUS, split + ".en"))
            es = read_lines(os.path.join(CORPUS, split + ".es"))
            ref = read_lines(os.path.join(CORPUS, split + ".ref"))
            self.assertEqual(len(en), bible.EXPECTED[split])
            self.assertEqual(len(es), len(en))
            self.assertEqual(len(ref), len(en))
            for line in en + es:
                self.assertTrue(1 <= len(line.split()) <= 40, line)
                self.assertFalse(set(line) & set("<>\x01"), line)
                self.assertEqual(line, " ".join(line.split()))

    def test_known_lines(self):
        self.assertEqual(read_lines(os.path.join(CORPUS, "test.ref"))[0],
                         "Genesis 1:1")
        self.assertEqual(read_lines(os.path.join(CORPUS, "test.es"))[0],
                         "En el principio crió Dios los cielos y la tierra.")
        self.assertEqual(read_lines(os.path.join(CORPUS, "dev.ref"))[0],
                         "Genesis 11:1")
        ref = read_lines(os.path.join(CORPUS, "train.ref"))
        self.assertNotIn("Matthew 23:13", ref)
        self.assertNotIn("Job 39:1", ref)

    def test_token_files(self):
        if not os.path.exists(os.path.join(TOK, "test.bin")):
            self.skipTest("data/tok absent: run tools/prepare-data.sh")
        import spm
        for split in ("dev", "test"):
            vocab, src, tgt = spm.read_bin(os.path.join(TOK, split + ".bin"))
            self.assertEqual(vocab, 8000)
            self.assertEqual(len(src), bible.EXPECTED[split])
            self.assertEqual(src, spm.read_ids(
                os.path.join(TOK, split + ".en.ids")))
            self.assertEqual(tgt, spm.read_ids(
                os.path.join(TOK, split + ".es.ids")))
            self.assertFalse(any(spm.UNK in s for s in src + tgt))


if __name__ == "__main__":
    unittest.main()
