#!/usr/bin/env bash
# tools/peers/setup.sh — installs the CPU attention peers of tools/peers/run.py
# into the project venv .venv-peers/ (git-ignored), at the versions pinned in
# tools/peers/pins.txt:
#   torch        PyTorch (pip; the Linux wheel from the default index pulls
#                ~5 GB of CUDA wheels, CPU use works; PEERS_TORCH_INDEX=URL
#                installs from a CPU-only wheel index instead when one is reachable)
#   ort          onnxruntime + onnx (pip)
#   openvino     OpenVINO (pip)
#   ggml         ggml's C sources from the llama-cpp-python sdist
#                (pip download --no-binary :all: --no-deps), built with CMake
#                (CPU backend only, GGML_NATIVE=ON, OpenMP, llamafile sgemm as in
#                llama.cpp's build), plus the driver tools/peers/ggml_attn.c,
#                checked with ggml_attn --selftest
# numpy (pinned) goes in with every Python peer (the inputs and the reference).
#
# Usage: tools/peers/setup.sh [--only LIST] [--venv DIR] [--help]
#   --only LIST  peers to install, comma-separated (torch, ort, openvino, ggml;
#                default: all four)
#   --venv DIR   the venv (default .venv-peers in the repository root)
# Idempotent and resumable: a peer already installed at its pinned version (for
# ggml: built from the same sdist and driver source) is left alone; pip keeps
# what it downloaded in its cache. A peer that cannot be installed (no network,
# no wheel for this platform, build failure) is skipped and reported, not fatal.
# Writes DIR/peers-status.tsv (peer, ok|skipped, version or reason); run.py
# reads it. Exit status: 0 when at least one requested peer is usable, 3 when
# none is, 2 on a bad command line. Progress and reasons go to stderr.
set -euo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
log() { echo "peers-setup: $*" >&2; }

root=$(cd "$(dirname "$0")/../.." && pwd)
venv=$root/.venv-peers only=torch,ort,openvino,ggml
while (($#)); do
    case "$1" in
    --only) [[ $# -ge 2 ]] || { log "--only needs a list"; exit 2; }; only=$2; shift ;;
    --only=*) only=${1#--only=} ;;
    --venv) [[ $# -ge 2 ]] || { log "--venv needs a directory"; exit 2; }; venv=$2; shift ;;
    --venv=*) venv=${1#--venv=} ;;
    -h|--help) usage; exit 0 ;;
    *) log "unknown option $1 (try --help)"; exit 2 ;;
    esac
    shift
done
IFS=, read -r -a want <<<"$only"
for p in "${want[@]}"; do
    case "$p" in torch|ort|openvino|ggml) ;; *) log "unknown peer '$p' (torch, ort, openvino, ggml)"; exit 2 ;; esac
done
((${#want[@]})) || { log "--only: empty list"; exit 2; }
venv=$(realpath -m -- "$venv")
py=$venv/bin/python3
logs=$venv/logs
status=$venv/peers-status.tsv

pin() {   # pin NAME: the pinned version from pins.txt
    awk -v n="$1" '$1 == n { print $2; found = 1 } END { exit !found }' "$root/tools/peers/pins.txt" \
        || { log "no pin for $1 in tools/peers/pins.txt"; exit 1; }
}

# ---- the venv (Debian's python3 + python3-venv; no system site packages, so
# Debian's PyTorch 1.13 and numpy do not mix in) ----
if [[ ! -x $py ]]; then
    log "creating $venv"
    if ! /usr/bin/python3 -m venv "$venv" >&2; then
        log "python3 -m venv failed (Debian: apt-get install python3-venv; tools/deps.sh installs it)"
        exit 3
    fi
fi
mkdir -p "$logs"
declare -A result=()
[[ -f $status ]] && while IFS=$'\t' read -r name st what; do result[$name]="$st	$what"; done <"$status"
write_status() {
    : >"$status.tmp"
    for k in torch ort openvino ggml; do
        [[ -n "${result[$k]:-}" ]] && printf '%s\t%s\n' "$k" "${result[$k]}" >>"$status.tmp"
    done
    mv "$status.tmp" "$status"
}

installed() {   # installed DIST VERSION: is DIST==VERSION in the venv?
    [[ "$("$py" -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' "$1" 2>/dev/null)" == "$2" ]]
}

# pip_peer NAME LOG SPEC... : pip install unless every SPEC (dist==ver) is there
pip_peer() {
    local name=$1 logf=$logs/$2.log; shift 2
    local need=0 s
    for s in "$@"; do installed "${s%%==*}" "${s##*==}" || need=1; done
    if ((need == 0)); then
        log "$name: already installed ($*)"
        result[$name]="ok	$*"; return 0
    fi
    log "$name: pip install $* (log: $logf)"
    local extra=()
    [[ $name == torch && -n "${PEERS_TORCH_INDEX:-}" ]] && extra=(--index-url "$PEERS_TORCH_INDEX")
    if "$py" -m pip install --disable-pip-version-check --progress-bar off "${extra[@]}" "$@" >"$logf" 2>&1; then
        result[$name]="ok	$*"
        log "$name: installed"
    else
        local why
        if grep -qE 'NewConnectionError|Connection refused|Temporary failure in name resolution|Name or service not known|Network is unreachable|Max retries exceeded|timed out|ProxyError' "$logf"; then
            why="pip cannot reach the package index (network)"
        elif grep -q 'from versions: none' "$logf"; then
            why="pip found no version at all on the package index (network down, or no wheel for this platform / Python)"
        elif grep -qE 'No matching distribution|Could not find a version' "$logf"; then
            why="no wheel of $* for this platform / Python"
        else
            why="pip install failed: $(grep -v '^\s*$' "$logf" | tail -1 | cut -c1-160)"
        fi
        result[$name]="skipped	$why (log: $logf)"
        log "$name: SKIPPED: $why (log: $logf)"
    fi
}

np=numpy==$(pin numpy)
for p in "${want[@]}"; do
    case "$p" in
    torch) pip_peer torch torch "torch==$(pin torch)" "$np" ;;
    ort) pip_peer ort ort "onnxruntime==$(pin onnxruntime)" "onnx==$(pin onnx)" "$np" ;;
    openvino) pip_peer openvino openvino "openvino==$(pin openvino)" "$np" ;;
    esac
    write_status
