#!/usr/bin/env bash
# tests/test_ct2.sh — the CTranslate2 exporter (tools/ct2) round trip.
#
#   tests/test_ct2.sh [BUILD_DIR]        (default: build)
#
# Self-contained (no data/, no trained run): trains tiny models on the toy
# task of tests/test_cli.sh (target = source ids + 100, reversed) with
# BUILD_DIR/model/granattn, exports them with tools/ct2/export.py and checks
#   - bad input to the exporter (usage, missing file, a directory, a text
#     file, a truncated and a corrupted checkpoint, n_enc = 0, a non-empty
#     OUTDIR): a clear message and exit != 0 (no CTranslate2 needed);
#   - a dense 2+2-layer model: greedy translations of 200 toy sentences by
#     `granattn translate --ids --output-ids --beam 1` and by CTranslate2
#     (tools/ct2/ct2run.py, the same fixed output limit) agree on >= 98 % of
#     the sentences; beam 4 with granattn's GNMT length penalty (alpha 0.6,
#     re-ranked on the CTranslate2 side) on >= 95 %; CTranslate2 batch 32 /
#     2 threads gives its batch-1 outputs (>= 98 %);
#   - the exporter's parameter layout = the C model's tensor table, and the
#     teacher-forced log-probabilities of the C inference path (every
#     position, the whole vocabulary; tools/torch_check/dump.c) = those of
#     CTranslate2 within 1e-5 * max|lp| (tools/ct2/check_logits.py: the
#     tolerance is justified there), for the dense model and a gelu one;
#   - the exported config's layer-norm eps is 1e-5 (the logits check cannot
#     see eps 1e-6: its effect, ~2e-6 * max|lp|, is inside the tolerance);
#   - a sparse (learned GPN) checkpoint exports with the note that it
#     becomes its dense model.
# CTranslate2 4.8.5 is pip-installed into .venv-ct2 (tools/ct2/ct2env.py);
# when pip cannot reach the package index (or python3 -m venv is missing)
# the checks that need it print "skip - ..." and count as neither passed
# nor failed.  The log-probability check is skipped likewise without torch.
# Ends with "N passed, N failed" (exit 1 on any failure).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
BIN=$BUILD/model/granattn
PY=/usr/bin/python3
pass=0 fail=0 skip=0
ok() { pass=$((pass + 1)); echo "ok   - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1"; [[ -n "${2:-}" ]] && sed 's/^/       | /' <<<"$2" | head -30; }
skipped() { skip=$((skip + 1)); echo "skip - $1"; }
finish() { echo "test_ct2: $skip skipped"; echo "$pass passed, $fail failed"; ((fail == 0)); exit; }

if [[ ! -x "$BIN" ]]; then
    bad "$BIN not built (ninja -C $BUILD)"
    finish
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/granattn-ct2.XXXXXX")
trap 'rm -rf "$T"' EXIT
EXPORT=tools/ct2/export.py

# expect_fail NAME PATTERN CMD... : exit status 1 or 2 (not a crash), stderr matches PATTERN
expect_fail() {
    local name=$1 pat=$2; shift 2
    local out rc
    out=$("$@" 2>&1 >/dev/null); rc=$?
    if ((rc == 0)); then bad "$name (exit 0)" "$out"
    elif ((rc > 2)); then bad "$name (exit $rc: a crash or traceback?)" "$out"
    elif grep -q "Traceback" <<<"$out"; then bad "$name (a Python traceback, not a message)" "$out"
    elif ! grep -Eq -- "$pat" <<<"$out"; then bad "$name (message does not match /$pat/)" "$out"
    else ok "$name: $(grep -v '^ *$' <<<"$out" | tail -1 | cut -c1-120)"
    fi
}

# agree NAME MIN_PERCENT FILE_A FILE_B : identical lines >= MIN_PERCENT %
agree() {
    local name=$1 min=$2 a=$3 b=$4 n same
    n=$(wc -l <"$a")
    if [[ $n -eq 0 || $n -ne $(wc -l <"$b") ]]; then
        bad "$name: $n vs $(wc -l <"$b") output lines"
        return
    fi
    same=$(paste -d '\t' "$a" "$b" | awk -F'\t' '$1 == $2' | wc -l)
    if ((same * 100 >= min * n)); then
        ok "$name: $same/$n sentences identical (>= $min %)"
    else
        bad "$name: only $same/$n sentences identical (< $min %)" \
            "$(paste -d '\t' "$a" "$b" | awk -F'\t' '$1 != $2' | head -5 | sed 's/\t/   <->   /')"
    fi
}

