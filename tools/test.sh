#!/usr/bin/env bash
# tools/test.sh — the whole test suite (the README's test command).
#
#   1. installs missing Debian packages (tools/deps.sh, tools/setup-arm64.sh)
#   2. gcc release build with -Werror, runs the Criterion suite (every kernel x
#      every variant this CPU supports, model gradient checks) and the CLI test
#      (tests/test_cli.sh: bad input, checkpoint resume equality, smoke training),
#      tests/test_batch.sh (translate / eval --batch: the same ids for any batch
#      size and thread count),
#      tests/test_torch_check.sh (logits, loss and every gradient of the C model
#      vs a PyTorch float64 re-implementation) and tests/test_install.sh
#      (meson install; a consumer via pkg-config), tests/test_inputs.sh
#      (hostile input: checkpoints with valid checksums but bad contents,
#      config values that must read back, NUL bytes, FIFOs, PAD ids, ...) and
#      tests/test_kill.sh (SIGKILL at random moments and mid-write, SIGTERM
#      during the dev evaluation: resume gives the uninterrupted run),
#      tests/test_spm.sh (SentencePiece in process, libsentencepiece, gives
#      the ids and text of tools/corpus/spm.py: a model it trains, hard lines),
#      tests/test_no_outside_refs.sh (no tracked file cites a path outside the repository),
#      tests/test_windows.sh (passage windows of tools/corpus/windows.py),
#      tests/test_models.sh (models/default.ckpt loads and translates; tools/release-model.py),
#      tests/test_frontier.sh (tools/frontier.py --quick on toy data: killed and
#      resumed, its TSV columns, bad options; the gpn = topk baseline via the CLI),
#      tests/test_mpi.sh (mpirun -np 2 granattn train: the loss curve of one
#      process, --resume across rank counts, a killed rank; the build finds
#      OpenMPI with the default -Dmpi=auto)
#   3. clang build with AddressSanitizer + UndefinedBehaviorSanitizer, -Werror,
#      runs the suite, the CLI, batch and input tests again; then
#      tests/test_fuzz.sh: the libFuzzer targets of fuzz/ on their regression
#      inputs and 20 s each from their seeds (FUZZ_SECONDS=N for longer)
#   4. aarch64 cross build, runs the suite under qemu-aarch64 (NEON variant)
#   5. smoke run of the benchmark sweep (tools/sweep.sh --quick: prepared
#      cases and a synthetic trace included), the prepared path and trace
#      family with bad input (tests/test_bench_trace.sh), the regression
#      checker's own test (tests/test_compare.sh) and the CPU attention peers'
#      smoke test (tests/test_peers.sh: ONNX Runtime only, tiny shapes; the
#      reference check, interleaving, ratios.tsv columns, bad input)
# Ends with one line "N passed, N failed" summed over every suite it ran.
# Options: --no-asan, --no-neon, --no-bench, --no-fuzz (skip a stage; the skip
# is reported).
set -uo pipefail
cd "$(dirname "$0")/.."

want_asan=1 want_neon=1 want_bench=1 want_fuzz=1
for a in "$@"; do
    case "$a" in
    --no-asan) want_asan=0 ;;
    --no-neon) want_neon=0 ;;
    --no-bench) want_bench=0 ;;
    --no-fuzz) want_fuzz=0 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "test.sh: unknown option $a (try --help)" >&2; exit 2 ;;
    esac
done

tools/deps.sh || exit 1
jobs=$(nproc)
total_pass=0 total_fail=0
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

# setup_build DIR ARGS... : configure once, reconfigure if options changed.
setup_build() {
    local dir=$1; shift
    if [[ -f "$dir/build.ninja" ]]; then
        meson configure "$dir" "$@" >/dev/null 2>&1 || { rm -rf "$dir"; meson setup "$dir" "$@" >/dev/null || return 1; }
    else
        meson setup "$dir" "$@" >/dev/null || return 1
    fi
}

