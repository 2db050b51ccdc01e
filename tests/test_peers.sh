#!/usr/bin/env bash
# tests/test_peers.sh — smoke test of the CPU attention peers harness (tools/peers/).
#
#   tests/test_peers.sh [BENCH]    (default: build/bench/granattn-bench)
#
# Cheap (under a minute plus the first install of ~60 MB): ONNX Runtime (+ onnx,
# numpy) only, installed by tools/peers/setup.sh --only ort into .venv-peers/;
# PyTorch, OpenVINO and ggml are exercised by real runs, not here. Checks
#   - bad input to tools/peers/run.py (unknown option, bad --N values, a T that
#     is not a granattn-bench family, unknown peer): exit 2 and a message naming
#     the problem, no traceback; setup.sh and report.py refuse bad options too;
#   - tools/peers/run.py --quick --peers ort: exit 0; ratios.tsv has exactly the
#     columns N, H, T, threads, cache, ga_dense_us, ga_sparse_us, best_peer,
#     best_peer_us, frac_limit_dense, one row per shape (4), positive times and
#     an ort-* best peer; peers.json holds, per shape, every round of granattn
#     and of each peer variant, interleaved (the timeline is granattn, then the
#     peers, round after round), and each variant's reference error <= tol;
#   - the reference check can fail: GA_PEERS_PERTURB=ort-matmul:1e-3 (added to
#     that variant's output before the check) marks it wrong, keeps it out of
#     best_peer, and the report says WRONG;
#   - --help of every script.
# When pip cannot reach the package index the run checks print "skip - ...".
# Ends with "N passed, N failed" (exit 1 on any failure).
set -uo pipefail
cd "$(dirname "$0")/.."
BENCH=${1:-build/bench/granattn-bench}
PY=/usr/bin/python3
pass=0 fail=0 skip=0
ok() { pass=$((pass + 1)); echo "ok   - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1"; [[ -n "${2:-}" ]] && sed 's/^/       | /' <<<"$2" | head -30; }
skipped() { skip=$((skip + 1)); echo "skip - $1"; }
finish() { echo "test_peers: $skip skipped"; echo "$pass passed, $fail failed"; ((fail == 0)); exit; }
T=$(mktemp -d "${TMPDIR:-/tmp}/granattn-peers.XXXXXX")
trap 'rm -rf "$T"' EXIT

# expect_fail NAME PATTERN CMD... : exit status 2, stderr matches PATTERN, no traceback
expect_fail() {
    local name=$1 pat=$2; shift 2
    local out rc
    out=$("$@" 2>&1 >/dev/null); rc=$?
    if ((rc != 2)); then bad "$name (exit $rc, expected 2)" "$out"
    elif grep -q "Traceback" <<<"$out"; then bad "$name (a Python traceback, not a message)" "$out"
    elif ! grep -Eq -- "$pat" <<<"$out"; then bad "$name (message does not match /$pat/)" "$out"
    else ok "$name: $(grep -v '^ *$' <<<"$out" | tail -1 | cut -c1-110)"
    fi
}

# ---- help and bad input (no peer needed: refused before anything runs) ----
for cmd in "tools/peers/run.py --help" "tools/peers/setup.sh --help" "tools/peers/report.py --help"; do
    out=$($cmd 2>&1); rc=$?
    if ((rc == 0)) && grep -qi "usage" <<<"$out"; then ok "$cmd"; else bad "$cmd (exit $rc)" "$out"; fi
done
expect_fail "run.py: unknown option" "unrecognized arguments: --bogus" tools/peers/run.py --bogus
expect_fail "run.py: --N 0" "--N: 0 is out of range" tools/peers/run.py --N 0
expect_fail "run.py: --N abc" "--N: not a comma-separated list" tools/peers/run.py --N 64,abc
expect_fail "run.py: --T 7" "--T: 7 is not a granattn-bench family" tools/peers/run.py --T 7
expect_fail "run.py: --peers bogus" "--peers: unknown 'bogus'" tools/peers/run.py --peers bogus
expect_fail "run.py: --threads beyond the CPUs" "--threads 999 > the" tools/peers/run.py --threads 999
expect_fail "setup.sh: unknown peer" "unknown peer 'bogus'" tools/peers/setup.sh --only bogus
expect_fail "report.py: unknown option" "unknown option --bogus" tools/peers/report.py "$T" --bogus

# ---- install ONNX Runtime (the only peer this test needs) ----
if [[ ! -x "$BENCH" ]]; then
    bad "$BENCH not built (ninja -C build bench/granattn-bench)"
    finish
fi
setup_out=$(tools/peers/setup.sh --only ort 2>&1); rc=$?
if ((rc == 3)) && grep -q "network" <<<"$setup_out"; then
    skipped "peer runs: pip cannot reach the package index ($(tail -1 <<<"$setup_out"))"
    finish
elif ((rc != 0)); then
    bad "tools/peers/setup.sh --only ort (exit $rc)" "$setup_out"
    finish
fi
ok "tools/peers/setup.sh --only ort"