# ---------------------------------------------------------------- toy data + models
"$PY" tests/toy_data.py "$T/tok" train:600 dev:40 --extra "$T/toy.ids:200" || { bad "cannot make the toy data"; finish; }
CFG=configs/tiny.ini
# train NAME STEPS SETTINGS... : a tiny model in $T/NAME (best.ckpt)
train() {
    local name=$1 steps=$2; shift 2
    local out
    if out=$("$BIN" train --config "$CFG" --out "$T/$name" --set data_dir="$T/tok" --set threads=1 \
        --set max_steps="$steps" --set eval_every="$steps" --set ckpt_every="$steps" "$@" --quiet 2>&1) \
        && [[ -f "$T/$name/best.ckpt" ]]; then
        return 0
    fi
    bad "granattn train ($name)" "$out"
    return 1
}
DENSE=(--set dense=true --set lambda=0)
train dense 400 "${DENSE[@]}" --set n_enc=2 --set n_dec=2 --set lr=1e-2 --set warmup=20 || finish
train gelu 30 "${DENSE[@]}" --set act=gelu --set lr=1e-2 --set warmup=5 || finish
train sparse 20 || finish
train noenc 2 "${DENSE[@]}" --set n_enc=0 || finish
ok "trained the tiny models (dense 2+2 layers 400 steps, gelu 30, learned GPN 20, n_enc = 0 2)"

# ---------------------------------------------------------------- bad input (no CTranslate2 needed)
CK=$T/dense/best.ckpt
expect_fail "export.py without arguments" "usage: tools/ct2/export.py" "$PY" $EXPORT
expect_fail "export.py: missing checkpoint" "cannot read .*nope.ckpt: No such file" "$PY" $EXPORT "$T/nope.ckpt" "$T/o1"
expect_fail "export.py: a directory" "is a directory, not a checkpoint" "$PY" $EXPORT "$T/dense" "$T/o1"
printf '[model]\nd = 32\n' >"$T/text.ckpt"
expect_fail "export.py: a text file" "not a granattn checkpoint" "$PY" $EXPORT "$T/text.ckpt" "$T/o1"
head -c 5000 "$CK" >"$T/trunc.ckpt"
expect_fail "export.py: a truncated checkpoint" "truncated or trailing data" "$PY" $EXPORT "$T/trunc.ckpt" "$T/o1"
cp "$CK" "$T/corrupt.ckpt"
printf '\x7f' | dd of="$T/corrupt.ckpt" bs=1 seek=3000 conv=notrunc status=none
expect_fail "export.py: a corrupted checkpoint" "payload checksum mismatch" "$PY" $EXPORT "$T/corrupt.ckpt" "$T/o1"
expect_fail "export.py: n_enc = 0 refused" "n_enc = 0: CTranslate2's Transformer encoder needs" \
    "$PY" $EXPORT "$T/noenc/best.ckpt" "$T/o1"
mkdir -p "$T/full" && touch "$T/full/x"
expect_fail "export.py: non-empty OUTDIR" "exists and is not empty \(--force" "$PY" $EXPORT "$CK" "$T/full"
[[ ! -e "$T/o1" ]] && ok "export.py: nothing written on error" || bad "export.py wrote $T/o1 on error"

# ---------------------------------------------------------------- CTranslate2
out=$("$PY" tools/ct2/ct2env.py 2>&1); rc=$?
if ((rc == 3 || rc == 4)); then
    skipped "CTranslate2 round trip: $(tail -1 <<<"$out" | sed 's/^tools\/ct2: error: //')"
    finish
elif ((rc != 0)); then
    bad "tools/ct2/ct2env.py (exit $rc)" "$out"
    finish
fi
ok "CTranslate2 venv: $(tail -1 <<<"$out") ($("$(tail -1 <<<"$out")" -c 'import ctranslate2; print("ctranslate2", ctranslate2.__version__)'))"

if out=$("$PY" $EXPORT "$CK" "$T/ct2" 2>&1) && [[ -f "$T/ct2/model.bin" ]]; then
    ok "export.py: dense 2+2 model ($(tail -1 <<<"$out" | cut -c1-100))"