# run_suite NAME CMD... : runs a Criterion binary, adds its Synthesis counts.
run_suite() {
    local name=$1; shift
    echo "== $name: $*" >&2
    "$@" 2>&1 | tee "$log/$name.txt"
    local syn
    syn=$(grep -a 'Synthesis:' "$log/$name.txt" | tail -1)
    if [[ -z "$syn" ]]; then
        echo "== $name: no Criterion synthesis line (the suite did not run to the end)" >&2
        total_fail=$((total_fail + 1))
        return
    fi
    local pass fail # Criterion's Failing count includes the crashed tests
    pass=$(sed -E 's/.*Passing: ([0-9]+).*/\1/' <<<"$syn")
    fail=$(sed -E 's/.*Failing: ([0-9]+).*/\1/' <<<"$syn")
    total_pass=$((total_pass + pass))
    total_fail=$((total_fail + fail))
    ((fail == 0)) || failed_stages+=("$name: $pass passed, $fail failed")
    echo "== $name: $pass passed, $fail failed" >&2
}

# run_counted NAME CMD... : runs a script that ends with "N passed, N failed".
run_counted() {
    local name=$1; shift
    echo "== $name: $*" >&2
    "$@" 2>&1 | tee "$log/$name.txt"
    local line
    line=$(grep -aE '^[0-9]+ passed, [0-9]+ failed$' "$log/$name.txt" | tail -1)
    if [[ -z "$line" ]]; then
        stage_fail "$name" "no 'N passed, N failed' line"
        return
    fi
    total_pass=$((total_pass + ${line%% passed*}))
    local f=${line#*, }
    total_fail=$((total_fail + ${f%% failed}))
    ((${f%% failed} == 0)) || failed_stages+=("$name: $line")
}

failed_stages=()
stage_fail() { echo "== $1: FAILED ($2)" >&2; total_fail=$((total_fail + 1)); failed_stages+=("$1: $2"); }

# ---- 1. gcc release build ----
if setup_build build -Dwerror=true --buildtype=release && ninja -C build -j"$jobs" >"$log/build.txt" 2>&1; then
    run_suite x86-gcc build/tests/granattn-tests
else
    cat "$log/build.txt"; stage_fail x86-gcc "build failed"
fi

# ---- 1b. the granattn CLI end to end (bad input, resume equality, smoke training) ----
if [[ -x build/model/granattn ]]; then
    run_counted cli tests/test_cli.sh build/model/granattn
    # batched decoding: the same ids for any --batch / --threads (issue 11)
    run_counted batch tests/test_batch.sh build/model/granattn
else
    stage_fail cli "build/model/granattn was not built"
fi

# ---- 1b''. hostile input (issue 9 part 7) and kills at any moment (part 8) ----
if [[ -x build/model/granattn ]]; then
    run_counted inputs tests/test_inputs.sh build/model/granattn
    run_counted kill tests/test_kill.sh build/model/granattn
    run_counted spm tests/test_spm.sh build
else
    stage_fail inputs "build/model/granattn was not built"
fi

# ---- 1b'''. data-parallel training under mpirun (issue 13) ----
run_counted mpi tests/test_mpi.sh build

# ---- 1b'. the C model against an independent PyTorch implementation (float64 autograd) ----
run_counted torch-check tests/test_torch_check.sh build
run_counted step-speed tests/test_step_speed.sh build
run_counted ct2 tests/test_ct2.sh build

# ---- 1c. meson install + a consumer built through the installed pkg-config file ----
run_counted install tests/test_install.sh build

# ---- 1d. no tracked file refers to a path outside the repository ----
run_counted no-outside-refs tests/test_no_outside_refs.sh

# ---- 1d'. the weights for users (models/) and tools/release-model.py ----
run_counted models tests/test_models.sh build/model/granattn

# ---- 1e. passage-level data (tools/corpus/windows.py) on a synthetic corpus ----
run_counted windows tests/test_windows.sh

# ---- 1f. the quality-density frontier (tools/frontier.py --quick, toy data) and gpn = topk ----
if [[ -x build/model/granattn ]]; then
    run_counted frontier tests/test_frontier.sh build/model/granattn
else
    stage_fail frontier "build/model/granattn was not built"
fi

# ---- 2. clang + ASan + UBSan ----
if ((want_asan)); then
    if CC=clang CXX=clang++ setup_build build-asan -Dwerror=true --buildtype=debugoptimized \
        -Db_sanitize=address,undefined -Db_lundef=false -Dbench=false -Dmpi=disabled \
        -Dc_args=-fno-sanitize-recover=all && ninja -C build-asan -j"$jobs" >"$log/asan.txt" 2>&1; then
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
            run_suite x86-clang-asan-ubsan build-asan/tests/granattn-tests
        ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 GRANATTN_TEST_EVAL=0 \
            run_counted cli-asan-ubsan tests/test_cli.sh build-asan/model/granattn
        ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 GRANATTN_TEST_EVAL=0 \
            run_counted batch-asan-ubsan tests/test_batch.sh build-asan/model/granattn
        ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
            run_counted inputs-asan-ubsan tests/test_inputs.sh build-asan/model/granattn
    else
        cat "$log/asan.txt"; stage_fail asan "build failed"
    fi
else
    echo "== asan: skipped (--no-asan)" >&2
fi

# ---- 2b. libFuzzer targets (clang, ASan + UBSan): regressions + 20 s each ----
if ((want_fuzz)); then
    run_counted fuzz tests/test_fuzz.sh build-fuzz
else
    echo "== fuzz: skipped (--no-fuzz)" >&2
fi

# ---- 3. NEON under qemu ----
if ((want_neon)); then
    if [[ -x tools/setup-arm64.sh ]] && tools/setup-arm64.sh >"$log/arm64-setup.txt" 2>&1; then
        if setup_build build-arm64 --cross-file .deps/arm64/cross-aarch64.ini -Dbench=false -Dmpi=disabled \
            -Dsentencepiece=disabled \
            && ninja -C build-arm64 -j"$jobs" >"$log/arm64.txt" 2>&1; then
            GA_TEST_QUICK=1 run_suite neon-qemu qemu-aarch64 build-arm64/tests/granattn-tests
        else
            cat "$log/arm64.txt"; stage_fail neon "cross build failed"
        fi
    else
        cat "$log/arm64-setup.txt" 2>/dev/null; stage_fail neon "tools/setup-arm64.sh failed or missing"
    fi
else
    echo "== neon: skipped (--no-neon)" >&2
fi

# ---- 4. benchmark smoke run ----
if ((want_bench)); then
    if [[ -x tools/sweep.sh ]]; then
        echo "== bench smoke: tools/sweep.sh --quick" >&2
        if tools/sweep.sh --quick --out "$log/smoke" >"$log/smoke.txt" 2>&1; then
            total_pass=$((total_pass + 1)); echo "== bench smoke: passed" >&2
        else
            tail -40 "$log/smoke.txt"; stage_fail "bench smoke" "tools/sweep.sh --quick failed"
        fi
    else
        echo "== bench smoke: skipped (tools/sweep.sh not present yet)" >&2
    fi
    # the prepared path and the trace family (synthetic trace, .gz, bad input)
    run_counted bench-trace tests/test_bench_trace.sh build/bench/granattn-bench
    # the regression checker: same build passes, a deliberately slowed kernel is flagged
    run_counted compare tests/test_compare.sh build/bench/granattn-bench
    # the CPU attention peers harness (tools/peers/), ONNX Runtime only
    run_counted peers tests/test_peers.sh build/bench/granattn-bench
fi

# Repeat what failed at the end, where a CI log's tail shows it: the stage,
# its FAIL lines and the last lines it printed.
for st in "${failed_stages[@]}"; do
    name=${st%%:*}
    echo "== failed stage $st"
    if [[ -f "$log/$name.txt" ]]; then
        grep -a -v -E '^(ok|skip) ' "$log/$name.txt" | grep -a -E 'FAIL|rror|not found|missing|not an' | sed -n 1,30p
        echo "   -- last lines of its output:"
        tail -15 "$log/$name.txt" | sed 's/^/   | /'
    fi
done
echo "$total_pass passed, $total_fail failed"
((total_fail == 0))
