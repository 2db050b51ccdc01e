#!/usr/bin/env bash
# tests/test_bench_trace.sh BENCH — the prepared path and the trace family of
# granattn-bench end to end (no timing assertions: only that the cases run and
# report their counters, and that bad input is refused with a message):
#   1. --write-test-trace writes a trace; the trace family runs it (plain and
#      gzipped) with every variant and the prepared counters
#   2. attend/attend_block on path:prepared and prepared-bounded report
#      bytes_read, cand_per_kept, prep_us; summary.py shows tables (g) and (h)
#   3. bad traces (garbage, truncated, bad CRC, bad gzip, missing file, empty
#      directory) and bad flags exit 2 with a message, never a crash
# Prints "N passed, N failed" (read by tools/test.sh).
set -uo pipefail
bench=${1:?usage: tests/test_bench_trace.sh path/to/granattn-bench}
bench=$(realpath "$bench")
cd "$(dirname "$0")/.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
PY=/usr/bin/python3
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
fast=(--benchmark_min_time=0.002)

# ---- 1. the trace family on a synthetic trace ----
if "$bench" --write-test-trace="$tmp/t.gatrace" 2>"$tmp/w.err" && [[ -s "$tmp/t.gatrace" ]]; then
    ok "--write-test-trace wrote a trace"
else
    bad "--write-test-trace failed"; cat "$tmp/w.err"
fi
gzip -c "$tmp/t.gatrace" >"$tmp/tz.gatrace.gz"
mkdir -p "$tmp/res"
if "$bench" --family=trace --traces="$tmp/t.gatrace,$tmp/tz.gatrace.gz" "${fast[@]}" \
        --benchmark_out="$tmp/res/bench.json" --benchmark_out_format=json >/dev/null 2>"$tmp/tr.err"; then
    ok "trace family ran (plain and gzipped file)"
else
    bad "trace family failed"; cat "$tmp/tr.err"
fi
# 7 cases per file (renorm full/prepared, seed full/prepared/bounded, dense full/packed)
"$PY" - "$tmp/res/bench.json" <<'EOF' && ok "trace cases: 2 files x 7 variants, no error, prepared counters present" || bad "trace cases or counters wrong"
import json, sys
b = [x for x in json.load(open(sys.argv[1]))["benchmarks"] if x["name"].startswith("trace/")]
names = {x["name"] for x in b}
assert len(names) == 14, sorted(names)
assert not any(x.get("error_occurred") for x in b), [x.get("error_message") for x in b]
for x in b:
    assert x["bytes_read"] > 0 and x["rows"] == 6, x["name"]
    if "/path:prepared" in x["name"] and "mode:dense" not in x["name"]:
        for k in ("cand_per_kept", "cand_frac", "fallback", "prep_us", "prep_in_dense_steps"):
            assert k in x, (x["name"], k)
        assert x["cand_per_kept"] >= 1.0, x["name"]
    if "/path:prepared-bounded" in x["name"]:
        assert "z_bound" in x, x["name"]
assert any("file:t/" in n for n in names) and any("file:tz/" in n for n in names)
EOF

# ---- 2. attend / attend_block on the prepared path, and the summary ----
if "$bench" --family=attend,attend_block --N=256 --H=4 --mix=dense,70-20-10 --mode=seed,renorm \
        --path=full,prepared,prepared-bounded --threads=1 --place=none --cache=hot "${fast[@]}" \
        --benchmark_out="$tmp/res/attend.json" --benchmark_out_format=json >/dev/null 2>"$tmp/at.err"; then
    ok "attend/attend_block ran on path full, prepared, prepared-bounded"
else
    bad "attend on the prepared path failed"; cat "$tmp/at.err"
fi
"$PY" - "$tmp/res/attend.json" "$tmp/res/bench.json" <<'EOF' && ok "prepared attend counters present" || bad "prepared attend counters missing"
import json, sys
a = json.load(open(sys.argv[1]))
b = a["benchmarks"]
assert not any(x.get("error_occurred") for x in b), [x.get("error_message") for x in b]
prep = [x for x in b if "/path:prepared" in x["name"]]
assert prep and any("attend_block/" in x["name"] for x in prep)
for x in prep:
    assert x["bytes_read"] > 0 and "prep_us" in x and "fallback" in x, x["name"]
    if "mode:dense" not in x["name"]:
        assert x["cand_per_kept"] >= 1.0, x["name"]
# one result set for the summary: attend + trace
t = json.load(open(sys.argv[2]))
a["benchmarks"] += t["benchmarks"]
json.dump(a, open(sys.argv[2], "w"))
EOF
if "$PY" tools/summary.py "$tmp/res" --strict >"$tmp/sum.txt" 2>&1 \
        && grep -q "^(g) " "$tmp/sum.txt" && grep -q "^(h) " "$tmp/sum.txt"; then
    ok "summary.py prints the prepared-keys table (g) and the trace table (h)"
else
    bad "summary.py tables (g)/(h) missing"; cat "$tmp/sum.txt"
fi

# ---- 3. bad input: exit 2 with a message, never a crash ----
expect_refused() {   # expect_refused WHAT PATTERN ARGS...
    local what=$1 pat=$2; shift 2
    "$bench" "$@" --benchmark_min_time=0.001 >"$tmp/o.txt" 2>"$tmp/e.txt"
    local rc=$?
    if [[ $rc -eq 2 ]] && grep -qiE "$pat" "$tmp/e.txt"; then
        ok "$what: exit 2 with a message"
    else
        bad "$what: exit $rc (want 2 and /$pat/)"; cat "$tmp/e.txt"
    fi
}
printf 'not a trace at all, not even close\n' >"$tmp/garbage.gatrace"
head -c 1000 "$tmp/t.gatrace" >"$tmp/trunc.gatrace"
cp "$tmp/t.gatrace" "$tmp/crc.gatrace"
printf '\x55' | dd of="$tmp/crc.gatrace" bs=1 seek=500 conv=notrunc status=none
printf 'not gzip' >"$tmp/notgz.gatrace.gz"
head -c 300 "$tmp/tz.gatrace.gz" >"$tmp/cutgz.gatrace.gz"
mkdir -p "$tmp/empty"
expect_refused "garbage trace" "bad trace file" --traces="$tmp/garbage.gatrace"
expect_refused "truncated trace" "truncated|bad trace file" --traces="$tmp/trunc.gatrace"
expect_refused "trace with a bad CRC" "crc" --traces="$tmp/crc.gatrace"
expect_refused "not-gzip .gz trace" "bad trace file" --traces="$tmp/notgz.gatrace.gz"
expect_refused "cut gzip trace" "bad trace file|gzip" --traces="$tmp/cutgz.gatrace.gz"
expect_refused "missing trace" "no such file" --traces="$tmp/none.gatrace"
expect_refused "directory without traces" "no .gatrace" --traces="$tmp/empty"
expect_refused "--family=trace without --traces" "needs --traces" --family=trace
expect_refused "bad --path" "bad path" --path=halfway
expect_refused "bad --trace-rows" "bad value" --trace-rows=0 --traces="$tmp/t.gatrace"
ls "${TMPDIR:-/tmp}"/granattn-trace-* >/dev/null 2>&1 && echo "note: leftover temporary files in ${TMPDIR:-/tmp} (another run?)"

echo "$pass passed, $fail failed"
((fail == 0))