done

# ---- ggml from the llama-cpp-python sdist ----
build_ggml() {
    local ver tarball src gsrc gbuild stamp want_stamp logf=$logs/ggml.log
    ver=$(pin llama-cpp-python)
    src=$venv/src/llama_cpp_python-$ver
    gsrc=$src/vendor/llama.cpp/ggml
    gbuild=$venv/ggml-build
    stamp=$venv/ggml_attn.stamp
    want_stamp="llama-cpp-python $ver $(sha256sum "$root/tools/peers/ggml_attn.c" | cut -c1-16)"
    if [[ -x $venv/ggml_attn && -f $stamp && "$(cat "$stamp")" == "$want_stamp" ]]; then
        log "ggml: already built ($want_stamp)"
        result[ggml]="ok	llama-cpp-python==$ver (ggml $(cat "$venv/ggml.version" 2>/dev/null))"; return 0
    fi
    : >"$logf"
    if ! command -v cmake >/dev/null; then
        if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
            log "ggml: installing cmake (apt-get)"
            { apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive \
                apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends cmake; } >>"$logf" 2>&1 || true
        fi
        command -v cmake >/dev/null || { result[ggml]="skipped	cmake is missing (apt-get install cmake)"; return 1; }
    fi
    if [[ ! -d $gsrc ]]; then
        tarball=$venv/src/llama_cpp_python-$ver.tar.gz
        mkdir -p "$venv/src"
        if [[ ! -s $tarball ]]; then
            log "ggml: pip download --no-binary :all: --no-deps llama-cpp-python==$ver (the sdist, ~75 MB)"
            if ! "$py" -m pip download --disable-pip-version-check --progress-bar off --no-binary :all: \
                --no-deps "llama-cpp-python==$ver" -d "$venv/src" >>"$logf" 2>&1; then
                result[ggml]="skipped	pip download of the llama-cpp-python==$ver sdist failed (network? log: $logf)"
                return 1
            fi
        fi
        tar -xzf "$tarball" -C "$venv/src" >>"$logf" 2>&1 && [[ -d $gsrc ]] \
            || { result[ggml]="skipped	the sdist has no vendor/llama.cpp/ggml (log: $logf)"; return 1; }
    fi
    # The sdist leaves out ggml.pc.in, which ggml's standalone CMake build
    # configures (a pkg-config file we do not use): supply a minimal one.
    [[ -f $gsrc/ggml.pc.in ]] || printf 'Name: ggml\nDescription: ggml\nVersion: @GGML_VERSION@\nLibs: -lggml\n' >"$gsrc/ggml.pc.in"
    log "ggml: cmake build of $gsrc (CPU backend, GGML_NATIVE=ON; a few minutes; log: $logf)"
    if ! { cmake -S "$gsrc" -B "$gbuild" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
            -DGGML_NATIVE=ON -DGGML_CPU=ON -DGGML_OPENMP=ON -DGGML_LLAMAFILE=ON -DGGML_BLAS=OFF \
            -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_BUILD_TESTS=OFF \
            -DGGML_BUILD_EXAMPLES=OFF -DGGML_CCACHE=OFF \
            && cmake --build "$gbuild" -j"$(nproc)"; } >>"$logf" 2>&1; then
        result[ggml]="skipped	the CMake build of ggml failed (log: $logf)"; return 1
    fi
    local libs=("$gbuild"/src/libggml.a "$gbuild"/src/libggml-cpu.a "$gbuild"/src/libggml-base.a)
    if ! gcc -O2 -std=c11 -Wall -Wextra -I"$gsrc/include" "$root/tools/peers/ggml_attn.c" \
        -o "$venv/ggml_attn" "${libs[@]}" -fopenmp -lstdc++ -lm -lpthread >>"$logf" 2>&1; then
        result[ggml]="skipped	compiling tools/peers/ggml_attn.c failed (log: $logf)"; return 1
    fi
    if ! OMP_NUM_THREADS=1 "$venv/ggml_attn" --selftest >>"$logf" 2>&1; then
        result[ggml]="skipped	ggml_attn --selftest failed (log: $logf)"; return 1
    fi
    printf 'info\nquit\n' | "$venv/ggml_attn" --threads 1 | sed -n 's/^ok version=\([^ ]*\) commit=\([^ ]*\).*/\1 (\2)/p' >"$venv/ggml.version"
    echo "$want_stamp" >"$stamp"
    result[ggml]="ok	llama-cpp-python==$ver (ggml $(cat "$venv/ggml.version"))"
    log "ggml: built $venv/ggml_attn"
}
for p in "${want[@]}"; do
    [[ $p == ggml ]] || continue
    build_ggml || log "ggml: SKIPPED: ${result[ggml]#*	}"
    write_status
done

usable=0
for p in "${want[@]}"; do
    IFS=$'\t' read -r st what <<<"${result[$p]}"
    log "$(printf '%-9s %-8s %s' "$p" "$st" "$what")"
    [[ $st == ok ]] && usable=$((usable + 1))
done
((usable > 0)) || { log "no peer could be installed"; exit 3; }
exit 0
