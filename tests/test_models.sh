#!/usr/bin/env bash
# tests/test_models.sh — the weights handed to users (models/) and the tool
# that makes them (tools/release-model.py).
#
#   tests/test_models.sh [GRANATTN_BINARY]   (default: build/model/granattn)
#
#  1. release-model.py on a checkpoint of a short tiny-config run: the copy
#     has CONFIG, STATE, PARAMS and NOTES only, no machine path in its config,
#     is smaller, and translates (ids in, ids out, greedy and beam 4) exactly
#     as the original does;
#  2. release-model.py on a file that is not a checkpoint, a cut checkpoint
#     and a missing file: exit 2 with a message;
#  3. models/default.ckpt (the committed default model): loads, has no Adam
#     moments and no machine path, is at most 32 MB, and translates held-out
#     id lines (models/smoke.en.ids) to non-empty outputs of valid ids;
#     models/spm.model turns text into ids that round-trip, and translate
#     --model models/default.ckpt takes and gives text with it.
# Ends with the line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/model/granattn}
PY=/usr/bin/python3
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1"; [[ -n "${2:-}" ]] && sed 's/^/       | /' <<<"$2" | sed -n 1,20p; }
if [[ ! -x "$BIN" ]]; then
    echo "FAIL - $BIN not found"; echo "0 passed, 1 failed"; exit 1
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/granattn-models.XXXXXX")
trap 'rm -rf "$T"' EXIT

# Toy task (tests/toy_data.py): target = source ids + 100, reversed.
"$PY" tests/toy_data.py "$T/tok" train:400 dev:30 --seed 11 --extra "$T/in.ids:20" ||
    { echo "FAIL - cannot make data"; echo "0 passed, 1 failed"; exit 1; }

# ckpt_info FILE: "bytes sections abs default": the section tags (comma
# separated), whether a config value is an absolute path (a machine's path),
# whether data_dir is the default data/tok
ckpt_info() {
    "$PY" - "$1" <<'EOF' 2>&1
import re, struct, sys
b = open(sys.argv[1], "rb").read()
off, tags, cfg = 64, [], b""
while off < len(b):
    tag = b[off:off + 8].rstrip(b"\0").decode()
    n = struct.unpack_from("<Q", b, off + 8)[0]
    if tag == "CONFIG":
        cfg = b[off + 16:off + 16 + n]
    tags.append(tag)
    off += 16 + n + (-n % 8)
print(len(b), ",".join(tags), re.search(rb"(?m)= */", cfg) is not None,
      b"data_dir = data/tok\n" in cfg)
EOF
}

# ---------------------------------------------------------------- 1
if out=$("$BIN" train --config configs/tiny.ini --out "$T/run" --set data_dir="$T/tok" --set max_steps=30 \
        --threads 1 --quiet 2>&1); then
    ok "tiny run for the release test"
else
    bad "tiny run failed" "$out"
fi
if out=$("$PY" tools/release-model.py "$T/run/last.ckpt" "$T/rel.ckpt" --note "test note" 2>&1); then
    ok "release-model.py: $out"
else
    bad "release-model.py failed" "$out"
fi
sections=$(ckpt_info "$T/rel.ckpt"; ckpt_info "$T/run/last.ckpt")
read -r relsize reltags relabs reldef osize _ _ _ < <(tr '\n' ' ' <<<"$sections")
if [[ $reltags == CONFIG,STATE,PARAMS,NOTES && $relabs == False && $reldef == True ]] && ((relsize < osize)); then
    ok "release copy: sections $reltags, data_dir reset, $relsize < $osize bytes"
else
    bad "release copy has the wrong contents" "$sections"
