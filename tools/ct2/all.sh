#!/usr/bin/env bash
# tools/ct2/all.sh — the whole decode comparison of results/<machine>/decode-vs-ct2/
# in one run: four tools/ct2/compare.sh calls, rows merged into one results.tsv.
#
#   tools/ct2/all.sh DENSE LEARNED PASSAGE_DENSE PASSAGE_LEARNED [--out DIR] [--quick]
#
#   DENSE            dense sentence-level checkpoint: granattn and CTranslate2,
#                    test split, threads 1 and 2, batch 1 and 32, beam 4
#   LEARNED          learned-GPN checkpoint of the same trunk (e.g. models/default.ckpt):
#                    granattn only (CTranslate2 can run it only dense), same grid
#   PASSAGE_DENSE    dense model fine-tuned on data/windows (tools/corpus/windows.py):
#                    both engines, the windows test set (first 60 passages), 1 thread,
#                    batch 1 and 32
#   PASSAGE_LEARNED  learned model fine-tuned on data/windows: granattn only, same
#   --quick          20 sentences / 10 passages, 1 repetition (a smoke run)
# Each call interleaves the engines and repeats 3 times (medians); the machine
# should be idle (the README of each call records the load average).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ ${1:-} == -h || ${1:-} == --help || $# -lt 4 ]]; then
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
    [[ ${1:-} == -h || ${1:-} == --help ]] && exit 0 || exit 2
fi
dense=$1 learned=$2 pdense=$3 plearned=$4; shift 4
out=() lim=() plim=(--limit 60) reps=(--reps 3)
while (($#)); do
    case "$1" in
    --out) out=(--out "$2"); shift ;;
    --quick) lim=(--limit 20) plim=(--limit 10) reps=(--reps 1) ;;
    *) echo "all.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
for f in "$dense" "$learned" "$pdense" "$plearned"; do
    [[ -f $f ]] || { echo "all.sh: $f: no such checkpoint" >&2; exit 2; }
done
C=tools/ct2/compare.sh
step() { echo "[$(date +%T)] all.sh: $*" >&2; }
step "1/4 dense, test split, both engines"
$C --model "$dense" --name dense --set test --threads 1,2 --batch 1,32 "${reps[@]}" "${lim[@]}" "${out[@]}"
step "2/4 learned, test split, granattn"
$C --model "$learned" --name learned --engines granattn --set test --threads 1,2 --batch 1,32 \
    "${reps[@]}" "${lim[@]}" "${out[@]}"
step "3/4 passage dense, windows, both engines"
$C --model "$pdense" --name passage-dense --set windows --threads 1 --batch 1,32 "${reps[@]}" \
    "${plim[@]}" "${out[@]}"
step "4/4 passage learned, windows, granattn"
$C --model "$plearned" --name passage-learned --engines granattn --set windows --threads 1 \
    --batch 1,32 "${reps[@]}" "${plim[@]}" "${out[@]}"
step "done"
