#!/bin/bash
# run.sh — the measurements of this directory (issue 14 items 2 and 4), from the
# repository root after `meson setup build -Dbuildtype=release && ninja -C build`:
#   results/xeon-2c/two-threads/run.sh OUTDIR [BASE_BENCH]
# BASE_BENCH: granattn-bench of the commit before the key split (0df37a1) built
# with this branch's bench/ files, for --step-min (optional; its rows are
# labelled "base", interleaved round by round with this build's "new").
# Writes OUTDIR/{limits.json, cross-*.json, big-*.json, lim-*.json}; the tables
# of README.md come from tools/two_threads.py (commands at the end).
set -euo pipefail
out=${1:?usage: run.sh OUTDIR [BASE_BENCH]}
base=${2:-}
new=build/bench/granattn-bench
mkdir -p "$out"
common=(--isa=avx512 --mode=seed --path=full --benchmark_out_format=json)

echo "1/4 machine limits" >&2
$new --machine="$out/limits.json" > /dev/null

echo "2/4 small-work crossover (rule off: GRANATTN_STEP_MIN_WORK=0)" >&2
for r in 1 2; do
  GRANATTN_STEP_MIN_WORK=0 $new --family=attend "${common[@]}" --N=64,128,256,512,1024,2048,4096 \
    --H=1,4,8 --mix=dense,70-20-10 --threads=1,2 --cache=hot --step-min \
    --benchmark_min_time=0.01 --benchmark_repetitions=5 --benchmark_out="$out/cross-r$r.json" > /dev/null
done

builds=(new)
[ -n "$base" ] && builds=(base new)
bin_of() { if [ "$1" = base ]; then echo "$base"; else echo "$new"; fi; }
stepmin_of() { echo "--step-min"; }

echo "2b/4 the same with the rule on (default), and the sparse split on / off" >&2
for r in 1 2; do
  $new --family=attend "${common[@]}" --N=64,256,1024 --H=1,4,8 --mix=dense,70-20-10 \
    --threads=1,2 --cache=hot --step-min --benchmark_min_time=0.01 --benchmark_repetitions=5 \
    --benchmark_out="$out/ruleon-r$r.json" > /dev/null
  for v in split nosplit; do
    GRANATTN_STEP_SPLIT=$([ $v = split ] && echo 1 || echo 0) $new --family=attend "${common[@]}" \
      --N=1024,4096,16384 --H=1,3,4,8 --mix=70-20-10 --threads=1,2 --cache=hot --step-min \
      --benchmark_min_time=0.01 --benchmark_repetitions=5 --benchmark_out="$out/sparse-$v-r$r.json" > /dev/null
  done
done

echo "3/4 large N, 1 vs 2 threads" >&2
for r in 1 2; do
  for b in "${builds[@]}"; do
    $(bin_of $b) --family=attend "${common[@]}" --N=4096,16384,65536 --H=1,4,8 \
      --mix=dense,70-20-10 --threads=1,2 --cache=hot $(stepmin_of $b) --benchmark_min_time=0.02 \
      --benchmark_repetitions=4 --benchmark_out="$out/big2-$b-hot-r$r.json" > /dev/null
  done
done
for b in "${builds[@]}"; do
  $(bin_of $b) --family=attend "${common[@]}" --N=4096,65536 --H=1,4 --mix=dense,70-20-10 \
    --threads=1,2 --cache=cold $(stepmin_of $b) --benchmark_min_time=0.02 \
    --benchmark_repetitions=4 --benchmark_out="$out/big-$b-cold.json" > /dev/null
done

echo "4/4 one query, 1 thread, fraction of the bound" >&2
for r in 1 2; do
  for b in "${builds[@]}"; do
    $(bin_of $b) --family=attend "${common[@]}" --N=1024,4096,16384,65536 --H=4,8 \
      --mix=dense,70-20-10 --threads=1 --cache=hot --limits="$out/limits.json" \
      --benchmark_min_time=0.05 --benchmark_repetitions=3 --benchmark_out="$out/lim-$b-hot-r$r.json" > /dev/null
    $(bin_of $b) --family=attend "${common[@]}" --N=1024,4096,16384,65536 --H=4 \
      --mix=dense,70-20-10 --threads=1 --cache=cold --limits="$out/limits.json" \
      --benchmark_min_time=0.05 --benchmark_repetitions=3 --benchmark_out="$out/lim-$b-cold-r$r.json" > /dev/null
  done
done

lab() { case $(basename "$1") in *-base-*) echo base ;; *) echo new ;; esac; }
args() { for f in "$@"; do printf '%s=%s ' "$(lab "$f")" "$f"; done; }
echo "tables:" >&2
echo "  tools/two_threads.py $(for f in "$out"/cross-r*.json; do printf 'rule-off=%s ' "$f"; done)" >&2
echo "  tools/two_threads.py rule-on=$out/ruleon-r1.json rule-on=$out/ruleon-r2.json" >&2
echo "  tools/two_threads.py $(for f in "$out"/sparse-*.json; do case $f in *nosplit*) l=nosplit ;; *) l=split ;; esac; printf '%s=%s ' $l "$f"; done)" >&2
echo "  tools/two_threads.py $(args "$out"/big*.json)" >&2
echo "  tools/two_threads.py --frac $(args "$out"/lim-*.json)" >&2
