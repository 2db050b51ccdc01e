#!/usr/bin/env bash
# tests/test_frontier.sh [BIN] — tools/frontier.py --quick (the issue-12
# frontier pipeline on configs/tiny.ini and toy data, tests/toy_data.py) and
# the top-k baseline (gpn = topk) through the CLI.  Checks:
#  1. gpn = topk: bad option values refused with a message; a trained top-k
#     model's checkpoint keeps the option (config.ini, eval JSON through the
#     checkpoint), eval reports its density (round(frac * N) / N on average);
#     --resume of a top-k run continues it;
#  2. frontier.py bad options exit 2 with a message; --plan lists the runs;
#     concurrent resolves of one matched point agree (one match.json);
#  3. frontier.py --quick killed (SIGTERM) while runs are in progress exits
#     130, and the same command continues ("resuming: N of M runs already
#     done") and finishes;
#     --budget-hours stops starting runs (exit 3, report of what is done);
#  4. points.tsv has exactly the columns method mode set param seed density
#     bleu chrf, one row per (set, point, seed), every method; tests.tsv
#     starts with set density_band baseline delta_bleu p_value verdict and
#     has a verdict per row; the plots and the GPN analysis exist.
# sacreBLEU comes from PyPI (tools/eval_bleu.py installs it into .venv-eval):
# without network the pipeline checks are reported as skipped.
# Ends with the line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/model/granattn}
BIN=$(realpath "$BIN" 2>/dev/null || echo "$BIN")
export GRANATTN_BIN=$BIN
PY=/usr/bin/python3
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1"; [[ -n "${2:-}" ]] && sed 's/^/       | /' <<<"$2" | sed -n 1,20p; }
skipped() { echo "skip - $1"; }
if [[ ! -x $BIN ]]; then
    echo "FAIL - $BIN not built"
    echo "0 passed, 1 failed"
    exit 1
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/granattn-frontier.XXXXXX")
trap 'kill $fpid 2>/dev/null; rm -rf "$T"' EXIT
fpid=

# expect_fail NAME PATTERN CMD... : CMD must exit 2 (usage) or 1 with PATTERN in its output
expect_fail() {
    local name=$1 pat=$2; shift 2
    local out rc
    out=$("$@" 2>&1); rc=$?
    if ((rc != 0)) && grep -qi -- "$pat" <<<"$out"; then
        ok "$name: exit $rc, '$(grep -i -m1 -- "$pat" <<<"$out" | cut -c1-90)'"
    else
        bad "$name (exit $rc, expected a message matching '$pat')" "$out"
    fi
}

# ------------------------------------------------------------ 1. gpn = topk
"$PY" tests/toy_data.py "$T/tok" train:300 dev:20 test:20 >/dev/null
train() { "$BIN" train --config configs/tiny.ini --set data_dir="$T/tok" --quiet "$@"; }
expect_fail "topk without k or frac" "exactly one of topk_k" train --out "$T/x1" --set gpn=topk
expect_fail "topk with both k and frac" "exactly one of topk_k" train --out "$T/x2" --set gpn=topk \
    --set topk_k=2 --set topk_frac=0.5
expect_fail "topk_frac out of range" "topk_frac" train --out "$T/x3" --set gpn=topk --set topk_frac=1.5
expect_fail "topk_k negative" "topk_k" train --out "$T/x4" --set gpn=topk --set topk_k=-1
expect_fail "gpn unknown" "learned, fixed, random or topk" train --out "$T/x5" --set gpn=top

out=$(train --out "$T/topk" --set gpn=topk --set topk_frac=0.25 --set max_steps=20 2>&1); rc=$?
if ((rc == 0)) && grep -q "cross-attention topk (k = 0.25 of each row's keys" <<<"$out"; then
    ok "train gpn = topk (topk_frac 0.25)"
else
    bad "train gpn = topk (exit $rc)" "$out"
fi
if grep -qx "gpn = topk" "$T/topk/config.ini" && grep -qx "topk_frac = 0.25" "$T/topk/config.ini"; then
    ok "config.ini keeps gpn = topk, topk_frac = 0.25"
else
    bad "config.ini of the top-k run" "$(grep -E 'gpn|topk' "$T/topk/config.ini")"
