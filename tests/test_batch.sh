#!/usr/bin/env bash
# tests/test_batch.sh — batched decoding of `granattn translate` / `eval`.
#
#   tests/test_batch.sh [PATH/TO/granattn]       (default: build/model/granattn)
#
# Self-contained (no data/): trains tiny models on the toy task of
# tests/test_cli.sh (a learned sparse one with 2 decoder layers, and a dense
# one), then checks that the translations of 60 sources of varied length
# (0 to the model's longest, in shuffled order) are the same ids whatever
# --batch (1, 7, 64) and --threads (1, 2), greedy and beam 4, with prepared
# keys and with --no-prepared; that a line that cannot be translated fails
# alone (its batch-mates are unaffected); and that bad --batch values are
# refused with a clear message and exit status 2.
# Ends with the line "N passed, N failed" (exit 1 on any failure).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${1:-${GRANATTN_BIN:-build/model/granattn}}
PY=/usr/bin/python3
if [[ ! -x "$BIN" ]]; then
    echo "test_batch: $BIN not found or not executable (build first, or pass its path)" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
T=$(mktemp -d "${TMPDIR:-/tmp}/granattn-batch.XXXXXX")
trap 'rm -rf "$T"' EXIT
pass=0 fail=0

ok() { pass=$((pass + 1)); echo "ok   - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1"; [[ -n "${2:-}" ]] && sed 's/^/       | /' <<<"$2" | head -20; }

# expect_usage NAME PATTERN CMD... : exit status 2, stderr matches PATTERN
expect_usage() {
    local name=$1 pat=$2; shift 2
    local out rc
    out=$("$@" 2>&1 >/dev/null); rc=$?
    if ((rc != 2)); then bad "$name (exit $rc, expected 2)" "$out"
    elif grep -q "Sanitizer" <<<"$out"; then bad "$name (sanitizer report)" "$out"
    elif ! grep -Eq -- "$pat" <<<"$out"; then bad "$name (message does not match /$pat/)" "$out"
    else ok "$name: $(head -1 <<<"$out" | cut -c1-100)"
    fi
}

# ---------------------------------------------------------------- models
# Toy task of tests/test_cli.sh: target = source ids + 100, reversed.
"$PY" tests/toy_data.py "$T/tok" train:600 dev:40 test:30 || { echo "test_batch: cannot make synthetic data" >&2; echo "0 passed, 1 failed"; exit 1; }
CFG="$ROOT/configs/tiny.ini"
COMMON=(--set data_dir="$T/tok" --set threads=1 --set max_steps=200 --set eval_every=200
        --set ckpt_every=200 --set n_dec=2 --quiet)
for mode in sparse dense; do
    out=$("$BIN" train --config "$CFG" --out "$T/$mode" "${COMMON[@]}" \
          $([[ $mode == dense ]] && echo --set dense=true --set lambda=0) 2>&1) \
        || { bad "training the $mode model" "$out"; echo "$pass passed, $fail failed"; exit 1; }
done

# 60 sources: lengths 0..63 (63 = the longest this max_len 64 model takes),
# shuffled, so that sorting by length reorders them
"$PY" - "$T/in.ids" <<'EOF'
import random, sys
rng = random.Random(11)
lens = [0, 1, 2, 63, 62] + [rng.randrange(1, 40) for _ in range(55)]
rng.shuffle(lens)
with open(sys.argv[1], "w") as f:
    for n in lens:
        f.write(" ".join(str(rng.randrange(10, 60)) for _ in range(n)) + "\n")
EOF

# ---------------------------------------------------------------- same ids for any batch
for model in sparse dense; do
    for prep in prepared no-prepared; do
        for beam in 1 4; do
            name="$model, $prep, beam $beam"
            ref=""
            for bt in "1 1" "7 1" "64 1" "7 2"; do
                set -- $bt
                o="$T/out-$model-$prep-$beam-$1-$2"
                err=$("$BIN" translate --model "$T/$model/last.ckpt" --ids --input "$T/in.ids" \
                      --output-ids --output "$o" --beam $beam --batch $1 --threads $2 \
                      $([[ $prep == no-prepared ]] && echo --no-prepared) 2>&1); rc=$?
                if ((rc != 0)) || [[ $(wc -l <"$o") -ne 60 ]]; then
                    bad "$name, --batch $1 --threads $2 (exit $rc, $(wc -l <"$o" 2>/dev/null) lines)" "$err"
                    continue
                fi
                if [[ -z "$ref" ]]; then
                    ref=$o
                elif cmp -s "$ref" "$o"; then
                    ok "$name: --batch $1 --threads $2 == --batch 1 ($(wc -w <"$o") output ids)"
                else
                    bad "$name: --batch $1 --threads $2 differs from --batch 1" \
                        "$(diff "$ref" "$o" | head -6)"
                fi
            done
        done
    done
    # prepared keys and --no-prepared agree too (beam 4, batch 64)
    if cmp -s "$T/out-$model-prepared-4-64-1" "$T/out-$model-no-prepared-4-64-1"; then
        ok "$model: prepared keys == --no-prepared in batches of 64"
    else
        bad "$model: prepared keys != --no-prepared in batches of 64"
    fi