# check_run DIR : ratios.tsv and peers.json of a --quick run (python prints ok/FAIL lines)
check_run() {
    "$PY" - "$1" <<'EOF'
import json, math, sys
d = sys.argv[1]
cols = ["N", "H", "T", "threads", "cache", "ga_dense_us", "ga_sparse_us", "best_peer",
        "best_peer_us", "frac_limit_dense"]
lines = open(f"{d}/ratios.tsv").read().splitlines()
def check(cond, what):
    print(("ok   - " if cond else "FAIL - ") + what)
check(lines and lines[0].split("\t") == cols, "ratios.tsv header is exactly " + ", ".join(cols))
rows = [dict(zip(cols, l.split("\t"))) for l in lines[1:]]
shapes = {(r["N"], r["T"]) for r in rows}
check(len(rows) == 4 and shapes == {("64", "1"), ("1024", "1"), ("64", "32"), ("1024", "32")}
      and all(len(l.split("\t")) == len(cols) for l in lines[1:]),
      f"ratios.tsv: one row per shape ({len(rows)} rows: N 64/1024 x T 1/32)")
def pos(x):
    try:
        return float(x) > 0 and math.isfinite(float(x))
    except ValueError:
        return False
check(all(pos(r[c]) for r in rows for c in ("ga_dense_us", "ga_sparse_us", "best_peer_us")),
      "ratios.tsv: granattn dense/sparse and best-peer times are positive numbers")
check(all(r["best_peer"].startswith("ort-") for r in rows), "best peer is an ONNX Runtime variant")
doc = json.load(open(f"{d}/peers.json"))
R = doc["config"]["rounds"]
tol = doc["config"]["tol"]
good = True
inter = True
for s in doc["shapes"]:
    g = s["granattn"]
    good &= len(g["dense_us"]) == R and len(g["sparse_us"]) == R
    variants = [k for k, p in s["peers"].items() if p["ok"]]
    good &= len(variants) >= 2 and all(len(s["peers"][k]["us"]) == R for k in variants)
    good &= all(0 <= s["peers"][k]["err"] <= tol for k in variants)
    # interleaved: round r = granattn, then every variant once, before round r + 1
    want = []
    tl = s["timeline"]
    for r in range(R):
        part = [e for e in tl if e.startswith(f"{r}:")]
        want += part
        inter &= part[:1] == [f"{r}:granattn"] and sorted(part[1:]) == sorted(f"{r}:{k}" for k in variants)
    inter &= tl == want and R >= 2
check(good, f"peers.json: {R} rounds of granattn and of every ort variant per shape, errors <= tol {tol:g}")
check(inter, "peers.json: rounds interleaved (granattn, then each peer variant, round after round)")
check(doc["peers"]["ort"]["1"]["versions"]["onnxruntime"] == doc["pins"]["onnxruntime"],
      "peers.json records the pinned ONNX Runtime version")
EOF
}

out=$(tools/peers/run.py --quick --peers ort --bench "$BENCH" --out "$T/quick" 2>&1); rc=$?
if ((rc != 0)); then
    bad "run.py --quick --peers ort (exit $rc)" "$out"
else
    ok "run.py --quick --peers ort ($(grep -c '^peers: \[' <<<"$out") progress lines)"
    grep -q 'ETA' <<<"$out" && ok "progress lines carry an ETA" || bad "no ETA in the progress lines" "$out"
    grep -Eq '^N +H +T +thr' <<<"$out" && ok "the ratios table is printed" || bad "no ratios table" "$out"
    res=$(check_run "$T/quick" 2>&1)
    echo "$res"
    pass=$((pass + $(grep -c '^ok ' <<<"$res"))); fail=$((fail + $(grep -c '^FAIL' <<<"$res")))
    grep -q '^ok \|^FAIL' <<<"$res" || bad "the result check did not run" "$res"
fi

# ---- the reference check rejects a wrong output ----
out=$(GA_PEERS_PERTURB=ort-matmul:1e-3 tools/peers/run.py --quick --N 64 --T 1 --rounds 1 \
      --peers ort --bench "$BENCH" --out "$T/wrong" 2>&1); rc=$?
if ((rc != 0)); then
    bad "perturbed run (exit $rc)" "$out"
else
    verdict=$("$PY" - "$T/wrong" <<'EOF'
import json, sys
d = sys.argv[1]
s = json.load(open(f"{d}/peers.json"))["shapes"][0]["peers"]["ort-matmul"]
row = open(f"{d}/ratios.tsv").read().splitlines()[1].split("\t")
print("yes" if s["wrong"] and not s["ok"] and s["err"] > 1e-4 and row[7] != "ort-matmul"
      and row[7].startswith("ort-") else f"no: {s} best {row[7]}")
EOF
)
    if [[ $verdict == yes ]] && grep -q "WRONG (excluded from best peer): ort-matmul" <<<"$out"; then
        ok "a perturbed ort-matmul (1e-3) is reported WRONG and excluded from best peer"
    else
        bad "the perturbed variant was not rejected ($verdict)" "$out"
    fi
fi
finish
