#!/usr/bin/env bash
# tools/sweep.sh — the benchmark sweep: build, describe the machine, measure its
# limits, run granattn-bench, (with --peers) time today's CPU attention peers,
# summarise.
#
# Usage: tools/sweep.sh [--quick|--full] [--out DIR] [--isa LIST] [--traces LIST]
#                       [--trace-max K] [--no-traces] [--peers] [--help]
#   --quick     small sweep, 1 repetition (about a minute; the test suite's smoke test)
#   --full      every axis, 5 repetitions (long)
#               (default: the default sweep, 3 repetitions, about 13 minutes on 2 cores)
#   --out DIR   result directory (default results/<machine>/<YYYYmmdd-HHMMSS>-<sweep>)
#   --isa LIST  ISAs to benchmark, comma-separated (passed to granattn-bench --isa)
#   --traces LIST  real attention traces (.gatrace/.gatrace.gz files or directories,
#               comma-separated) for the trace family (granattn-bench --traces).
#               Default: results/traces/ (the committed subset) for the default
#               and full sweeps; --quick writes a small synthetic trace
#               (granattn-bench --write-test-trace) into DIR and runs that
#   --trace-max K  at most K trace files, spread over N (default sweep: 4, for its
#               time budget; otherwise, and with K = 0, every file)
#   --no-traces no trace family
#   --peers     also time the CPU attention peers (tools/peers/: PyTorch 2.x,
#               ONNX Runtime, OpenVINO, ggml) interleaved with granattn-bench,
#               dense fp32, per (N, H, T, threads, cache): tools/peers/setup.sh
#               installs them into .venv-peers/ first (~6 GB, mostly PyTorch's
#               CUDA wheels; once), then tools/peers/run.py writes DIR/peers/
#               (peers.json, ratios.tsv, ratios.png). Default sweep: N 64..65536,
#               H 4/8, T 1/32, threads 1/2, hot and cold, 3 rounds (30-40 min on
#               a 2-core box); --quick: ONNX Runtime only, 4 small shapes;
#               --full: 5 rounds. Without --peers the summary says they were skipped
# Steps: tools/deps.sh --bench; release build in build/; DIR/machine.json
# (tools/machine_info.py); DIR/limits.json (granattn-bench --machine, reused from
# results/<machine>/limits.json when measured on the same CPU model); DIR/bench.json
# (the sweep); with --peers DIR/peers/; DIR/summary.md + DIR/plots/ (tools/summary.py).
# Progress goes to stderr; the summary table to stdout at the end.
# Exit status non-zero on any real error (build, bench crash, no benchmarks, ...).
set -euo pipefail

PY=/usr/bin/python3     # Debian's interpreter: numpy, scipy, matplotlib, torch

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
log() { echo "sweep: $*" >&2; }
step() { echo "sweep: [$1/7] (at $((SECONDS - start)) s) ${*:2}" >&2; }
die() { echo "sweep: ERROR: $*" >&2; exit 1; }

sweep=default out="" isa="" peers=0 traces="" no_traces=0 trace_max=""
while (($#)); do
    case "$1" in
    --quick) sweep=quick ;;
    --full) sweep=full ;;
    --out) [[ $# -ge 2 ]] || die "--out needs a directory"; out=$2; shift ;;
    --out=*) out=${1#--out=} ;;
    --isa) [[ $# -ge 2 ]] || die "--isa needs a list"; isa=$2; shift ;;
    --isa=*) isa=${1#--isa=} ;;
    --traces) [[ $# -ge 2 ]] || die "--traces needs a list"; traces=$2; shift ;;
    --traces=*) traces=${1#--traces=} ;;
    --no-traces) no_traces=1 ;;
    --trace-max) [[ $# -ge 2 ]] || die "--trace-max needs a number"; trace_max=$2; shift ;;
    --trace-max=*) trace_max=${1#--trace-max=} ;;
    --peers) peers=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "sweep: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
[[ -z "$out" ]] || out=$(realpath -m -- "$out")   # relative to the caller's directory
if [[ -n "$traces" ]]; then   # relative to the caller's directory too
    abs=()
    IFS=, read -r -a items <<<"$traces"
    for t in "${items[@]}"; do abs+=("$(realpath -m -- "$t")"); done
    traces=$(IFS=,; echo "${abs[*]}")
fi
cd "$(dirname "$0")/.."
start=$SECONDS

# tools/peers/run.py presets (its own defaults: N 64..65536, H 4,8, T 1,32, hot,cold)
threads_12=1; (($(nproc) >= 2)) && threads_12=1,2
case "$sweep" in
quick) reps=1 peer_args=(--quick --peers ort) peer_only=ort ;;
default) reps=3 peer_args=(--threads "$threads_12" --rounds 3) peer_only=torch,ort,openvino,ggml ;;
full) reps=5 peer_args=(--threads "$threads_12" --rounds 5) peer_only=torch,ort,openvino,ggml ;;
esac

