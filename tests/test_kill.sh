#!/usr/bin/env bash
# tests/test_kill.sh — `granattn train` killed at any moment (issue 9 part 8).
#
#   tests/test_kill.sh [PATH/TO/granattn]     (default: build/model/granattn)
#   KILL_ROUNDS=N  how many random SIGKILLs (default 12)
#
# 1. SIGKILL at random moments, plus one SIGKILL in the middle of a
#    checkpoint write (test hook GRANATTN_TEST_KILL_IN_SAVE=STEP): resuming
#    after each, the run ends with exactly the log.tsv (every training and
#    dev row) and the weights of an uninterrupted run, and no
#    last.ckpt.tmp.<pid> is left behind.
# 2. A temporary left by a writer that no longer exists is removed by the
#    next run in that directory.
# 3. SIGTERM during the dev evaluation (test hook
#    GRANATTN_TEST_SIGNAL_IN_EVAL=STEP): exit 143, and --resume runs that
#    evaluation first, so log row, best.ckpt and patience count are those of
#    an uninterrupted run.
# 4. Resuming a finished run with the same max_steps adds nothing (its final
#    dev evaluation is not repeated).
# The kill times are random; what is checked never depends on them.
# Ends with the line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${1:-${GRANATTN_BIN:-build/model/granattn}}
PY=/usr/bin/python3
ROUNDS=${KILL_ROUNDS:-12}
if [[ ! -x "$BIN" ]]; then
    echo "test_kill: $BIN not found or not executable" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
T=$(mktemp -d "${TMPDIR:-/tmp}/granattn-kill.XXXXXX")
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1"; [[ -n "${2:-}" ]] && sed 's/^/       | /' <<<"$2" | head -20; }

"$PY" tests/toy_data.py "$T/tok" train:600 dev:40
CFG="$ROOT/configs/tiny.ini"
STEPS=60
RUN=(--set data_dir="$T/tok" --set threads=1 --set max_steps=$STEPS --set ckpt_every=4
     --set eval_every=10 --set log_every=1000 --set patience=0)

# params FILE: sha256 of the PARAMS, ADAM_M and ADAM_V sections and the
# training state without its wall-clock time
params() {
    "$PY" - "$1" <<'EOF'
import hashlib, struct, sys
b = open(sys.argv[1], "rb").read()
ns = struct.unpack_from("<I", b, 28)[0]
off, h = 64, hashlib.sha256()
for _ in range(ns):
    tag = b[off:off + 8].rstrip(b"\0"); n = struct.unpack_from("<Q", b, off + 8)[0]
    d = b[off + 16:off + 16 + n]
    if tag == b"STATE":
        st = list(struct.unpack("<qqq4Qqdqqdqqdq5q", d))
        st[11] = 0.0   # train_seconds
        st[13] = 0     # threads
        d = struct.pack("<qqq4Qqdqqdqqdq5q", *st)
    if tag != b"CONFIG":
        h.update(tag + d)
    off += 16 + n + (-n % 8)
print(h.hexdigest())
EOF
}

# ---- the uninterrupted reference
"$BIN" train --config "$CFG" --out "$T/ref" "${RUN[@]}" --quiet >"$T/ref.out" 2>&1 \
    || { bad "reference run failed" "$(cat "$T/ref.out")"; echo "$pass passed, $((fail))" failed; exit 1; }

# ---- 1. random SIGKILLs, one of them in the middle of a checkpoint write
D="$T/killed"
start() { # starts a run in D in the background (resume if there is a checkpoint)
    if [[ -f "$D/last.ckpt" ]]; then
        "$BIN" train --out "$D" --resume --quiet "$@" >>"$T/killed.out" 2>&1 &
    else
        "$BIN" train --config "$CFG" --out "$D" "${RUN[@]}" --quiet "$@" >>"$T/killed.out" 2>&1 &
    fi
    pid=$!
}
GRANATTN_TEST_KILL_IN_SAVE=12 start
wait $pid; rc=$?
tmps=$(ls "$D" | grep -c '\.tmp\.' || true)
if ((rc == 137)) && ((tmps == 1)); then
    ok "SIGKILL in the middle of writing the step-12 checkpoint: exit 137, $(ls "$D" | grep '\.tmp\.') left"
else
    bad "SIGKILL mid-write (exit $rc, $tmps temporaries)" "$(ls -la "$D"; tail -5 "$T/killed.out")"
fi
kills=1 finished=0
for round in $(seq "$ROUNDS"); do
    start
    # a random moment: anywhere from process start-up to well into training
    sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.3f", 0.02 + (r % 1000) / 1000.0 * 0.6 }')"
    if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
    wait "$pid" 2>/dev/null; rc=$?
    if ((rc == 0)); then finished=1; break; fi
done
if ((!finished)); then
    start
    wait "$pid"; rc=$?
    if ((rc != 0)); then bad "the last resume failed (exit $rc)" "$(tail -20 "$T/killed.out")"; fi
