#!/bin/bash
# run.sh — the measurements of this directory (issue 14 item 2 on the Zen 4 VM), from the
# repository root after `meson setup build -Dbuildtype=release && ninja -C build`:
#   results/epyc-2c/streaming/run.sh old-vs-new OLD_BENCH OUT.tsv   # OLD_BENCH: granattn-bench of 1605ba5
#   results/epyc-2c/streaming/run.sh loads OUT.tsv                  # GRANATTN_AVX512_LOADS whole vs halves
#   results/epyc-2c/streaming/run.sh two-threads OUT.json           # 1 vs 2 threads (tools/two_threads.py)
# Rows of the .tsv files: round, build (or tuning), case, time (µs: CPU time at 1 thread),
# frac_limit (against results/epyc-2c/limits.json).  Both sides of a comparison run
# alternately, per N, two rounds, so that the shared box's noise hits both.
set -euo pipefail
new=build/bench/granattn-bench
lim=results/epyc-2c/limits.json
one() { # BIN N LABEL ROUND [ENV]  -> rows on stdout
  env ${5:-} "$1" --limits=$lim --family=attend --isa=${ISA:-avx512,avx2} --N="$2" --H=4,8 \
      --mix=dense,70-20-10 --mode=seed --threads=1 --place=compact --cache=hot,cold --path=full \
      --benchmark_min_time=0.2 2>/dev/null | grep -E '^attend' | sed -E 's/ +/ /g' |
  awk -v b="$3" -v r="$4" '{n=$1; sub(/attend\/isa:/,"",n);
      gsub(/\/dh:64|\/dist:gauss2|\/path:full|\/threads:1|\/place:compact|mix:|mode:/,"",n);
      fl=""; for(i=1;i<=NF;i++) if($i ~ /^frac_limit=/){fl=$i; sub(/frac_limit=/,"",fl); sub(/\/s/,"",fl)};
      printf "%s\t%s\t%s\t%s\t%s\n", r, b, n, $2, fl}'
}
case "${1:-}" in
old-vs-new)
  old=${2:?OLD_BENCH}; out=${3:?OUT.tsv}; : >"$out"
  for r in 1 2; do for N in 1024 4096 16384 65536; do
    one "$old" $N old $r >>"$out"; one "$new" $N new $r >>"$out"; done; done ;;
loads)
  out=${2:?OUT.tsv}; : >"$out"
  for r in 1 2; do for N in 1024 4096 16384 65536; do
    ISA=avx512 one "$new" $N whole $r GRANATTN_AVX512_LOADS=whole >>"$out"
    ISA=avx512 one "$new" $N halves $r GRANATTN_AVX512_LOADS=halves >>"$out"; done; done ;;
two-threads)
  out=${2:?OUT.json}
  "$new" --limits=$lim --family=attend --isa=avx512 --N=64,256,1024,4096,16384,65536 --H=4,8 \
    --mix=dense,70-20-10 --mode=seed --path=full --threads=1,2 --place=compact --cache=hot,cold \
    --step-min --benchmark_min_time=0.05 --benchmark_repetitions=5 \
    --benchmark_enable_random_interleaving=true --benchmark_out_format=json \
    --benchmark_out="$out" >/dev/null ;;
*) echo "usage: $0 old-vs-new OLD_BENCH OUT.tsv | loads OUT.tsv | two-threads OUT.json" >&2; exit 2 ;;
esac
