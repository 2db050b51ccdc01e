#!/usr/bin/env bash
# tests/test_compare.sh BENCH — checks the regression checker end to end:
#   1. runs of the same build               -> tools/compare.py --relative exits 0
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
      --benchmark_repetitions=3 --benchmark_min_time=0.03)
pass=0 fail=0
run() { "$bench" "${args[@]}" --benchmark_out="$1" --benchmark_out_format=json >/dev/null 2>"$1.err"; }
# Interleaved A, S(lowed), B runs, three rounds, pooled per side: load that
# drifts over time on a shared machine then hits every side alike.
for i in 1 2 3; do
    run "$tmp/a$i.json" && GRANATTN_BENCH_SLOWDOWN=threshold:6 run "$tmp/s$i.json" && run "$tmp/b$i.json" || {
        echo "test_compare: granattn-bench failed"; cat "$tmp"/*.err; echo "0 passed, 1 failed"; exit 1; }
done
A="$tmp/a1.json,$tmp/a2.json,$tmp/a3.json" B="$tmp/b1.json,$tmp/b2.json,$tmp/b3.json"
S="$tmp/s1.json,$tmp/s2.json,$tmp/s3.json"
# --relative: each kernel against the run-wide shift; a 50 % limit without the
# adaptive noise floor: the slowdown is 6x, run-to-run scatter of one kernel's
# pooled median relative to the others stays well below 1.5x even under load.
cmp=(--relative --metric cpu_time --threshold 0.5 --noise-k 0)

if /usr/bin/python3 tools/compare.py "${cmp[@]}" "$A" "$B" >"$tmp/same.txt"; then
    pass=$((pass + 1)); echo "ok: two runs of the same build compare as equal"
else
    fail=$((fail + 1)); echo "FAIL: two runs of the same build were reported as a regression"; cat "$tmp/same.txt"
fi
/usr/bin/python3 tools/compare.py "${cmp[@]}" "$A" "$S" >"$tmp/slow.txt"
rc=$?
if [[ $rc -ne 0 ]] && grep -q "^threshold/" <<<"$(grep -E ' slower$' "$tmp/slow.txt")" \
    && ! grep -vq "^threshold/" <<<"$(grep -E ' slower$' "$tmp/slow.txt")"; then
    pass=$((pass + 1)); echo "ok: the 6x slower threshold kernel is flagged (exit $rc), nothing else is"
else
    fail=$((fail + 1)); echo "FAIL: slowed kernel not flagged correctly (exit $rc)"; cat "$tmp/slow.txt"
fi
echo "$pass passed, $fail failed"
((fail == 0))
