#!/usr/bin/env bash
# tools/prepared-speed.sh CKPT [REPS] — decoding speed with and without the
# prepared keys of the decoder's cross-attention (docs/SPEC.md §7).
#
# Translates, beam 4, one thread, (a) the first 200 test sentences and (b)
# the passage sets data/passages/test-{256,1024,4096}.en (tools/corpus/passages.py;
# --max-len raised so they fit), REPS times (default 2) in the interleaved
# order prepared (Z exact, the default) / --no-prepared / --prep-z bounded.
# Prints one line per run: decode wall time and sentences/s (translate
# --timing), the thread CPU time spent in the cross-attention (robust to a
# loaded machine), the share of keys whose exact score was computed, and
# the process CPU time (user + sys); checks that
# the outputs with and without prepared keys are identical.
# Inputs are encoded to ids first, so no Python runs inside a timed process.
set -euo pipefail
if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
    [[ $# -ge 1 ]] && exit 0 || exit 2
fi
CKPT=$1 REPS=${2:-2}
cd "$(dirname "$0")/.."
BIN=${GRANATTN_BIN:-build/model/granattn}
PY=/usr/bin/python3
[[ -x $BIN && -f $CKPT && -f data/spm/spm.model ]] || { echo "prepared-speed: need $BIN, $CKPT and data/spm" >&2; exit 1; }
[[ -f data/passages/test-4096.en ]] || "$PY" tools/corpus/passages.py >/dev/null
tmp=$(mktemp -d "${TMPDIR:-/tmp}/prepared-speed.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
head -200 data/corpus/test.en >"$tmp/test200.en"
sets=("test200:$tmp/test200.en:0")
for n in 256 1024 4096; do sets+=("p$n:data/passages/test-$n.en:$((2 * n + 64))"); done
for s in "${sets[@]}"; do
    IFS=: read -r tag file ml <<<"$s"
    "$PY" tools/corpus/spm.py --model data/spm/spm.model encode "$file" >"$tmp/$tag.ids"
    extra=()
    ((ml > 0)) && extra=(--max-len "$ml")
    for rep in $(seq "$REPS"); do
        for mode in exact off bounded; do
            case $mode in exact) o=();; off) o=(--no-prepared);; bounded) o=(--prep-z bounded);; esac
            /usr/bin/time -f "%U %S" -o "$tmp/time" "$BIN" translate --model "$CKPT" --ids \
                --input "$tmp/$tag.ids" --output-ids --beam 4 --threads 1 --timing "${o[@]}" \
                "${extra[@]}" --output "$tmp/$tag-$mode.out" 2>"$tmp/err"
            read -r u s <"$tmp/time"
            printf '%s\trep %s\t%s\t%s\tcpu %.2fs\n' "$tag" "$rep" "$mode" \
                "$(tail -1 "$tmp/err" | sed 's/^granattn translate: //')" "$(echo "$u + $s" | bc)"
        done
    done
    cmp -s "$tmp/$tag-exact.out" "$tmp/$tag-off.out" && echo "$tag: outputs identical with and without prepared keys" \
        || echo "$tag: OUTPUTS DIFFER with and without prepared keys"
    echo "$tag: bounded Z changes $(diff "$tmp/$tag-exact.out" "$tmp/$tag-bounded.out" | grep -c '^<' || true) of $(wc -l <"$tmp/$tag.ids") outputs"
done
