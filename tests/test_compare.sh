#!/usr/bin/env bash
# tests/test_compare.sh BENCH — checks the regression checker end to end:
#   1. two runs of the same build           -> tools/compare.py --relative exits 0
#   2. a deliberately slowed kernel (GRANATTN_BENCH_SLOWDOWN=threshold:6, which
#      makes the bench call `threshold` six times per iteration)
#                                            -> exit 1, and `threshold` flagged
# Prints "N passed, N failed" (read by tools/test.sh).
set -uo pipefail
bench=${1:?usage: tests/test_compare.sh path/to/granattn-bench}
cd "$(dirname "$0")/.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
isa=$("$bench" --list --family=threshold --N=4096 2>/dev/null | sed -nE 's/.*isa:([a-z0-9]+).*/\1/p' | tail -1)
args=(--family=threshold,sparse_context,softmax,dense_context,scores,gpn_levels,gpn_probs,softmax_backward,dense_context_backward --N=4096 --isa="$isa"
      --benchmark_repetitions=7 --benchmark_min_time=0.03)
pass=0 fail=0
run() { "$bench" "${args[@]}" --benchmark_out="$1" --benchmark_out_format=json >/dev/null 2>"$1.err"; }
run "$tmp/a.json" && run "$tmp/b.json" && GRANATTN_BENCH_SLOWDOWN=threshold:6 run "$tmp/slow.json" || {
    echo "test_compare: granattn-bench failed"; cat "$tmp"/*.err; echo "0 passed, 1 failed"; exit 1; }

if /usr/bin/python3 tools/compare.py --relative --metric cpu_time "$tmp/a.json" "$tmp/b.json" >"$tmp/same.txt"; then
    pass=$((pass + 1)); echo "ok: two runs of the same build compare as equal"
else
    fail=$((fail + 1)); echo "FAIL: two runs of the same build were reported as a regression"; cat "$tmp/same.txt"
fi
/usr/bin/python3 tools/compare.py --relative --metric cpu_time "$tmp/a.json" "$tmp/slow.json" >"$tmp/slow.txt"
rc=$?
if [[ $rc -ne 0 ]] && grep -E ' slower$' "$tmp/slow.txt" | grep -q "^threshold/" \
    && ! grep -E ' slower$' "$tmp/slow.txt" | grep -vq "^threshold/"; then
    pass=$((pass + 1)); echo "ok: the 6x slower threshold kernel is flagged (exit $rc), nothing else is"
else
    fail=$((fail + 1)); echo "FAIL: slowed kernel not flagged correctly (exit $rc)"; cat "$tmp/slow.txt"
fi
echo "$pass passed, $fail failed"
((fail == 0))
