#!/usr/bin/env bash
# tests/test_torch_check.sh — the C model against an independent PyTorch
# re-implementation (tools/torch_check: dump.c + check.py).
#
#   tests/test_torch_check.sh [BUILD_DIR]        (default: build)
#
# Builds tools/torch_check/dump.c against BUILD_DIR/libgranattn.a and
# BUILD_DIR/model/libgmodel.a (a plain, non-sanitizer build), then for each
# case dumps one training batch (forward + backward with dropout 0, no Gumbel,
# one thread; plus teacher-forced gm_decode_step log-probabilities) and runs
# check.py, which recomputes logits, loss, levels/keep decisions and every
# parameter gradient in float64 PyTorch (autograd, docs/SPEC.md §4 straight-through
# estimator) and compares: loss rel 1e-5, decode log-probs 1e-4 * max|lp|,
# each gradient tensor max|g_c - g_t| <= 1e-4 * max|g_t| + 1e-9 (see
# check.py for the justification).
#
# Cases (configs/tiny.ini with 2 encoder + 2 decoder layers, parameters
# perturbed by +-0.5 so that attention is peaked enough for keys to be
# dropped and the GPN picks a mix of levels):
#   dense               plain softmax cross-attention
#   seed                learned levels, seed mode, lambda 0.01
#   renorm-lambda       learned levels, renorm mode, lambda 0.05
#   random              random-level baseline (gpn = random)
#   checkpoint          a checkpoint from a few steps of `granattn train` on
#                       synthetic data (needs BUILD_DIR/model/granattn)
# Skipped (counted as neither) when /usr/bin/python3 cannot import torch.
# Ends with "N passed, N failed" (exit 1 on any failure).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
PY=/usr/bin/python3
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1"; [[ -n "${2:-}" ]] && sed 's/^/       | /' <<<"$2" | head -40; }
finish() { echo "$pass passed, $fail failed"; ((fail == 0)); exit; }

if ! "$PY" -c 'import torch, numpy' >/dev/null 2>&1; then
    echo "skip - torch check: $PY cannot import torch/numpy (Debian: apt-get install python3-torch)"
    finish
fi
for f in "$BUILD/libgranattn.a" "$BUILD/model/libgmodel.a"; do
    [[ -f "$f" ]] || { bad "missing $f (build first: ninja -C $BUILD)"; finish; }
done

T=$(mktemp -d "${TMPDIR:-/tmp}/granattn-torch.XXXXXX")
trap 'rm -rf "$T"' EXIT
CC=${CC:-cc}
if out=$("$CC" -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Iinclude -Isrc -Imodel \
    tools/torch_check/dump.c model/config_file.c model/optim.c model/util.c model/checkpoint.c \
    "$BUILD/model/libgmodel.a" "$BUILD/libgranattn.a" -lsleef -lhwloc -lpthread -lm \
    -o "$T/dump" 2>&1); then
    ok "build tools/torch_check/dump.c"
else
    bad "build tools/torch_check/dump.c" "$out"
    finish
fi

# check_case NAME DUMP-ARGS... : dump + check.py
check_case() {
    local name=$1; shift
    local out
    if ! out=$("$T/dump" "$@" --out "$T/$name.bin" 2>&1); then
        bad "$name: dump failed" "$out"
        return
    fi
    if out=$("$PY" tools/torch_check/check.py "$T/$name.bin" 2>&1); then
        ok "$name: $(grep -E 'gradients:' <<<"$out" | sed 's/^ok *//')"
        sed 's/^/       | /' <<<"$out" | grep -E 'margin|CE sum|log-probs|levels:|density sum'
    else
        bad "$name: check.py" "$out"
    fi
}

BASE=(--config configs/tiny.ini --set n_enc=2 --set n_dec=2 --perturb 0.5 --seed 3)
check_case dense "${BASE[@]}" --set dense=true
check_case seed "${BASE[@]}" --set norm=seed --set lambda=0.01
check_case renorm-lambda "${BASE[@]}" --set norm=renorm --set lambda=0.05
check_case random "${BASE[@]}" --set gpn=random --set random_probs=0.3,0.3,0.4

# a real checkpoint: a few training steps of the CLI on synthetic data
BIN="$BUILD/model/granattn"
if [[ -x "$BIN" ]]; then
    "$PY" tests/toy_data.py "$T/tok" train:100 dev:10
    if out=$("$BIN" train --config configs/tiny.ini --out "$T/run" --set data_dir="$T/tok" \
        --set threads=1 --set max_steps=8 --set eval_every=8 --set ckpt_every=8 \
        --set lr=3e-2 --set warmup=1 2>&1) && [[ -f "$T/run/last.ckpt" ]]; then
        check_case checkpoint --ckpt "$T/run/last.ckpt"
    else
        bad "checkpoint: granattn train failed" "$out"
    fi
else
    echo "skip - checkpoint case: $BIN not built"
fi
finish
