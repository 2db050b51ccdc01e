#!/usr/bin/env bash
# tests/test_spm.sh — SentencePiece in process (model/spm.h, libsentencepiece)
# against tools/corpus/spm.py (the Python module over the same library):
# the same ids and the same text, line for line, exit status for exit status.
#
#   tests/test_spm.sh [BUILD_DIR]      (default: build)
#
# Self-contained: trains its own small model with spm.py's own trainer
# settings (unigram, byte_fallback, identity normalisation, pad=0 unk=1
# bos=2 eos=3; vocabulary 500) on the repository's Markdown files and some
# generated Spanish-like text, then compares `granattn spm encode|decode`
# with `spm.py encode|decode` on that text and on hard lines (empty, only
# whitespace, tabs, "\r", CRLF, accents, combining marks, emoji, CJK, NUL,
# a 5000-word line, three kinds of non-UTF-8, no final newline), random id
# lines (pad/bos/eos, byte pieces, invalid UTF-8 byte sequences) and bad id
# lines; then `granattn translate` with a tiny checkpoint of that
# vocabulary, in process vs GRANATTN_SPM=python (text and ids out, the
# non-UTF-8 line).  With data/spm/spm.model (a prepared checkout) also on
# every line of data/corpus/test.en.  A build without libsentencepiece runs
# the same comparisons through its spm.py fallback.
# Needs /usr/bin/python3 with sentencepiece (python3-sentencepiece,
# tools/deps.sh).  SPM_KEEP=1 keeps the temporary directory.  Ends with the
# line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
B=${1:-build}
BIN=$B/model/granattn
PY=/usr/bin/python3
SPMPY=$ROOT/tools/corpus/spm.py
pass=0 fail=0 skip=0
ok() { pass=$((pass + 1)); echo "ok   - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1"; [[ -n "${2:-}" ]] && sed 's/^/       | /' <<<"$2" | head -20; }
skipped() { skip=$((skip + 1)); echo "skip - $1"; }
finish() { echo "$pass passed, $fail failed"; ((fail == 0)); exit $?; }

if [[ ! -x "$BIN" ]]; then
    bad "$BIN not found or not executable (build first, or pass the build directory)"
    finish
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
if ! "$PY" -c 'import sentencepiece' 2>/dev/null; then
    bad "$PY has no sentencepiece module (Debian: python3-sentencepiece; tools/deps.sh)"
    finish
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/granattn-spm.XXXXXX")
trap '[[ -n "${SPM_KEEP:-}" ]] || rm -rf "$T"' EXIT
TMO=${SPM_TIMEOUT:-120}

backend=$("$BIN" translate --help | grep '^Subwords:')
if grep -q 'in process (libsentencepiece)' <<<"$backend"; then
    inproc=1; ok "translate --help names the backend: in process (libsentencepiece)"
elif grep -q 'tools/corpus/spm.py' <<<"$backend"; then
    inproc=0; ok "translate --help names the backend: tools/corpus/spm.py (built without libsentencepiece)"
else
    inproc=0; bad "translate --help does not say how text is segmented" "$backend"
fi

# ------------------------------------------------------------ a small model
mkdir -p "$T/corpus"
git ls-files -z '*.md' | xargs -0 cat >"$T/corpus/train.en"
"$PY" - "$T/corpus/train.es" <<'EOF'
import random, sys
r = random.Random(11)
words = ("el la los las de del que y en un una por con para como más pero "
         "niño niña corazón canción señor Jesús después también él allí "
         "dijo Señor días tierra pueblo hijos según José María Ángel "
         "acción pingüino árbol público último cañón ¿qué? ¡sí!").split()
with open(sys.argv[1], "w", encoding="utf-8") as f:
    for _ in range(600):
        s = " ".join(r.choice(words) for _ in range(r.randrange(3, 25)))
        f.write(s[0].upper() + s[1:] + r.choice([".", ",", ";", ":", "?"]) + "\n")
EOF
if out=$(timeout "$TMO" "$PY" "$SPMPY" --corpus "$T/corpus" --spm-dir "$T/spm" train \
        --vocab-size 500 2>&1) && [[ -s "$T/spm/spm.model" ]]; then
    ok "trained a test model with spm.py's settings: $out"
else
    bad "spm.py train (vocabulary 500) on the Markdown files" "$out"
    finish
fi
M=$T/spm/spm.model

