#!/usr/bin/env bash
# tests/test_step_speed.sh — smoke test of the training-step speed comparison
# (bench/model_step.c = granattn-model-step, tools/torch_step.py,
# tools/step-speed.sh).
#
#   tests/test_step_speed.sh [BUILD_DIR]        (default: build)
#
# Runs `tools/step-speed.sh --quick` (configs/tiny.ini, dropout 0, 1 warm-up +
# 2 timed steps, dense and learned cross-attention, threads 1 and 2) on a small
# synthetic token corpus, then checks that every run wrote valid JSON with
# positive step times, that the C and PyTorch FIRST-STEP losses agree within
# 1e-3 relative (float32 on both sides, same initial parameters, same batch,
# no dropout; measured agreement is ~1e-7), that the hard densities agree, and
# that the summary README has its table.  Also: the C program's --help and a
# bad argument.  Skipped (counted as neither) when /usr/bin/python3 cannot
# import torch.  Ends with "N passed, N failed" (exit 1 on any failure).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
PY=/usr/bin/python3
BIN=$BUILD/model/granattn-model-step
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1"; [[ -n "${2:-}" ]] && sed 's/^/       | /' <<<"$2" | head -40; }
finish() { echo "$pass passed, $fail failed"; ((fail == 0)); exit; }

if ! "$PY" -c 'import torch, numpy' >/dev/null 2>&1; then
    echo "skip - step speed: $PY cannot import torch/numpy (Debian: apt-get install python3-torch)"
    finish
fi
[[ -x $BIN ]] || { bad "missing $BIN (build first: ninja -C $BUILD)"; finish; }

T=$(mktemp -d "${TMPDIR:-/tmp}/granattn-step.XXXXXX")
trap 'rm -rf "$T"' EXIT

# command-line handling of the C program
if grep -q -- '--batches-out' <<<"$("$BIN" --help)"; then ok "granattn-model-step --help"; else bad "granattn-model-step --help"; fi
out=$("$BIN" --config configs/tiny.ini --steps 0 --json "$T/x.json" 2>&1); rc=$?
if ((rc == 2)) && grep -q -- '--steps' <<<"$out"; then ok "bad --steps rejected (rc 2)"; else bad "bad --steps: rc $rc" "$out"; fi
if grep -q -- '--batches' <<<"$("$PY" tools/torch_step.py --help)"; then ok "torch_step.py --help"; else bad "torch_step.py --help"; fi

# synthetic corpus (as tests/test_torch_check.sh)
"$PY" - "$T/tok" <<'PYEOF'
import os, random, struct, sys
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = random.Random(7)
with open(os.path.join(out, "train.bin"), "wb") as f:
    f.write(struct.pack("<4sIII", b"GATK", 1, 200, 8000))
    for _ in range(200):
        src = [rng.randrange(10, 7990) for _ in range(rng.randrange(3, 30))]
        tgt = [rng.randrange(10, 7990) for _ in range(rng.randrange(3, 30))]
        f.write(struct.pack("<H%dH" % len(src), len(src), *src))
        f.write(struct.pack("<H%dH" % len(tgt), len(tgt), *tgt))
PYEOF

if out=$(tools/step-speed.sh --quick --build "$BUILD" --data "$T/tok" --out "$T/out" 2>&1); then
    ok "tools/step-speed.sh --quick"
    sed 's/^/       | /' <<<"$out" | grep -E '^\s*\| \| (dense|learned)'
else
    bad "tools/step-speed.sh --quick" "$out"
    finish
fi

for v in dense learned; do
    for t in 1 2; do
        if out=$("$PY" - "$T/out/$v-t$t-r1-c.json" "$T/out/$v-t$t-r1-torch.json" <<'PYEOF' 2>&1
import json, math, sys
c = json.load(open(sys.argv[1]))
p = json.load(open(sys.argv[2]))
for j, name in ((c, "C"), (p, "torch")):
    n = j["warmup"] + j["steps"]
    assert len(j["step_seconds"]) == n and all(s > 0 for s in j["step_seconds"]), f"{name}: step_seconds"
    assert len(j["loss"]) == n and all(math.isfinite(x) for x in j["loss"]), f"{name}: loss"
    assert j["median_step_seconds"] > 0 and j["tgt_tokens_per_second"] > 0, f"{name}: summary"
assert c["tgt_tokens"] == p["tgt_tokens"], f"target tokens differ: {c['tgt_tokens']} vs {p['tgt_tokens']}"
assert c["threads"] == p["threads"], f"threads: C {c['threads']} vs torch {p['threads']}"
lc, lt = c["loss"][0], p["loss"][0]
rel = abs(lc - lt) / abs(lc)
assert rel <= 1e-3, f"first-step loss C {lc:.9g} vs torch {lt:.9g} (rel {rel:.2e} > 1e-3)"
oc, ot = c["objective"][0], p["objective"][0]
assert abs(oc - ot) <= 1e-3 * abs(oc), f"first-step objective C {oc:.9g} vs torch {ot:.9g}"
dc, dt = c["density"][0], p["density"][0]
assert abs(dc - dt) <= 1e-2, f"density C {dc} vs torch {dt}"
print(f"first-step loss C {lc:.7f} torch {lt:.7f} (rel {rel:.1e}), density {dc:.4f}/{dt:.4f}, "
      f"{1e3 * c['median_step_seconds']:.1f} / {1e3 * p['median_step_seconds']:.1f} ms/step")
PYEOF
        ); then
            ok "$v threads $t: $out"
        else
            bad "$v threads $t" "$out"
        fi
    done
done
if grep -q '^| learned | 2 |' "$T/out/README.md" && "$PY" -c "import json,sys; json.load(open(sys.argv[1])); json.load(open(sys.argv[2]))" \
    "$T/out/summary.json" "$T/out/machine.json" 2>/dev/null; then
    ok "README.md table, summary.json, machine.json"
else
    bad "README.md / summary.json / machine.json" "$(cat "$T/out/README.md" 2>&1)"
fi
finish