done
w=$(wc -w <"$T/out-sparse-prepared-4-1-1")
((w > 100)) && ok "the sparse model translates (beam 4: $w output ids)" \
    || bad "the sparse model gives almost no output ($w ids): the comparisons above prove little"

# ---------------------------------------------------------------- a bad line fails alone
# line 4 too long, line 9 has an id outside the vocabulary: exit 1, those
# lines empty, every other line as in the clean run
"$PY" - "$T/in.ids" "$T/bad.ids" <<'EOF'
import sys
lines = open(sys.argv[1]).read().split("\n")[:60]
lines[3] = " ".join(["12"] * 70)
lines[8] = "10 11 9000 12"
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
EOF
err=$("$BIN" translate --model "$T/sparse/last.ckpt" --ids --input "$T/bad.ids" --output-ids \
      --output "$T/bad.out" --beam 4 --batch 7 2>&1); rc=$?
# (an id outside the vocabulary is refused when the input is read, before
# any decoding; a line too long for the model fails alone, at decoding)
if ((rc == 1)) && grep -q "token id 9000 is outside the vocabulary" <<<"$err"; then
    ok "an out-of-vocabulary id is refused before decoding: $(head -1 <<<"$err" | cut -c1-90)"
else
    bad "out-of-vocabulary id (exit $rc)" "$err"
fi
sed -i '9s/.*/10 11 12/' "$T/bad.ids"
err=$("$BIN" translate --model "$T/sparse/last.ckpt" --ids --input "$T/bad.ids" --output-ids \
      --output "$T/bad.out" --beam 4 --batch 7 2>&1); rc=$?
"$BIN" translate --model "$T/sparse/last.ckpt" --ids --input "$T/bad.ids" --output-ids \
    --output "$T/bad1.out" --beam 4 --batch 1 2>/dev/null
if ((rc == 1)) && grep -q "line 4: source has 70 tokens" <<<"$err" \
   && [[ -z "$(sed -n 4p "$T/bad.out")" ]] \
   && diff <(sed 4d "$T/bad.out" | sed 8d) <(sed 4d "$T/out-sparse-prepared-4-1-1" | sed 8d) >/dev/null \
   && cmp -s "$T/bad.out" "$T/bad1.out"; then
    ok "an over-long line fails alone (exit 1, empty line 4, the others as before, batch 7 == 1)"
else
    bad "over-long line in a batch (exit $rc)" "$err"
fi

# ---------------------------------------------------------------- eval --batch
mkdir -p "$T/corpus"
"$PY" - "$T/tok/test.bin" "$T/corpus/test.es" <<'EOF'
import struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack_from("<I", b, 8)[0]
off, out = 16, []
for _ in range(n):
    k = struct.unpack_from("<H", b, off)[0]; off += 2 + 2 * k
    k = struct.unpack_from("<H", b, off)[0]
    out.append(" ".join(str(x) for x in struct.unpack_from("<%dH" % k, b, off + 2))); off += 2 + 2 * k
open(sys.argv[2], "w").write("".join(s + "\n" for s in out))
EOF
if [[ -f data/spm/spm.model && "${GRANATTN_TEST_EVAL:-1}" == 1 ]]; then
    for bt in 1 5; do
        "$BIN" eval --model "$T/sparse/last.ckpt" --split test --corpus-dir "$T/corpus" \
            --json "$T/eval$bt.json" --hyp "$T/hyp$bt.txt" --beam 4 --batch $bt >"$T/eval$bt.log" 2>&1
    done
    if [[ -s "$T/hyp1.txt" ]] && cmp -s "$T/hyp1.txt" "$T/hyp5.txt" && grep -q "batch 5" "$T/eval5.log"; then
        ok "eval --batch 5 == --batch 1 ($(wc -l <"$T/hyp1.txt") hypotheses)"
    else
        bad "eval --batch 5 vs --batch 1" "$(tail -3 "$T/eval1.log" "$T/eval5.log")"
    fi
else
    echo "skip - eval --batch (no data/spm/spm.model, or GRANATTN_TEST_EVAL=0)"
fi

# ---------------------------------------------------------------- bad --batch values
M="$T/sparse/last.ckpt"
for v in 0 -3 abc 4097 "" 2x; do
    expect_usage "translate --batch '$v'" "--batch '$v': expected an integer in \[1, 4096\]" \
        "$BIN" translate --model "$M" --ids --input "$T/in.ids" --batch "$v"
done
expect_usage "eval --batch 0" "--batch '0': expected an integer in \[1, 4096\]" \
    "$BIN" eval --model "$M" --batch 0
h=$("$BIN" translate --help 2>&1)
grep -q -- "--batch N" <<<"$h" && ok "translate --help documents --batch" \
    || bad "translate --help lacks --batch" "$h"

echo "$pass passed, $fail failed"
((fail == 0))