fi
out=$("$BIN" train --out "$T/topk" --resume --set max_steps=30 --quiet 2>&1); rc=$?
if ((rc == 0)) && grep -q "done (max_steps) at step 30" <<<"$out"; then
    ok "--resume of a top-k run continues to step 30"
else
    bad "--resume of a top-k run (exit $rc)" "$out"
fi
# the checkpoint's config -> eval (ids scored as tokens: --spm none)
"$PY" - "$T/tok/test.bin" "$T/corpus/test.es" <<'EOF'
import os, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack_from("<I", b, 8)[0]
off, out = 16, []
for _ in range(n):
    k = struct.unpack_from("<H", b, off)[0]; off += 2 + 2 * k
    k = struct.unpack_from("<H", b, off)[0]
    out.append(" ".join(str(x) for x in struct.unpack_from("<%dH" % k, b, off + 2) if x not in (0, 2, 3))); off += 2 + 2 * k
os.makedirs(os.path.dirname(sys.argv[2]), exist_ok=True)
open(sys.argv[2], "w").write("".join(s + "\n" for s in out))
EOF
have_bleu=0
if "$PY" tools/eval_bleu.py --hyp "$T/corpus/test.es" --ref "$T/corpus/test.es" --quiet >"$T/sb.log" 2>&1; then
    have_bleu=1
else
    skipped "sacreBLEU unavailable (no network for pip?): eval and pipeline checks: $(tail -1 "$T/sb.log")"
fi
if ((have_bleu)); then
    out=$("$BIN" eval --model "$T/topk/last.ckpt" --split test --corpus-dir "$T/corpus" --spm none \
        --json "$T/topk/eval.json" --beam 2 2>&1); rc=$?
    chk=$("$PY" - "$T/topk/eval.json" "$T/tok/test.bin" <<'EOF' 2>&1
import json, struct, sys
d = json.load(open(sys.argv[1]))
assert d["gpn"] == "topk" and abs(d["topk_frac"] - 0.25) < 1e-6, (d["gpn"], d["topk_frac"])
assert d["levels"] == [], d["levels"]
# decode density: mean over rows of round(0.25 N) / N (N = source + eos)
b = open(sys.argv[2], "rb").read()
n = struct.unpack_from("<I", b, 8)[0]
off, Ns = 16, []
for _ in range(n):
    k = struct.unpack_from("<H", b, off)[0]; Ns.append(k + 1); off += 2 + 2 * k
    k = struct.unpack_from("<H", b, off)[0]; off += 2 + 2 * k
per = [max(1, min(N, int(0.25 * N + 0.5))) / N for N in Ns]
lo, hi = min(per), max(per)
assert lo - 1e-9 <= d["density"] <= hi + 1e-9, (d["density"], lo, hi)
print("density %.4f within the per-sentence range [%.4f, %.4f], bleu %.2f" % (d["density"], lo, hi, d["bleu"]))
EOF
    ); crc=$?
    if ((rc == 0 && crc == 0)); then
        ok "eval of the top-k checkpoint: gpn topk, topk_frac 0.25 read back; $chk"
    else
        bad "eval of the top-k checkpoint (exit $rc)" "$out
$chk"
    fi
fi

# ------------------------------------------------------ 2. frontier.py options
F=tools/frontier.py
expect_fail "--seeds x" "seeds" "$PY" $F --quick --plan --seeds x
expect_fail "--points unknown method" "unknown method" "$PY" $F --quick --plan --points foo
expect_fail "--points random with a number" "random takes" "$PY" $F --quick --plan --points random:seed:0.3
expect_fail "--points match of a missing learned point" "not among --points" "$PY" $F --quick --plan \
    --points dense,fixed:seed:@learned-seed-0.5
expect_fail "--points topk frac out of range" "outside" "$PY" $F --quick --plan --points topk:seed:1.5
expect_fail "--sets nope" "sets" "$PY" $F --quick --plan --sets nope
expect_fail "--steps 0" "steps" "$PY" $F --quick --plan --steps 0
expect_fail "--jobs 0" "jobs" "$PY" $F --quick --plan --jobs 0
expect_fail "--config missing" "no such file" "$PY" $F --quick --plan --config "$T/none.ini"
expect_fail "unknown option" "unrecognized" "$PY" $F --frobnicate
out=$("$PY" $F --quick --plan 2>&1); rc=$?
if ((rc == 0)) && grep -q "32 runs" <<<"$out" && grep -q "topk-seed-m.learned-seed-0.01" <<<"$out"; then
    ok "--quick --plan: $(head -1 <<<"$out")"