# same_cmd NAME MODEL WHAT INPUT: granattn spm WHAT vs spm.py WHAT on INPUT
# (a file): same stdout (byte for byte), same exit status, the same number
# of stderr lines.
same_cmd() {
    local name=$1 model=$2 what=$3 in=$4
    local rc1 rc2
    timeout "$TMO" "$BIN" spm "$what" --spm-model "$model" "$in" >"$T/o1" 2>"$T/e1"; rc1=$?
    timeout "$TMO" "$PY" "$SPMPY" --model "$model" "$what" "$in" >"$T/o2" 2>"$T/e2"; rc2=$?
    if ! cmp -s "$T/o1" "$T/o2"; then
        bad "$name: output differs from spm.py" "$(diff <(cat -A "$T/o1") <(cat -A "$T/o2") | head -10)"
    elif ((rc1 != rc2)); then
        bad "$name: exit status $rc1, spm.py $rc2" "$(cat "$T/e1" "$T/e2")"
    elif [[ $(wc -l <"$T/e1") != $(wc -l <"$T/e2") ]]; then
        bad "$name: $(wc -l <"$T/e1") message line(s), spm.py $(wc -l <"$T/e2")" "$(cat "$T/e1" "$T/e2")"
    elif grep -q 'Traceback\|Sanitizer' "$T/e1"; then
        bad "$name: traceback or sanitizer report" "$(cat "$T/e1")"
    else
        ok "$name: same as spm.py ($(wc -l <"$T/o1") lines, exit $rc1)"
    fi
}

# -------------------------------------------------------------- encode
same_cmd "encode the training text (en)" "$M" encode "$T/corpus/train.en"
same_cmd "encode the training text (es)" "$M" encode "$T/corpus/train.es"
"$PY" - "$T" <<'EOF'
import random, sys
d = sys.argv[1]
r = random.Random(5)
lines = [b"", b"Hello world.", b"  leading and  trailing  ", b"tabs\there\t", b"\t",
         b"cr at the end\r", b"mid\rcr", b"   ",
         "café naïve Ñandú ¿qué? ¡sí! Ángel pingüino".encode(),
         "e\u0301 combining, A\u030a ring".encode(),
         "emoji \U0001F600\U0001F44D\U0001F3FD and flags \U0001F1EA\U0001F1F8".encode(),
         "中文 Русский ελληνικά עברית".encode(),
         "\u00a0nbsp\u2003em space\u200bzero width".encode(),
         b"\x0b\x0c vertical tab, form feed \x1f unit separator",
         b"nul \x00 byte",
         " ".join("word%d" % r.randrange(1000) for _ in range(5000)).encode()]
good = b"\n".join(lines) + b"\r\nCRLF line before a last line without newline"
open(d + "/hard.txt", "wb").write(good)
bad = [b"Hello", b"bad \xff\xfe bytes", b"overlong \xc0\xaf", b"surrogate \xed\xa0\x80",
       b"cut \xe2\x82", b"fine again"]
open(d + "/badutf8.txt", "wb").write(b"\n".join(bad) + b"\n")
open(d + "/empty.txt", "wb").write(b"")
open(d + "/newline.txt", "wb").write(b"\n")
# random id lines: pad/bos/eos anywhere, byte pieces (ids 4..259: invalid
# UTF-8 sequences when mixed), other pieces; spaces and tabs, trailing blanks
out = []
for i in range(1500):
    n = r.randrange(0, 30)
    ids = [r.choice([r.randrange(0, 500), r.randrange(0, 300), r.randrange(0, 5)])
           for _ in range(n)]
    out.append(r.choice([" ", "  ", "\t"]).join(map(str, ids)) + r.choice(["", " ", "\t"]))
open(d + "/rand.ids", "w").write("\n".join(out) + "\n")
EOF
same_cmd "encode hard lines (whitespace, CR, CRLF, accents, emoji, NUL, 5000 words, no final newline)" \
    "$M" encode "$T/hard.txt"
same_cmd "encode non-UTF-8 lines (empty line + message each, exit 1)" "$M" encode "$T/badutf8.txt"
if grep -q 'badutf8.txt:3: not valid UTF-8' "$T/e1" && [[ -z $(sed -n 2p "$T/o1") && -n $(sed -n 6p "$T/o1") ]]; then
    ok "encode non-UTF-8: the message names the line, the others are encoded"
else
    bad "encode non-UTF-8: message / lines" "$(cat "$T/e1" "$T/o1")"
fi
same_cmd "encode an empty file" "$M" encode "$T/empty.txt"
same_cmd "encode a file of one newline" "$M" encode "$T/newline.txt"
out1=$("$BIN" spm encode --spm-model "$M" - <"$T/hard.txt" 2>&1)
out2=$("$PY" "$SPMPY" --model "$M" encode <"$T/hard.txt" 2>&1)
if [[ "$out1" == "$out2" ]]; then ok "encode from stdin (-)"; else bad "encode from stdin differs"; fi

