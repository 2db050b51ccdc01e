#!/usr/bin/env bash
# tests/test_fuzz.sh — builds the libFuzzer targets (fuzz/, clang with
# -fsanitize=fuzzer,address,undefined) and runs each one:
#   1. on its regression inputs (fuzz/regress/TARGET/: every crash a target
#      ever found; each must now pass);
#   2. for FUZZ_SECONDS seconds (default 20) from its seed corpus
#      (fuzz/corpus/TARGET/), in a scratch copy (the committed corpus is not
#      changed).  A crash, sanitizer report, leak, timeout or OOM fails the
#      target; its input is kept in fuzz-artifacts/ (or $FUZZ_ARTIFACTS) to be
#      committed under fuzz/regress/TARGET/ with the fix.
#
#   tests/test_fuzz.sh [BUILD_DIR]          (default: build-fuzz, made if missing)
#   FUZZ_SECONDS=600 tests/test_fuzz.sh     # the longer run (see fuzz/README.md)
#   FUZZ_TARGETS="config tokens" ...        # a subset
#
# Prints each target's executions, coverage (libFuzzer's "cov" edges and
# "ft" features) and corpus size; ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
B=${1:-build-fuzz}
SECS=${FUZZ_SECONDS:-20}
TARGETS=${FUZZ_TARGETS:-"config checkpoint tokens api"}
ART=${FUZZ_ARTIFACTS:-$PWD/fuzz-artifacts}
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1"; [[ -n "${2:-}" ]] && sed 's/^/       | /' <<<"$2" | head -30; }

if ! command -v clang >/dev/null; then
    bad "clang not found (tools/deps.sh installs clang and libclang-rt-14-dev)"
    echo "$pass passed, $fail failed"; exit 1
fi
if [[ ! -f "$B/build.ninja" ]]; then
    CC=clang CXX=clang++ meson setup "$B" -Dfuzz=true -Dtests=false -Dbench=false \
        --buildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false \
        -Dwerror=true -Dc_args=-fno-sanitize-recover=all >"$B.setup.log" 2>&1 \
        || { bad "meson setup $B" "$(tail -20 "$B.setup.log")"; rm -f "$B.setup.log"; echo "$pass passed, $fail failed"; exit 1; }
    rm -f "$B.setup.log"
fi
bins=()
for t in $TARGETS; do bins+=("fuzz/fuzz_$t"); done
if ! out=$(ninja -C "$B" -j"${FUZZ_JOBS:-2}" "${bins[@]}" 2>&1); then
    bad "building the fuzz targets" "$(tail -30 <<<"$out")"
    echo "$pass passed, $fail failed"; exit 1
fi

W=$(mktemp -d "${TMPDIR:-/tmp}/granattn-fuzz.XXXXXX")
trap 'rm -rf "$W"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for t in $TARGETS; do
    bin="$B/fuzz/fuzz_$t"
    # 1. regression inputs
    reg=(fuzz/regress/"$t"/*)
    if [[ -e "${reg[0]}" ]]; then
        if out=$("$bin" "${reg[@]}" 2>&1); then
            ok "$t: ${#reg[@]} regression input(s) pass"
        else
            bad "$t: a regression input fails" "$(grep -E 'ERROR|SUMMARY|fuzz_|Running' <<<"$out" | head -20)"
        fi
    fi
    # 2. fuzzing from the seeds, in a scratch corpus
    mkdir -p "$W/$t" "$ART"
    cp fuzz/corpus/"$t"/* "$W/$t/"
    log="$W/$t.log"
    "$bin" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$ART/$t-" "$W/$t" >"$log" 2>&1
    rc=$?
    done_line=$(grep -a -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)
    execs=$(grep -a 'stat::number_of_executed_units' "$log" | grep -o '[0-9]*$')
    cov=$(grep -o 'cov: [0-9]*' <<<"$done_line"); ft=$(grep -o 'ft: [0-9]*' <<<"$done_line")
    corp=$(grep -o 'corp: [0-9]*' <<<"$done_line")
    if ((rc == 0)) && [[ -n "$done_line" ]]; then
        ok "$t: ${SECS} s, ${execs:-?} executions, ${cov:-cov: ?} edges, ${ft:-ft: ?} features, ${corp:-corp: ?} inputs, no crash"
    else
        bad "$t: fuzzing found a problem (exit $rc; input kept in $ART/)" \
            "$(grep -a -E 'ERROR|SUMMARY|fuzz_|runtime error|Test unit written|#[0-9]+ 0x' "$log" | head -25)"
    fi
done
echo "$pass passed, $fail failed"
((fail == 0))