fi
for beam in 1 4; do
    # (an undertrained model may print empty lines: compare whole files)
    "$BIN" translate --model "$T/run/last.ckpt" --ids --output-ids --beam $beam --threads 1 \
        --input "$T/in.ids" >"$T/a.txt" 2>&1; ra=$?
    "$BIN" translate --model "$T/rel.ckpt" --ids --output-ids --beam $beam --threads 1 \
        --input "$T/in.ids" >"$T/b.txt" 2>&1; rb=$?
    a=$(cat "$T/a.txt"); b=$(cat "$T/b.txt")
    if ((ra == 0 && rb == 0)) && [[ $(wc -l <"$T/a.txt") -eq 20 ]] && cmp -s "$T/a.txt" "$T/b.txt"; then
        ok "release copy translates as the original (beam $beam, 20 lines)"
    else
        bad "release copy translates differently (beam $beam)" "$(diff <(echo "$a") <(echo "$b") | sed -n 1,10p)"
    fi
done

# ---------------------------------------------------------------- 2
printf 'not a checkpoint at all, just some text\n' >"$T/junk.ckpt"
head -c 5000 "$T/run/last.ckpt" >"$T/cut.ckpt"
for f in junk cut missing; do
    out=$("$PY" tools/release-model.py "$T/$f.ckpt" "$T/out-$f.ckpt" 2>&1); rc=$?
    if ((rc == 2)) && grep -q "release-model.py: error:" <<<"$out" && [[ ! -e "$T/out-$f.ckpt" ]]; then
        ok "release-model.py on a $f file: exit 2, $(cut -c1-70 <<<"$out")"
    else
        bad "release-model.py on a $f file: exit $rc" "$out"
    fi
done

# ---------------------------------------------------------------- 3
M=models/default.ckpt
if [[ ! -f $M ]]; then
    bad "$M is missing"
else
    size=$(stat -c %s "$M")
    read -r _ tags abs _ < <(ckpt_info "$M")
    if ((size <= 32 * 1024 * 1024)) && [[ $tags == *PARAMS* && $tags != *ADAM* && $abs == False ]]; then
        ok "$M: $size bytes (<= 32 MB), sections $tags, no machine path"
    else
        bad "$M: $size bytes, sections $tags, an absolute path in its config: $abs"
    fi
    out=$("$BIN" translate --model "$M" --ids --output-ids --beam 4 --threads 1 --input models/smoke.en.ids 2>&1); rc=$?
    nin=$(wc -l <models/smoke.en.ids)
    if ((rc == 0)) && [[ $(grep -c . <<<"$out") -eq $nin ]] && ! grep -qvE '^[0-9]+( [0-9]+)*$' <<<"$out" &&
       ! awk '{ for (i = 1; i <= NF; i++) if ($i < 4 || $i >= 8000) bad = 1 } END { exit !bad }' <<<"$out"; then
        ok "$M translates the $nin held-out lines of models/smoke.en.ids (beam 4): non-empty, valid ids"
    else
        bad "$M: translate exit $rc" "$out"
    fi
fi
if [[ -f models/spm.model && -f $M ]]; then
    # text in, text out with the spm.model next to the checkpoint (CI has no
    # data/spm: this is then the only SentencePiece model there is)
    out=$(echo "In the beginning God created the heavens and the earth." |
          "$BIN" translate --model "$M" --beam 4 --threads 1 2>&1); rc=$?
    if ((rc == 0)) && [[ $(wc -l <<<"$out") -eq 1 && "$out" =~ [[:alpha:]]+\ [[:alpha:]]+ && ! "$out" =~ [0-9] ]]; then
        ok "translate --model $M, text in and out: '$out'"
    else
        bad "translate --model $M on text: exit $rc" "$out"
    fi
fi
if [[ -f models/spm.model ]]; then
    txt="In the beginning God created the heavens and the earth."
    ids=$("$BIN" spm encode --spm-model models/spm.model <<<"$txt" 2>&1)
    back=$("$BIN" spm decode --spm-model models/spm.model <<<"$ids" 2>&1)
    if [[ "$back" == "$txt" && "$ids" =~ ^[0-9]+( [0-9]+)+$ ]]; then
        ok "models/spm.model: a sentence round-trips through $(wc -w <<<"$ids") pieces"
    else
        bad "models/spm.model does not round-trip" "$ids / $back"
    fi
else
    bad "models/spm.model is missing"
fi
echo "$pass passed, $fail failed"
((fail == 0))