# -------------------------------------------------------------- decode
"$BIN" spm encode --spm-model "$M" "$T/corpus/train.en" >"$T/train.en.ids" 2>/dev/null
same_cmd "decode the training text's ids" "$M" decode "$T/train.en.ids"
"$BIN" spm encode --spm-model "$M" "$T/hard.txt" >"$T/hard.ids" 2>/dev/null
same_cmd "decode the hard lines' ids" "$M" decode "$T/hard.ids"
same_cmd "decode random id lines (pad/bos/eos, byte pieces, tabs)" "$M" decode "$T/rand.ids"
printf '5 6 7\n8 500 9\n10\n' >"$T/oov.ids"
same_cmd "decode: an id outside the vocabulary (exit 1 at that line)" "$M" decode "$T/oov.ids"
grep -q 'oov.ids:2: token id outside the vocabulary \[0, 500)' "$T/e1" \
    && ok "decode: the message names the line and the vocabulary" \
    || bad "decode: message for an id outside the vocabulary" "$(cat "$T/e1")"
printf '5 6 7\n-4 9\n' >"$T/neg.ids"
same_cmd "decode: a negative id" "$M" decode "$T/neg.ids"
printf '5 6 7\n8 x 9\n' >"$T/nan.ids"
same_cmd "decode: a token that is not an integer" "$M" decode "$T/nan.ids"
printf '2 40 41 3 499 0\n+40 41\n\n0 0\n3\n' >"$T/special.ids"
same_cmd "decode: bos, eos (truncates), pad, + sign, empty lines" "$M" decode "$T/special.ids"

# -------------------------------------------------------------- the switch
if ((inproc)); then
    GRANATTN_SPM=python "$BIN" spm encode --spm-model "$M" "$T/hard.txt" >"$T/p.ids" 2>/dev/null
    "$BIN" spm encode --spm-model "$M" "$T/hard.txt" >"$T/i.ids" 2>/dev/null
    if cmp -s "$T/p.ids" "$T/i.ids" && GRANATTN_SPM=python "$BIN" spm --help | grep -q 'This build: text <-> ids by tools/corpus/spm.py (GRANATTN_SPM=python)'; then
        ok "GRANATTN_SPM=python: spm.py in a build with libsentencepiece, same ids"
    else
        bad "GRANATTN_SPM=python" "$(GRANATTN_SPM=python "$BIN" spm --help | grep 'This build')"
    fi
fi
echo "garbage" >"$T/broken.model"
out=$("$BIN" spm encode --spm-model "$T/broken.model" "$T/hard.txt" 2>&1 >/dev/null); rc=$?
if ((inproc == 0 && rc == 1)); then
    ok "a broken model file: exit 1 (spm.py)"
elif ((rc == 1)) && grep -q 'granattn spm: error' <<<"$out" && ! grep -q 'terminate\|Sanitizer\|Traceback' <<<"$out"; then
    ok "a broken model file: one error line, exit 1 (no exception escapes)"
else
    bad "a broken model file (exit $rc)" "$out"
fi
out=$("$BIN" spm encode --spm-model "$T/none.model" 2>&1 </dev/null); rc=$?
((rc == 1)) && grep -q 'none.model: no such file' <<<"$out" && ok "a missing model file: exit 1, named" \
    || bad "a missing model file (exit $rc)" "$out"
out=$("$BIN" spm frobnicate 2>&1); rc=$?
((rc == 2)) && ok "spm: unknown operation is a usage error (exit 2)" || bad "spm frobnicate (exit $rc)" "$out"

# ------------------------------------- translate: in process vs spm.py
# A fake project root whose data/spm/spm.model is the test model, and a
# tiny checkpoint of its vocabulary (synthetic token files, a few steps).
mkdir -p "$T/root/tools/corpus" "$T/root/data/spm"
ln -s "$SPMPY" "$T/root/tools/corpus/spm.py"
cp "$M" "$T/root/data/spm/spm.model"
"$PY" - "$T/tok" <<'EOF'
import os, random, struct, sys, zlib
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = random.Random(7)
def write(name, n):
    body = b""
    for _ in range(n):
        src = [rng.randrange(4, 500) for _ in range(rng.randrange(3, 15))]
        tgt = [rng.randrange(4, 500) for _ in range(rng.randrange(3, 15))]
        body += struct.pack("<H%dH" % len(src), len(src), *src)
        body += struct.pack("<H%dH" % len(tgt), len(tgt), *tgt)
    head = struct.pack("<4sIII", b"GATK", 2, n, 500)
    head += struct.pack("<I", zlib.crc32(head + body) & 0xFFFFFFFF)
    open(os.path.join(out, name + ".bin"), "wb").write(head + body)
