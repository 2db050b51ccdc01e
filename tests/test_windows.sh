#!/usr/bin/env bash
# tests/test_windows.sh — tools/corpus/windows.py (passage-level data) on a
# synthetic corpus: three splits of made-up chapters, a small SentencePiece
# model trained here (CI has no data/).  Checks, per split:
#  1. the windows cover every verse exactly once, in order;
#  2. every window lies inside one chapter and has at most --max-verses verses;
#  3. a window is over --max-src source pieces only when it is one verse;
#  4. the joined English/Spanish lines are the verses joined by one space;
#  5. the .bin token file reads back and equals the encoded window text;
#  6. the same seed gives the same windows, another seed other ones;
#  7. bad options and a missing corpus exit non-zero with a message.
# Ends with the line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
if ! "$PY" -c "import sentencepiece" 2>/dev/null; then
    echo "FAIL - the Python module sentencepiece is missing (tools/deps.sh installs python3-sentencepiece)"
    echo "0 passed, 1 failed"
    exit 1
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/granattn-windows.XXXXXX")
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1"; [[ -n "${2:-}" ]] && sed 's/^/       | /' <<<"$2" | sed -n 1,20p; }

# Synthetic corpus: chapters of 1..40 verses of 3..40 words each.
"$PY" - "$T" <<'EOF' || { echo "FAIL - cannot make the corpus"; echo "0 passed, 1 failed"; exit 1; }
import os, random, sys
sys.path.insert(0, "tools/corpus")
import spm as S
out = sys.argv[1]
rng = random.Random(3)
words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
         "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon"]
os.makedirs(out + "/corpus", exist_ok=True)
for split, nchap in (("train", 30), ("dev", 5), ("test", 6)):
    en, es, ref = [], [], []
    for c in range(nchap):
        book = "Book%s%d" % (split, c // 3)
        nv = 1 if c == 2 else rng.randint(1, 40)
        for v in range(nv):
            w = [rng.choice(words) for _ in range(rng.randint(3, 40))]
            en.append(" ".join(w)); es.append(" ".join(x[::-1] for x in w))
            ref.append("%s %d:%d" % (book, c % 3 + 1, v + 1))
    for ext, lines in (("en", en), ("es", es), ("ref", ref)):
        open("%s/corpus/%s.%s" % (out, split, ext), "w").write("".join(l + "\n" for l in lines))
S.train_model(out + "/corpus", out + "/spm", vocab_size=300)
EOF

run() { "$PY" tools/corpus/windows.py --corpus "$T/corpus" --spm "$T/spm/spm.model" "$@"; }
if out=$(run --out "$T/w1" --max-verses 8 --max-src 120 --seed 1 2>&1); then
    ok "windows.py runs: $(sed -n 3p <<<"$out")"
else
    bad "windows.py failed" "$out"
fi

check=$("$PY" - "$T" 8 120 <<'EOF' 2>&1
import sys
sys.path.insert(0, "tools/corpus")
import spm as S
t, maxv, maxsrc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sp = S.load(t + "/spm/spm.model")
problems = []
for split in ("train", "dev", "test"):
    en = S.read_lines("%s/corpus/%s.en" % (t, split)); es = S.read_lines("%s/corpus/%s.es" % (t, split))
    ref = S.read_lines("%s/corpus/%s.ref" % (t, split))
    wen = S.read_lines("%s/w1/%s.en" % (t, split)); wes = S.read_lines("%s/w1/%s.es" % (t, split))
    wref = S.read_lines("%s/w1/%s.ref" % (t, split))
    pos = 0
    for k, (a, b, r) in enumerate(zip(wen, wes, wref)):
        n = int(r.split()[-2])
        first, last = r.split("  ")[0].split(" - ")
        if first != ref[pos] or last != ref[pos + n - 1]:
            problems.append("%s window %d: refs %s, expected %s - %s" % (split, k, r, ref[pos], ref[pos + n - 1]))
        if len({x.rsplit(":", 1)[0] for x in ref[pos:pos + n]}) != 1:
            problems.append("%s window %d crosses chapters" % (split, k))
        if n > maxv:
            problems.append("%s window %d has %d verses" % (split, k, n))
        if a != " ".join(en[pos:pos + n]) or b != " ".join(es[pos:pos + n]):
            problems.append("%s window %d: text is not the joined verses" % (split, k))
        if n > 1 and len(sp.encode(a, out_type=int)) > maxsrc:
            problems.append("%s window %d: over %d pieces" % (split, k, maxsrc))
        pos += n
    if pos != len(en):
        problems.append("%s: windows cover %d of %d verses" % (split, pos, len(en)))
    _, src, tgt = S.read_bin("%s/w1/tok/%s.bin" % (t, split))
    if [list(s) for s in src] != S.encode_lines(sp, wen) or [list(s) for s in tgt] != S.encode_lines(sp, wes):
        problems.append("%s: .bin differs from the encoded window text" % split)
    print("%s: %d windows" % (split, len(wen)))
print("\n".join(problems))
sys.exit(1 if problems else 0)
EOF
)
if (($? == 0)); then ok "cover, chapters, max verses, max pieces, joined text, .bin ($(tr '\n' ' ' <<<"$check"))"
else bad "window invariants" "$check"; fi

run --out "$T/w2" --max-verses 8 --max-src 120 --seed 1 >/dev/null 2>&1
run --out "$T/w3" --max-verses 8 --max-src 120 --seed 2 >/dev/null 2>&1
if cmp -s "$T/w1/train.ref" "$T/w2/train.ref" && ! cmp -s "$T/w1/train.ref" "$T/w3/train.ref"; then
    ok "same seed, same windows; another seed, other windows"
else
    bad "windows do not follow the seed"
fi

for args in "--max-verses 1" "--max-src 0" "--corpus $T/nothing"; do
    # shellcheck disable=SC2086
    if out=$(run --out "$T/bad" $args 2>&1); then
        bad "windows.py $args was accepted"
    elif [[ -n "$out" ]]; then
        ok "windows.py $args: exit non-zero, $(tail -1 <<<"$out" | cut -c1-80)"
    else
        bad "windows.py $args: no message"
    fi
done
echo "$pass passed, $fail failed"
((fail == 0))
