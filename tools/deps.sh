#!/usr/bin/env bash
# tools/deps.sh — install the Debian 12 packages granattn needs, if missing.
# Idempotent: does nothing (and needs no root) when everything is present.
# Usage: tools/deps.sh [--bench]   (--bench adds PyTorch + plotting for the sweep)
set -euo pipefail

pkgs=(meson ninja-build pkg-config gcc g++ clang libclang-rt-14-dev
      libbenchmark-dev libsleef-dev libhwloc-dev libcriterion-dev hwloc libopenblas-dev
      libopenmpi-dev openmpi-bin libsentencepiece-dev python3-sentencepiece python3-venv
      python3 python3-numpy python3-scipy python3-matplotlib python3-torch)
if [[ "${1:-}" == "--bench" ]]; then
    # libopenblas0-pthread: without it python3-torch falls back to the
    # reference BLAS (~2 GFLOP/s) and the PyTorch peer numbers mean nothing
    pkgs+=(libopenblas0-pthread)
fi

missing=()
for p in "${pkgs[@]}"; do
    grep -q "install ok installed" <<<"$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
    exit 0
fi
echo "deps: installing ${missing[*]}" >&2
if [[ $(id -u) -ne 0 ]]; then
    echo "deps: missing packages and not root; run as root: apt-get install ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