write("train", 200); write("dev", 20); write("test", 20)
EOF
if out=$(timeout "$TMO" "$BIN" train --config configs/tiny.ini --out "$T/run" --set data_dir="$T/tok" \
        --set vocab=500 --set threads=1 --set max_steps=3 --set eval_every=3 --set ckpt_every=3 --quiet 2>&1) \
        && [[ -f "$T/run/last.ckpt" ]]; then
    # the hard lines without the NUL one (translate refuses NUL input) and
    # the 5000-word one (over-long: reported alike), plus a non-UTF-8 line
    grep -av 'nul ' "$T/hard.txt" >"$T/xl.txt"
    printf 'bad \xff line\nlast\n' >>"$T/xl.txt"
    for mode in text ids; do
        extra=(); [[ $mode == ids ]] && extra=(--output-ids)
        GRANATTN_ROOT="$T/root" timeout "$TMO" "$BIN" translate --model "$T/run/last.ckpt" --threads 1 \
            --input "$T/xl.txt" --output "$T/x1" "${extra[@]}" 2>"$T/xe1"; rc1=$?
        GRANATTN_ROOT="$T/root" GRANATTN_SPM=python timeout "$TMO" "$BIN" translate --model "$T/run/last.ckpt" \
            --threads 1 --input "$T/xl.txt" --output "$T/x2" "${extra[@]}" 2>"$T/xe2"; rc2=$?
        if cmp -s "$T/x1" "$T/x2" && ((rc1 == rc2)) && [[ $(wc -l <"$T/x1") == $(wc -l <"$T/xl.txt") ]] \
            && diff -q "$T/xe1" "$T/xe2" >/dev/null; then
            ok "translate ($mode out), this build vs GRANATTN_SPM=python: same output, messages, exit $rc1 ($(wc -l <"$T/x1") lines)"
        else
            bad "translate ($mode out): this build vs GRANATTN_SPM=python (exit $rc1 / $rc2)" \
                "$(diff "$T/xe1" "$T/xe2"; diff <(cat -A "$T/x1") <(cat -A "$T/x2") | head)"
        fi
    done
    grep -q 'xl.txt: line [0-9]*: not valid UTF-8' "$T/xe1" && ((rc1 == 1)) \
        && ok "translate: the non-UTF-8 line is reported (exit 1)" \
        || bad "translate: non-UTF-8 line not reported" "$(cat "$T/xe1")"
    s="Café naïve, 😀 in the beginning."
    GRANATTN_ROOT="$T/root" timeout "$TMO" "$BIN" inspect --model "$T/run/last.ckpt" --sentence "$s" \
        --out "$T/in1" --no-png >/dev/null 2>"$T/ie1"; rc1=$?
    GRANATTN_ROOT="$T/root" GRANATTN_SPM=python timeout "$TMO" "$BIN" inspect --model "$T/run/last.ckpt" \
        --sentence "$s" --out "$T/in2" --no-png >/dev/null 2>"$T/ie2"; rc2=$?
    if ((rc1 == 0 && rc2 == 0)) && cmp -s "$T/in1/inspect.json" "$T/in2/inspect.json"; then
        ok "inspect --sentence, this build vs GRANATTN_SPM=python: same inspect.json"
    else
        bad "inspect --sentence: this build vs GRANATTN_SPM=python (exit $rc1 / $rc2)" "$(cat "$T/ie1" "$T/ie2")"
    fi
else
    bad "a tiny checkpoint of vocabulary 500 (granattn train)" "$out"
fi

# ---------------------------------------- the project's model, when present
if [[ -f data/spm/spm.model && -f data/corpus/test.en ]]; then
    same_cmd "data/corpus/test.en, every line (data/spm/spm.model)" data/spm/spm.model encode data/corpus/test.en
    cp "$T/o1" "$T/test.ids"
    same_cmd "decode data/corpus/test.en's ids" data/spm/spm.model decode "$T/test.ids"
    cmp -s "$T/o1" data/corpus/test.en && ok "data/corpus/test.en: decode(encode(text)) is the text" \
        || bad "data/corpus/test.en does not round-trip"
else
    skipped "data/corpus/test.en with data/spm/spm.model (not prepared: tools/prepare-data.sh)"
fi
finish