fi
if grep -q "Sanitizer\|error:" "$T/killed.out"; then
    bad "killed runs: an error or sanitizer report on resume" "$(grep -B2 -A5 "Sanitizer\|error:" "$T/killed.out" | head -30)"
fi
if d=$(diff "$T/ref/log.tsv" "$D/log.tsv"); then
    ok "after $kills SIGKILLs (random moments + one mid-write): log.tsv identical to the uninterrupted run ($(grep -c . "$D/log.tsv") rows)"
else
    bad "after $kills SIGKILLs: log.tsv differs from the uninterrupted run" "$d"
fi
if [[ -f "$D/last.ckpt" && $(params "$D/last.ckpt") == $(params "$T/ref/last.ckpt") ]]; then
    ok "after the SIGKILLs: last.ckpt weights, Adam moments and state equal the uninterrupted run's"
else
    bad "after the SIGKILLs: last.ckpt differs from the uninterrupted run's"
fi
if [[ -f "$D/best.ckpt" && $(params "$D/best.ckpt") == $(params "$T/ref/best.ckpt") ]]; then
    ok "after the SIGKILLs: best.ckpt equals the uninterrupted run's"
else
    bad "after the SIGKILLs: best.ckpt differs from the uninterrupted run's"
fi
left=$(ls "$D" | grep '\.tmp' || true)
[[ -z "$left" ]] && ok "no checkpoint temporaries left after the SIGKILLs" \
    || bad "temporaries left after the SIGKILLs: $left"

# ---- 2. a stale temporary from a process that no longer exists
"$BIN" train --config "$CFG" --out "$T/stale" "${RUN[@]}" --set max_steps=4 --quiet >/dev/null 2>&1
sleep 0 & deadpid=$!; wait $deadpid   # a pid that has just exited
printf 'partial' >"$T/stale/last.ckpt.tmp.$deadpid"
printf 'partial' >"$T/stale/best.ckpt.tmp.$deadpid"
out=$("$BIN" train --out "$T/stale" --resume --set max_steps=5 --quiet 2>&1); rc=$?
if ((rc == 0)) && [[ ! -e "$T/stale/last.ckpt.tmp.$deadpid" && ! -e "$T/stale/best.ckpt.tmp.$deadpid" ]]; then
    ok "the next run removes last/best.ckpt.tmp.<pid> of a writer that no longer exists"
else
    bad "stale temporaries (exit $rc): $(ls "$T/stale" | tr '\n' ' ')" "$out"
fi

# ---- 3. SIGTERM during the dev evaluation at step 20
E="$T/evalsig"
out=$(GRANATTN_TEST_SIGNAL_IN_EVAL=20 "$BIN" train --config "$CFG" --out "$E" "${RUN[@]}" --quiet 2>&1); rc=$?
if ((rc == 143)) && grep -q "interrupted by SIGTERM at step 20" <<<"$out"; then
    ok "SIGTERM during the dev evaluation at step 20: exit 143, last.ckpt at step 20"
else
    bad "SIGTERM during the dev evaluation (exit $rc)" "$out"
fi
out=$("$BIN" train --out "$E" --resume --quiet 2>&1); rc=$?
if ((rc == 0)) && grep -q "interrupted dev evaluation runs first" <<<"$out" && grep -q "^dev  *20 " <<<"$out"; then
    ok "--resume runs the interrupted step-20 evaluation first"
else
    bad "--resume after the interrupted evaluation (exit $rc)" "$out"
fi
if d=$(diff "$T/ref/log.tsv" "$E/log.tsv"); then
    ok "interrupted evaluation: log.tsv (incl. the step-20 dev row) identical to the uninterrupted run"
else
    bad "interrupted evaluation: log.tsv differs" "$d"
fi
if [[ $(params "$E/best.ckpt") == $(params "$T/ref/best.ckpt") && $(params "$E/last.ckpt") == $(params "$T/ref/last.ckpt") ]]; then
    ok "interrupted evaluation: best.ckpt and last.ckpt (best step, patience count) equal the uninterrupted run's"
else
    bad "interrupted evaluation: best.ckpt or last.ckpt differ from the uninterrupted run's"
fi

# ---- 4. resuming a finished run (same max_steps) changes nothing: its final
# evaluation is not run (and counted for patience) a second time
cp "$T/ref/log.tsv" "$T/ref.log.before"
out=$("$BIN" train --out "$T/ref" --resume --quiet 2>&1); rc=$?
if ((rc == 0)) && d=$(diff "$T/ref.log.before" "$T/ref/log.tsv"); then
    ok "resuming a finished run: no second dev evaluation, log.tsv unchanged"
else
    bad "resuming a finished run (exit $rc) changed log.tsv" "${d:-$out}"
fi

echo "$pass passed, $fail failed"
((fail == 0))