else
    bad "export.py: dense model" "$out"
    finish
fi
eps=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["layer_norm_epsilon"])' "$T/ct2/config.json")
[[ "$eps" == "1e-05" ]] && ok "exported layer_norm_epsilon = $eps (model/layers.c)" \
    || bad "exported layer_norm_epsilon = $eps, expected 1e-05"

M=40 # fixed output limit for both engines
run_g() { "$BIN" translate --model "$CK" --ids --input "$T/toy.ids" --output-ids --threads 1 \
    --max-len-a 0 --max-len-b $M "$@" 2>"$T/g.err"; }
run_c() { "$PY" tools/ct2/ct2run.py --model "$T/ct2" --input "$T/toy.ids" --max-len $M "$@" 2>"$T/c.err"; }
if run_g --beam 1 --output "$T/g1.out" && run_c --beam 1 --output "$T/c1.out"; then
    agree "greedy: granattn vs CTranslate2" 98 "$T/g1.out" "$T/c1.out"
else
    bad "greedy translation failed" "$(cat "$T/g.err" "$T/c.err")"
fi
if run_g --beam 4 --alpha 0.6 --output "$T/g4.out" && run_c --beam 4 --alpha 0.6 --output "$T/c4.out"; then
    agree "beam 4, GNMT alpha 0.6: granattn vs CTranslate2 (re-ranked)" 95 "$T/g4.out" "$T/c4.out"
else
    bad "beam-4 translation failed" "$(cat "$T/g.err" "$T/c.err")"
fi
if run_c --beam 1 --batch 32 --threads 2 --output "$T/c1b.out"; then
    agree "CTranslate2 greedy: batch 32, 2 threads vs batch 1" 98 "$T/c1.out" "$T/c1b.out"
else
    bad "CTranslate2 batch 32 failed" "$(cat "$T/c.err")"
fi

# ---------------------------------------------------------------- layout + log-probabilities
if ! "$PY" -c 'import torch' >/dev/null 2>&1; then
    skipped "log-probabilities: $PY cannot import torch (tools/torch_check/check.py reads the dump)"
elif [[ ! -f "$BUILD/libgranattn.a" || ! -f "$BUILD/model/libgmodel.a" ]]; then
    bad "log-probabilities: $BUILD/libgranattn.a or $BUILD/model/libgmodel.a missing"
elif ! out=$("${CC:-cc}" -std=c11 -D_GNU_SOURCE -O2 -Iinclude -Isrc -Imodel \
        tools/torch_check/dump.c model/config_file.c model/optim.c model/util.c model/checkpoint.c \
        "$BUILD/model/libgmodel.a" "$BUILD/libgranattn.a" -lsleef -lhwloc -lpthread -lm \
        -o "$T/dump" 2>&1); then
    bad "build tools/torch_check/dump.c" "$out"
else
    for name in dense gelu; do
        if [[ $name == gelu ]] && ! out=$("$PY" $EXPORT "$T/gelu/best.ckpt" "$T/ct2-gelu" 2>&1); then
            bad "export.py: gelu model" "$out"
            continue
        fi
        model=$T/ct2$([[ $name == gelu ]] && echo -gelu)
        if ! out=$("$T/dump" --ckpt "$T/$name/best.ckpt" --out "$T/$name.dump" 2>&1); then
            bad "$name: dump.c failed" "$out"
        elif out=$("$PY" tools/ct2/check_logits.py "$T/$name.dump" "$model" 2>&1); then
            ok "$name: $(grep -c '^ok' <<<"$out") checks: $(grep -E '^ok +logits' <<<"$out" | sed 's/^ok *//' | cut -c1-110)"
            sed 's/^/       | /' <<<"$out"
        else
            bad "$name: check_logits.py" "$out"
        fi
    done
fi

# ---------------------------------------------------------------- sparse -> dense
if out=$("$PY" $EXPORT "$T/sparse/best.ckpt" "$T/ct2-sparse" 2>&1) \
   && grep -q "exported as its DENSE model" <<<"$out" \
   && grep -q '"attention": "dense (from a sparse gpn = learned model' "$T/ct2-sparse/granattn_export.json"; then
    ok "export.py: learned-GPN model exports as its dense model, and says so"
else
    bad "export.py: sparse model" "$out"
fi
finish
