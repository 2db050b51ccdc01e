#!/usr/bin/env bash
# tools/mpi/scaling.sh — the measurements behind results/<machine>/mpi-scaling.md:
# step time of `granattn train` with 1 process (1 and 2 threads) and with
# mpirun -np 2 (1 thread per rank) for configs tiny and small (default: 1
# process x 2 threads and 2 ranks), and MPI_Allreduce time and bandwidth for
# the models' gradient sizes (tools/mpi/allreduce_bench.c).
#
#   tools/mpi/scaling.sh [--build DIR] [--out DIR] [--rounds N]
#
# Step time = (wall time of a run of N2 steps - that of N1 steps) / (N2 - N1):
# start-up, data loading and the final dev evaluation cancel (eval_every and
# ckpt_every are set beyond the run).  The settings run interleaved, round by
# round, so a noisy phase of the shared machine hits all of them; the table
# takes the median over rounds.  Synthetic data (tests/test_mpi.sh's toy task,
# sentence lengths 5..40).  Output (default results/<slug>/mpi-scaling/):
# steps.tsv, allreduce.tsv, train-mpi.txt (rank 0's allreduce timing lines),
# load.txt (load average and busiest processes before and after).
# tools/mpi/project.py DIR turns them into the note's tables.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=build ROUNDS=3 OUT=
while (($#)); do
    case "$1" in
    --build) BUILD=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    *) echo "scaling.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
OUT=${OUT:-results/$(python3 tools/machine_info.py --slug)/mpi-scaling}
BIN=$PWD/$BUILD/model/granattn
mkdir -p "$OUT"
T=$(mktemp -d "${TMPDIR:-/tmp}/granattn-scaling.XXXXXX")
trap 'rm -rf "$T"' EXIT
if [[ $(id -u) -eq 0 ]]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
MPIRUN=(mpirun --oversubscribe --bind-to none --mca btl self,vader)

load() { { date -u; uptime; ps -eo pcpu,comm --sort=-pcpu | sed -n 1,6p; echo; } >>"$OUT/load.txt"; }
: >"$OUT/load.txt"
load

python3 tests/toy_data.py "$T/tok" train:3000 dev:16 --ids 10:4000 --len 5:41

# run R THREADS CONFIG STEPS: wall seconds of one training run
run() {
    local r=$1 th=$2 cfg=$3 n=$4 t0 t1
    local args=(train --config "configs/$cfg.ini" --out "$T/run" --set data_dir="$T/tok"
                --set max_steps="$n" --set eval_every=100000 --set ckpt_every=100000
                --set dev_max_sents=16 --threads "$th" --quiet)
    rm -rf "$T/run"
    t0=$(date +%s.%N)
    if ((r == 1)); then
        "$BIN" "${args[@]}" >"$T/o.txt" 2>&1
    else
        "${MPIRUN[@]}" -np "$r" "$BIN" "${args[@]}" >"$T/o.txt" 2>&1
        grep "^mpi: rank 0 per step" "$T/o.txt" | sed "s/^/$cfg n=$n: /" >>"$OUT/train-mpi.txt"
    fi
    t1=$(date +%s.%N)
    python3 -c "print($t1 - $t0)"
}

declare -A N1=([tiny]=10 [small]=4 [default]=2) N2=([tiny]=110 [small]=24 [default]=7)
printf 'config\tround\tranks\tthreads\tsteps\tstep_ms\n' >"$OUT/steps.tsv"
: >"$OUT/train-mpi.txt"
for round in $(seq 1 "$ROUNDS"); do
    for cfg in tiny small default; do
        settings=("1 1" "1 2" "2 1")
        # default: the projection's baseline, and 2 ranks for the time
        # every rank spends in clipping + AdamW (rank 0's "mpi:" line)
        [[ $cfg == default ]] && settings=("1 2" "2 1")
        for setting in "${settings[@]}"; do
            set -- $setting
            a=$(run "$1" "$2" "$cfg" "${N1[$cfg]}")
            b=$(run "$1" "$2" "$cfg" "${N2[$cfg]}")
            ms=$(python3 -c "print('%.2f' % (1e3 * ($b - $a) / (${N2[$cfg]} - ${N1[$cfg]})))")
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$cfg" "$round" "$1" "$2" "$((N2[$cfg] - N1[$cfg]))" "$ms" | tee -a "$OUT/steps.tsv"
        done
    done
done

# parameter counts -> gradient bytes; allreduce of those sizes (+ 4 KiB: latency)
sizes="4096"
for cfg in tiny small default; do
    np=$("$BIN" train --config "configs/$cfg.ini" --out "$T/p$cfg" --set data_dir="$T/tok" \
         --set max_steps=1 --threads 1 2>&1 | sed -nE 's/.* ([0-9]+) parameters.*/\1/p')
    echo "$cfg: $np parameters" | tee -a "$OUT/load.txt"
    sizes="$sizes $((np * 4))"
done
mpicc -O2 -o "$T/allreduce_bench" tools/mpi/allreduce_bench.c
"${MPIRUN[@]}" -np 2 "$T/allreduce_bench" $sizes | tee "$OUT/allreduce.tsv"
load