# ---- 1. packages ----
step 1 "packages (tools/deps.sh --bench)"
if ! tools/deps.sh --bench; then
    log "tools/deps.sh --bench failed; trying without PyTorch"
    tools/deps.sh || die "tools/deps.sh failed: required packages are missing"
fi

# OpenBLAS 0.3.21 (used by the sgemm peer and by PyTorch) picks its SSE3
# "Prescott" kernels on this CPU model unless told the core type; give it the
# widest one the CPU supports so the comparisons are fair.
if [[ -z "${OPENBLAS_CORETYPE:-}" ]]; then
    if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then export OPENBLAS_CORETYPE=SkylakeX
    elif grep -qw avx2 /proc/cpuinfo 2>/dev/null; then export OPENBLAS_CORETYPE=Haswell
    fi
fi

# ---- 2. release build in build/ ----
step 2 "release build in build/"
# build_option NAME: value of a meson option of build/ (empty when unknown).
build_option() {
    "$PY" - "$1" <<'EOF' 2>/dev/null || true
import json, sys
for opt in json.load(open("build/meson-info/intro-buildoptions.json")):
    if opt["name"] == sys.argv[1]:
        print(str(opt["value"]).lower())
EOF
}
if [[ -f build/build.ninja ]]; then
    if [[ "$(build_option buildtype)" != release || "$(build_option bench)" == false ]]; then
        log "build/ is not a release build with the bench enabled: reconfiguring"
        meson configure build --buildtype=release -Dbench=true >&2 || die "meson configure build failed"
    fi
else
    meson setup build --buildtype=release >&2 || die "meson setup build failed"
fi
ninja -C build -j"$(nproc)" bench/granattn-bench >&2 \
    || die "build failed (ninja -C build bench/granattn-bench; bench/ needs to be wired into meson and libbenchmark-dev installed)"
bench=build/bench/granattn-bench
[[ -x "$bench" ]] || die "$bench was not built: bench/ is missing or not wired into meson \
(bench/meson.build), or Google Benchmark (libbenchmark-dev) was not found"

# ---- 3. machine description ----
slug=$("$PY" tools/machine_info.py --slug) || die "tools/machine_info.py --slug failed"
[[ -n "$out" ]] || out=results/$slug/$(date +%Y%m%d-%H%M%S)-$sweep
mkdir -p "$out" || die "cannot create $out"
step 3 "machine description -> $out/machine.json (machine $slug)"
"$PY" tools/machine_info.py --build build --out "$out/machine.json" || die "tools/machine_info.py failed"

# ---- 4. machine limits (cached per machine: the measurement takes a while) ----
cache_dir=results/$slug
cpu_id=$("$PY" tools/machine_info.py --cpu-id)
if [[ -f "$cache_dir/limits.json" && -f "$cache_dir/limits.cpu" \
      && "$(cat "$cache_dir/limits.cpu")" == "$cpu_id" ]]; then
    step 4 "machine limits: reusing $cache_dir/limits.json (same CPU: $cpu_id)"
    [[ "$(realpath -m "$cache_dir/limits.json")" == "$(realpath -m "$out/limits.json")" ]] \
        || cp "$cache_dir/limits.json" "$out/limits.json"
