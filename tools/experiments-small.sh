#!/usr/bin/env bash
# tools/experiments-small.sh — a small-scale version of the model experiments
# (issue "the full model", item 6) that fits in about an hour on 2 cores:
# configs/small.ini (d 128, 2+2 layers), MINUTES of training per run, two runs
# at a time on one thread each, every run evaluated on the test split (beam 4).
#
#   round 1: dense (all levels fine, cfg dense) | learned GPN, seed mode, lambda 0.01
#   round 2: learned GPN, renorm mode, lambda 0.01 | fixed uniform level, tau
#            calibrated on the dense model to the learned model's density
#   round 3: random level per pair with the learned model's level mix |
#            learned GPN, seed mode, lambda 0.03 (a second point of the
#            quality-density curve)
# Usage: tools/experiments-small.sh [--minutes M] [--out DIR] [--results DIR]
# Needs data/ (tools/prepare-data.sh) and a release build (build/model/granattn).
# Writes RESULTS/results.tsv (one line per run) plus every run's eval JSON,
# config and log.tsv; checkpoints stay in OUT (not committed).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=15 out=runs/small results=results/xeon-2c/model-small
while (($#)); do
    case "$1" in
    --minutes) minutes=$2; shift ;;
    --out) out=$2; shift ;;
    --results) results=$2; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "experiments-small: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
G=build/model/granattn
[[ -x $G ]] || { echo "experiments-small: $G missing (build first)" >&2; exit 1; }
[[ -s data/tok/train.bin ]] || { echo "experiments-small: run tools/prepare-data.sh first" >&2; exit 1; }
mkdir -p "$out" "$results"

train() { # NAME ARGS...
    local name=$1; shift
    echo "[$(date +%T)] train $name: $*" >&2
    $G train --config configs/small.ini --out "$out/$name" --threads 1 \
        --set max_minutes="$minutes" "$@" >"$out/$name.train.log" 2>&1
}
evaluate() { # NAME
    echo "[$(date +%T)] eval $1" >&2
    if [[ ! -s "$out/$1/best.ckpt" ]]; then
        echo "experiments-small: $1 has no best.ckpt (training failed: $out/$1.train.log)" >&2
        return 0
    fi
    $G eval --model "$out/$1/best.ckpt" --split test --beam 4 --threads 1 \
        --json "$out/$1/eval.json" --hyp "$out/$1/hyp-test.txt" >"$out/$1.eval.log" 2>&1 \
        || { echo "experiments-small: eval of $1 failed ($out/$1.eval.log)" >&2; return 0; }
    cp "$out/$1/eval.json" "$results/$1.eval.json"
    cp "$out/$1/log.tsv" "$results/$1.log.tsv"
    cp "$out/$1/config.ini" "$results/$1.config.ini"
}
jget() { /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

# round 1
train dense --set dense=true & train seed-l0.01 --set lambda=0.01 & wait
evaluate dense & evaluate seed-l0.01 & wait
rho=$(jget "$out/seed-l0.01/eval.json" 'd["density"]')
mix=$(jget "$out/seed-l0.01/eval.json" '",".join("%.4f" % l["fraction"] for l in d["levels"])')
$G calibrate --model "$out/dense/best.ckpt" --density "$rho" --mix "$mix" >"$results/calibrate.txt" 2>&1
tau=$(sed -nE 's/.*fixed_tau = ([0-9.eE+-]+).*/\1/p' "$results/calibrate.txt" | sed -n 1p)
echo "[$(date +%T)] learned density $rho, mix $mix -> fixed_tau $tau" >&2

# round 2
train renorm-l0.01 --set norm=renorm --set lambda=0.01 & train fixed-match --set gpn=fixed --set fixed_tau="$tau" & wait
evaluate renorm-l0.01 & evaluate fixed-match & wait

# round 3
train random-mix --set gpn=random --set random_probs="$mix" & train seed-l0.03 --set lambda=0.03 & wait
evaluate random-mix & evaluate seed-l0.03 & wait

{
    printf 'run\tBLEU\tchrF\tdensity\tlevels\tsent_per_s\tsteps\n'
    for f in "$results"/*.eval.json; do
        jget "$f" '"\t".join([sys.argv[1].split("/")[-1][:-10], "%.2f" % d["bleu"], "%.2f" % d["chrf"], "%.3f" % d["density"], "/".join("%.0f" % (100*l["fraction"]) for l in d.get("levels", [])) or "-", "%.1f" % d["sentences_per_second"], str(d["step"])])'
    done
} >"$results/results.tsv"
column -t -s $'\t' "$results/results.tsv"