else
    bad "--quick --plan (exit $rc)" "$out"
fi
if grep -q -- "--quick" <<<"$("$PY" $F --help)"; then ok "--help"; else bad "--help"; fi
# the seeds of a matched point start together and resolve its match.json
# at once: 8 threads x 100 trials must all get the keys of one calibration
# (a shared temporary file once made ~1 in 7 quick runs fail on resume)
out=$("$PY" - "$T/race" <<'EOF' 2>&1
import json, os, sys, threading, types
sys.path.insert(0, "tools")
import frontier as F
out, seeds = sys.argv[1], [1, 2]
for sd in seeds:
    d = os.path.join(out, "sentence", "learned-seed-0.01", "s%d" % sd)
    os.makedirs(d)
    with open(os.path.join(d, "eval-dev.json"), "w") as f:
        json.dump({"density": 0.3 + 0.1 * sd, "levels": [{"fraction": x} for x in (0.5, 0.3, 0.2)]}, f)
a = types.SimpleNamespace(out=out, seeds=seeds)
specs = ["topk:seed:@learned-seed-0.01", "random:seed:@learned-seed-0.01"] * 4
want = {"topk_frac=0.450000", "random_probs=0.500000,0.300000,0.200000"}
bad = 0
for trial in range(100):
    R = F.Runner(a)
    for p in {F.Point(x).name for x in specs}:
        cal = os.path.join(out, "sentence", p, "match.json")
        os.makedirs(os.path.dirname(cal), exist_ok=True)
        if os.path.exists(cal):
            os.remove(cal)
    res, go = [], threading.Barrier(len(specs))
    def w(spec):
        go.wait()
        try:
            res.append(F.resolve(R, a, "sentence", F.Point(spec), "-", os.devnull)[0][-1])
        except Exception as e:
            res.append(repr(e))
    ts = [threading.Thread(target=w, args=(x,)) for x in specs]
    [t.start() for t in ts]
    [t.join() for t in ts]
    if set(res) != want:
        bad += 1
        print("trial %d: %s" % (trial, sorted(set(res))))
print("%d of 100 trials of 8 concurrent resolves inconsistent" % bad)
sys.exit(1 if bad else 0)
EOF
); rc=$?
if ((rc == 0)); then ok "concurrent match.json: $(tail -1 <<<"$out")"; else bad "concurrent match.json (exit $rc)" "$out"; fi

# ------------------------------------- 3. --quick, killed and resumed; 4. outputs
if ((have_bleu)); then
    R=$T/runs
    "$PY" $F --quick --out "$R" >"$T/run1.log" 2>&1 &
    fpid=$!
    # wait until a few point runs are done (the trunks come first), then kill
    for _ in $(seq 1 600); do
        n=$(find "$R" -name done 2>/dev/null | wc -l)
        ((n >= 3)) && break
        kill -0 $fpid 2>/dev/null || break
        sleep 0.5
    done
    kill -TERM $fpid 2>/dev/null
    wait $fpid; rc=$?
    fpid=
    ndone=$(find "$R" -name done | wc -l)
    if ((rc == 130)) && ((ndone >= 3 && ndone < 32)) && grep -q "rerun the same command" "$T/run1.log"; then
        ok "SIGTERM: exit 130 with $ndone of 32 runs done"
    else
        bad "SIGTERM (exit $rc, $ndone runs done)" "$(tail -5 "$T/run1.log")"
    fi
    "$PY" $F --quick --out "$R" >"$T/run2.log" 2>&1; rc=$?
    if ((rc == 0)) && grep -q "resuming: [0-9]* of 32 runs already done" "$T/run2.log" &&
        (($(find "$R" -name done | wc -l) == 32)); then
        ok "the same command continues: $(grep -m1 resuming "$T/run2.log"); 32 runs done"
    else
        # the failed runs' messages first (progress lines would hide them), then each one's log tail
        bad "resume (exit $rc)" "$(grep -v '^\[' "$T/run2.log" | tail -8)