else
    step 4 "machine limits: measuring (granattn-bench --machine) -> $out/limits.json"
    "$bench" --machine="$out/limits.json" >&2 || die "granattn-bench --machine failed"
    [[ -s "$out/limits.json" ]] || die "granattn-bench --machine wrote no $out/limits.json"
    if [[ "$sweep" != quick ]]; then
        mkdir -p "$cache_dir"
        cp "$out/limits.json" "$cache_dir/limits.json"
        echo "$cpu_id" >"$cache_dir/limits.cpu"
        log "machine limits cached in $cache_dir/limits.json"
    fi
fi

# ---- 5. the sweep ----
bench_args=(--sweep="$sweep" --limits="$out/limits.json"
            --benchmark_out="$out/bench.json" --benchmark_out_format=json
            --benchmark_repetitions="$reps")
[[ -z "$isa" ]] || bench_args+=(--isa="$isa")
# Real traces (the trace family): given, the committed subset, or (--quick)
# a small synthetic one.
if ((no_traces == 0)); then
    if [[ -z "$traces" && "$sweep" == quick ]]; then
        "$bench" --write-test-trace="$out/test.gatrace" >&2 || die "granattn-bench --write-test-trace failed"
        traces=$out/test.gatrace
    elif [[ -z "$traces" ]] && compgen -G "results/traces/*.gatrace*" >/dev/null; then
        traces=results/traces
    fi
    # the default sweep's time budget: at most 4 files, spread over N
    [[ -n "$trace_max" || "$sweep" != default ]] || trace_max=4
    [[ -z "$traces" ]] || bench_args+=(--traces="$traces" --trace-max="${trace_max:-0}")
fi
[[ "$sweep" == quick ]] || bench_args+=(--sgemm)   # blocked SGEMM vs OpenBLAS
step 5 "sweep: $bench ${bench_args[*]}"
rm -f "$out/bench.json"
set +e
"$bench" "${bench_args[@]}" 2>&1 | tee "$out/bench.log" >&2
bench_rc=${PIPESTATUS[0]}
set -e
((bench_rc == 0)) || die "granattn-bench exited with status $bench_rc (log: $out/bench.log)"
[[ -s "$out/bench.json" ]] || die "granattn-bench wrote no $out/bench.json (log: $out/bench.log)"

# ---- 6. the CPU attention peers (--peers) ----
if ((peers == 0)); then
    step 6 "peers: skipped (tools/sweep.sh --peers runs them)"
else
    step 6 "peers: tools/peers/setup.sh --only $peer_only (.venv-peers/)"
    set +e
    tools/peers/setup.sh --only "$peer_only"
    setup_rc=$?
    set -e
    if ((setup_rc == 3)); then
        log "peers: skipped (no peer could be installed; see .venv-peers/peers-status.tsv)"
    elif ((setup_rc != 0)); then
        die "tools/peers/setup.sh failed with status $setup_rc"
    else
        step 6 "peers: tools/peers/run.py ${peer_args[*]} -> $out/peers"
        set +e
        tools/peers/run.py "${peer_args[@]}" --out "$out/peers" --bench "$bench" \
            --limits "$out/limits.json" ${isa:+--isa "${isa##*,}"} --no-report
        peers_rc=$?
        set -e
        case $peers_rc in
        0) "$PY" tools/peers/report.py "$out/peers" --quiet || die "tools/peers/report.py failed" ;;
        3) log "peers: skipped (no peer usable; see .venv-peers/peers-status.tsv)" ;;
        *) die "tools/peers/run.py failed with status $peers_rc" ;;
        esac
    fi
fi

# ---- 7. summary ----
step 7 "summary -> $out/summary.md"
"$PY" tools/summary.py "$out" --plots --strict || die "tools/summary.py failed on $out"
log "done in $((SECONDS - start)) s: $out"
