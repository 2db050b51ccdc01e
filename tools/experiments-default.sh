#!/usr/bin/env bash
# tools/experiments-default.sh — the model experiments of issue "the full
# model" (item 6) at the default config (configs/default.ini: d 256, H 4,
# FFN 1024, 3+3 layers), fitted to about 2.5 hours on the 2-core machine.
#
# Protocol (every run on one thread, two runs at a time):
#   phase trunk   (TRUNK_STEPS steps each, in parallel; ~95 minutes at 2000)
#     dense-trunk          default.ini with dense attention, from scratch
#     seed-l0.01-scratch   default.ini as is: learned GPN (seed, lambda 0.01)
#                          trained jointly with the model from scratch
#   phase branches: every branch starts from dense-trunk/best.ckpt
#     (granattn train --init) and trains FT_STEPS more steps with the same
#     fine-tuning schedule (warm-up 100, lr 5e-4, inverse sqrt), so all
#     variants get exactly the same compute on top of the same trunk:
#     round 1  ft-dense (dense continued) | ft-seed-l0.01 (learned GPN)
#     round 2  ft-renorm-l0.01 | ft-seed-l0.03 (points of the quality-density
#              curve); the fixed-level tau is calibrated on ft-dense to
#              ft-seed-l0.01's test density
#     round 3  ft-fixed-match (one tau for every pair) |
#              ft-random-match (random level per pair, ft-seed-l0.01's mix)
#   evals: test split, beam 4, one thread; branches use last.ckpt (same step
#     budget for all), the two trunk-phase runs their best.ckpt (dev loss).
#
# Usage: tools/experiments-default.sh [--phase all|trunk|branches|evals]
#            [--trunk-steps N] [--ft-steps N] [--out DIR] [--results DIR]
#            [--config FILE]   (default configs/default.ini; tiny.ini for a dry run)
# Needs data/ (tools/prepare-data.sh) and a release build (build/model/granattn).
# Writes RESULTS/results.tsv plus each run's eval JSON, config and log.tsv;
# checkpoints stay in OUT (not committed).
set -euo pipefail
cd "$(dirname "$0")/.."
config=configs/default.ini phase=all trunk_steps=2000 ft_steps=300 out=runs/default results=results/xeon-2c/model-default
while (($#)); do
    case "$1" in
    --phase) phase=$2; shift ;;
    --trunk-steps) trunk_steps=$2; shift ;;
    --ft-steps) ft_steps=$2; shift ;;
    --out) out=$2; shift ;;
    --results) results=$2; shift ;;
    --config) config=$2; shift ;;
    -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "experiments-default: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
case "$phase" in all|trunk|branches|evals) ;; *) echo "experiments-default: --phase $phase?" >&2; exit 2 ;; esac
G=build/model/granattn
[[ -x $G ]] || { echo "experiments-default: $G missing (build first)" >&2; exit 1; }
[[ -s data/tok/train.bin ]] || { echo "experiments-default: run tools/prepare-data.sh first" >&2; exit 1; }
mkdir -p "$out" "$results"
log() { echo "[$(date +%T)] $*" >&2; }

trunk_train() { # NAME ARGS...
    local name=$1; shift
    log "train $name: $*"
    $G train --config "$config" --out "$out/$name" --threads 1 \
        --set max_steps="$trunk_steps" --set max_minutes=0 "$@" >"$out/$name.train.log" 2>&1
}
ft_train() { # NAME ARGS...
    local name=$1; shift
    log "fine-tune $name: $*"
    $G train --config "$config" --out "$out/$name" --threads 1 \
        --init "$out/dense-trunk/best.ckpt" --set warmup=100 --set lr=5e-4 \
        --set max_steps="$ft_steps" --set max_minutes=0 --set eval_every=100 \
        --set ckpt_every=100 "$@" >"$out/$name.train.log" 2>&1
}
evaluate() { # NAME CKPT
    log "eval $1 ($2)"
    if [[ ! -s "$out/$1/$2" ]]; then
        echo "experiments-default: $1 has no $2 (training failed: $out/$1.train.log)" >&2
        return 0
    fi
    $G eval --model "$out/$1/$2" --split test --beam 4 --threads 1 \
        --json "$out/$1/eval.json" --hyp "$out/$1/hyp-test.txt" >"$out/$1.eval.log" 2>&1 \
        || { echo "experiments-default: eval of $1 failed ($out/$1.eval.log)" >&2; return 0; }
    cp "$out/$1/eval.json" "$results/$1.eval.json"
    cp "$out/$1/log.tsv" "$results/$1.log.tsv"
    cp "$out/$1/config.ini" "$results/$1.config.ini"
}
jget() { /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

if [[ $phase == all || $phase == trunk ]]; then
    trunk_train dense-trunk --set dense=true & trunk_train seed-l0.01-scratch & wait
fi

if [[ $phase == all || $phase == branches ]]; then
    [[ -s $out/dense-trunk/best.ckpt ]] || { echo "experiments-default: no $out/dense-trunk/best.ckpt (run --phase trunk)" >&2; exit 1; }
    ft_train ft-dense --set dense=true & ft_train ft-seed-l0.01 --set lambda=0.01 & wait
    evaluate ft-dense last.ckpt & evaluate ft-seed-l0.01 last.ckpt & wait
    rho=$(jget "$out/ft-seed-l0.01/eval.json" 'd["density"]')
    mix=$(jget "$out/ft-seed-l0.01/eval.json" '",".join("%.4f" % l["fraction"] for l in d["levels"])')
    $G calibrate --model "$out/ft-dense/last.ckpt" --density "$rho" --mix "$mix" >"$results/calibrate.txt" 2>&1
    tau=$(sed -nE 's/.*fixed_tau = ([0-9.eE+-]+).*/\1/p' "$results/calibrate.txt" | sed -n 1p)
    log "learned density $rho, mix $mix -> fixed_tau $tau"
    ft_train ft-renorm-l0.01 --set norm=renorm --set lambda=0.01 & ft_train ft-seed-l0.03 --set lambda=0.03 & wait
    ft_train ft-fixed-match --set gpn=fixed --set fixed_tau="$tau" &
    ft_train ft-random-match --set gpn=random --set random_probs="$mix" &
    evaluate ft-renorm-l0.01 last.ckpt; evaluate ft-seed-l0.03 last.ckpt; wait
fi

if [[ $phase == all || $phase == branches || $phase == evals ]]; then
    evaluate ft-fixed-match last.ckpt & evaluate ft-random-match last.ckpt & wait
    evaluate dense-trunk best.ckpt & evaluate seed-l0.01-scratch best.ckpt & wait
fi

{
    printf 'run\tBLEU\tchrF\tdensity\tlevels\tsent_per_s\tstep\n'
    for f in "$results"/*.eval.json; do
        jget "$f" '"\t".join([sys.argv[1].split("/")[-1][:-10], "%.2f" % d["bleu"], "%.2f" % d["chrf"], "%.3f" % d["density"], "/".join("%.0f" % (100*l["fraction"]) for l in d.get("levels", [])) or "-", "%.1f" % d["sentences_per_second"], str(d["step"])])'
    done
} >"$results/results.tsv"
column -t -s $'\t' "$results/results.tsv"