$(grep -o 'failed (exit [0-9-]*): .*run.log' "$T/run2.log" | sed 's/.*: //' | head -2 |
            while read -r l; do echo "--- $l"; tail -6 "$l"; done)"
    fi
    if grep -q '^\[32/32\] .* est. remaining' "$T/run2.log"; then
        ok "progress lines with an estimate of the remaining time"
    else
        bad "progress lines" "$(grep '^\[' "$T/run2.log" | tail -3)"
    fi
    chk=$("$PY" - "$R/results" <<'EOF' 2>&1
import os, sys
d = sys.argv[1]
lines = open(os.path.join(d, "points.tsv")).read().split("\n")[:-1]
assert lines[0].split("\t") == ["method", "mode", "set", "param", "seed", "density", "bleu", "chrf"], lines[0]
rows = [l.split("\t") for l in lines[1:]]
assert len(rows) == 32, len(rows)
assert all(len(r) == 8 for r in rows)
assert {r[0] for r in rows} == {"dense", "learned", "fixed", "random", "topk"}, {r[0] for r in rows}
assert {r[2] for r in rows} == {"sentence", "passage"}
for r in rows:
    assert 0 < float(r[5]) <= 1 and 0 <= float(r[6]) <= 100 and 0 <= float(r[7]) <= 100, r
    assert r[4] in ("1", "2"), r
# topk at frac 0.3: decoded density near 0.3 (round(0.3 N) / N, toy N 4..61)
tk = [float(r[5]) for r in rows if r[0] == "topk" and r[3] == "0.3"]
assert len(tk) == 4 and all(abs(x - 0.3) < 0.08 for x in tk), tk
t = open(os.path.join(d, "tests.tsv")).read().split("\n")[:-1]
assert t[0].split("\t")[:6] == ["set", "density_band", "baseline", "delta_bleu", "p_value", "verdict"], t[0]
assert len(t) > 1
for l in t[1:]:
    f = l.split("\t")
    assert f[5] in ("better", "equivalent", "worse", "no point"), f
    assert f[2] in ("fixed", "random", "topk"), f
    if f[5] != "no point":
        assert 0 < float(f[4]) <= 1, f
for f in ("frontier-bleu.png", "frontier-chrf.png", "gpn-analysis.png"):
    assert open(os.path.join(d, f), "rb").read(8) == b"\x89PNG\r\n\x1a\n", f
g = open(os.path.join(d, "gpn-analysis.tsv")).read().split("\n")
assert len(g) >= 3 and g[0].startswith("set\tpoint\tlayer"), g[:2]
c = open(os.path.join(d, "dense-cross.tsv")).read()
assert "sentence-dense" in c and "passage-dense" in c and "paired bootstrap" in c, c
print("%d points, %d tests, plots and analysis present" % (len(rows), len(t) - 1))
EOF
    ); rc=$?
    if ((rc == 0)); then ok "outputs: $chk"; else bad "outputs" "$chk"; fi
    # --budget-hours: the runs in progress finish, no new ones start, exit 3, partial report
    out=$("$PY" $F --quick --out "$T/budget" --sets sentence --seeds 1 --budget-hours 0.0001 \
        --sentence-trunk "$R/trunk-sentence/best.ckpt" 2>&1); rc=$?
    nb=$(find "$T/budget" -name done | wc -l)
    if ((rc == 3)) && ((nb >= 1 && nb < 8)) && grep -q "budget of 0.0001 h reached" <<<"$out" &&
        [[ -s $T/budget/results/points.tsv ]]; then
        ok "--budget-hours 0.0001: exit 3 after $nb of 8 runs, report of what is done"
    else
        bad "--budget-hours (exit $rc, $nb runs done)" "$(tail -5 <<<"$out")"
    fi
    # the matched baselines were calibrated from the learned point's dev evaluation
    m=$R/sentence/topk-seed-m.learned-seed-0.01/match.json
    if [[ -s $m ]] && grep -q '"dev_density"' "$m" && grep -q "topk_frac" "$R/sentence/topk-seed-m.learned-seed-0.01/s1/config.ini"; then
        ok "matched top-k point: frac from the learned point's dev density ($(tr -d '\n ' <"$m" | cut -c1-80))"
    else
        bad "matched top-k point" "$(cat "$m" 2>&1)"
    fi
else
    skipped "frontier.py --quick (no sacreBLEU)"
fi

echo "$pass passed, $fail failed"
((fail == 0))
