#!/usr/bin/env bash
# tests/test_inputs.sh — hostile and odd input to the `granattn` executable
# (issue 9 part 7): every input error must end with a clear message naming
# the file or argument and a non-zero exit: no crash, no hang, no silent
# garbage.  Complements tests/test_cli.sh (which covers bit flips,
# truncation, bad values); the inputs here are the ones that used to get
# through: checkpoints with valid checksums but bad contents, config values
# that do not read back, NUL bytes, FIFOs and devices, PAD ids in token
# files, and the smaller CLI cases.
#
#   tests/test_inputs.sh [PATH/TO/granattn]     (default: build/model/granattn)
#
# Self-contained (synthetic token files in a temporary directory); the
# checks that need data/spm/spm.model are skipped without it.  Every command
# runs under `timeout` so that a hang is a failure, not a stuck test.
# Ends with the line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${1:-${GRANATTN_BIN:-build/model/granattn}}
PY=/usr/bin/python3
if [[ ! -x "$BIN" ]]; then
    echo "test_inputs: $BIN not found or not executable (build first, or pass its path)" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
T=$(mktemp -d "${TMPDIR:-/tmp}/granattn-inputs.XXXXXX")
bgpid=
trap '[[ -n "$bgpid" ]] && kill -9 "$bgpid" 2>/dev/null; rm -rf "$T"' EXIT
pass=0 fail=0 skip=0
TMO=${INPUTS_TIMEOUT:-60} # seconds before a command counts as hung

ok() { pass=$((pass + 1)); echo "ok   - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1"; [[ -n "${2:-}" ]] && sed 's/^/       | /' <<<"$2" | head -20; }
skipped() { skip=$((skip + 1)); echo "skip - $1"; }

# expect_fail NAME PATTERN CMD... : non-zero exit within $TMO s (not a
# signal, not a hang), no sanitizer report, stderr matches PATTERN.
expect_fail() {
    local name=$1 pat=$2; shift 2
    local out rc
    out=$(timeout -k 5 "$TMO" "$@" 2>&1 >/dev/null </dev/null); rc=$?
    if ((rc == 0)); then bad "$name (exit 0)" "$out"
    elif ((rc == 124 || rc == 137)); then bad "$name (hung: killed after $TMO s)" "$out"
    elif ((rc >= 128)); then bad "$name (crashed: exit $rc)" "$out"
    elif grep -q "Sanitizer" <<<"$out"; then bad "$name (sanitizer report)" "$out"
    elif ! grep -Eq -- "$pat" <<<"$out"; then bad "$name (message does not match /$pat/)" "$out"
    else ok "$name: $(head -1 <<<"$out" | cut -c1-120)"
    fi
}

# expect_ok NAME CMD... : exit 0 within $TMO s
expect_ok() {
    local name=$1; shift
    local out rc
    out=$(timeout -k 5 "$TMO" "$@" 2>&1 </dev/null); rc=$?
    if ((rc == 0)); then ok "$name"; else bad "$name (exit $rc)" "$out"; fi
}

# ---------------------------------------------------------------- data
# mkdata DIR VERSION [PAD_AT]: the toy task of tests/test_cli.sh as token
# files of format VERSION (1: no checksum, 2: CRC-32); PAD_AT=K puts id 0 as
# the second source token of pair K of train.bin.
mkdata() {
    "$PY" - "$@" <<'EOF'
import os, random, struct, sys, zlib
out, version = sys.argv[1], int(sys.argv[2])
pad_at = int(sys.argv[3]) if len(sys.argv) > 3 else -1
os.makedirs(out, exist_ok=True)
rng = random.Random(7)
def write(name, n):
    body = b""
    for i in range(n):
        src = [rng.randrange(10, 60) for _ in range(rng.randrange(3, 15))]
        tgt = [x + 100 for x in reversed(src)]
        if name == "train" and i == pad_at:
            src[1] = 0
        body += struct.pack("<H%dH" % len(src), len(src), *src)
        body += struct.pack("<H%dH" % len(tgt), len(tgt), *tgt)
    head = struct.pack("<4sIII", b"GATK", version, n, 8000)
    if version >= 2:
        head += struct.pack("<I", zlib.crc32(head + body) & 0xFFFFFFFF)
    open(os.path.join(out, name + ".bin"), "wb").write(head + body)
write("train", 600)
write("dev", 40)
write("test", 30)
EOF
}
mkdata "$T/tok" 1 || { echo "test_inputs: cannot make synthetic data" >&2; echo "0 passed, 1 failed"; exit 1; }
CFG="$ROOT/configs/tiny.ini"
DATA=(--set data_dir="$T/tok" --set threads=1)
"$BIN" train --config "$CFG" --out "$T/run" "${DATA[@]}" --set max_steps=10 --set eval_every=10 \
    --quiet >"$T/run.out" 2>&1 || { cat "$T/run.out"; echo "test_inputs: the base training run failed" >&2; }
CK="$T/run/last.ckpt"

# ---------------------------------------------------------------- checkpoints
# ckpt_edit IN OUT WHAT: rewrites a checkpoint with one change and VALID
# checksums (the loader must look past them).
ckpt_edit() {
    "$PY" - "$@" <<'EOF'
import struct, sys, zlib
src, dst, what = sys.argv[1], sys.argv[2], sys.argv[3]
extra = sys.argv[4] if len(sys.argv) > 4 else ""
b = open(src, "rb").read()
n_params = struct.unpack_from("<Q", b, 32)[0]
ns = struct.unpack_from("<I", b, 28)[0]
secs, off = [], 64
for _ in range(ns):
    tag = b[off:off + 8].rstrip(b"\0"); n = struct.unpack_from("<Q", b, off + 8)[0]
    secs.append([tag, bytearray(b[off + 16:off + 16 + n])]); off += 16 + n + (-n % 8)
sec = {t: d for t, d in secs}
STATE = "<qqq4Qqdqqdqqdq5q"
st = list(struct.unpack(STATE, bytes(sec[b"STATE"])))
count, unpadded_last = ns, False
if what == "odd-last":          # odd-sized last section without its padding, one more section claimed
    secs.append([b"NOTES", bytearray(b"odd")]); count = len(secs) + 1; unpadded_last = True
elif what == "overflow":        # n_params * 4 wraps around to the real PARAMS size
    n_params += 1 << 62
elif what == "no-state":
    secs = [s for s in secs if s[0] != b"STATE"]; count = len(secs)
elif what == "no-params":
    secs = [s for s in secs if s[0] != b"PARAMS"]; count = len(secs)
elif what == "nan-weight":
    struct.pack_into("<f", sec[b"PARAMS"], 4 * 7, float("nan"))
elif what == "neg-adam-v":
    struct.pack_into("<f", sec[b"ADAM_V"], 4 * 3, -1.0)
elif what == "nan-time":
    st[11] = float("nan")        # train_seconds
elif what == "neg-adam-t":
    st[7] = -5                   # adam_t
elif what == "include":
    sec[b"CONFIG"][:] = ("include = %s\n" % extra).encode() + sec[b"CONFIG"]
if what in ("nan-time", "neg-adam-t"):
    sec[b"STATE"][:] = struct.pack(STATE, *st)
payload = b""
for i, (tag, d) in enumerate(secs):
    payload += tag.ljust(8, b"\0") + struct.pack("<Q", len(d)) + bytes(d)
    if not (unpadded_last and i == len(secs) - 1):
        payload += b"\0" * (-len(d) % 8)
h = bytearray(b[:64])
struct.pack_into("<QI", h, 16, len(payload), zlib.crc32(payload) & 0xFFFFFFFF)
struct.pack_into("<IQ", h, 28, count, n_params)
struct.pack_into("<I", h, 60, zlib.crc32(bytes(h[:60])) & 0xFFFFFFFF)
open(dst, "wb").write(bytes(h) + payload)
EOF
}
IN=(--ids --input /dev/null)
ckpt_edit "$CK" "$T/odd.ckpt" odd-last
expect_fail "checkpoint: odd-sized last section (valid checksums)" "odd.ckpt: section NOTES .* runs past the payload" \
    "$BIN" translate --model "$T/odd.ckpt" "${IN[@]}"
expect_fail "checkpoint: odd-sized last section, --resume" "runs past the payload" \
    "$BIN" train --out "$T/run" --resume "$T/odd.ckpt"
ckpt_edit "$CK" "$T/ovf.ckpt" overflow
expect_fail "checkpoint: parameter count x 4 overflows" "ovf.ckpt: header claims [0-9]+ parameters, more than the" \
    "$BIN" translate --model "$T/ovf.ckpt" "${IN[@]}"
ckpt_edit "$CK" "$T/nostate.ckpt" no-state
expect_fail "checkpoint: missing STATE section named as such" "nostate.ckpt: checkpoint lacks its STATE section" \
    "$BIN" translate --model "$T/nostate.ckpt" "${IN[@]}"
ckpt_edit "$CK" "$T/noparams.ckpt" no-params
expect_fail "checkpoint: missing PARAMS section named as such" "noparams.ckpt: checkpoint lacks its PARAMS section" \
    "$BIN" translate --model "$T/noparams.ckpt" "${IN[@]}"
ckpt_edit "$CK" "$T/nan.ckpt" nan-weight
expect_fail "checkpoint: NaN weight (valid checksums)" "nan.ckpt: PARAMS value 7 is NaN" \
    "$BIN" translate --model "$T/nan.ckpt" "${IN[@]}"
cp -r "$T/run" "$T/runnan"; cp "$T/nan.ckpt" "$T/runnan/last.ckpt"; cp "$T/runnan/last.ckpt" "$T/runnan.before"
expect_fail "checkpoint: NaN weight on --resume" "PARAMS value 7 is NaN" \
    "$BIN" train --out "$T/runnan" --resume --set max_steps=12
cmp -s "$T/runnan/last.ckpt" "$T/runnan.before" && ok "checkpoint: NaN resume leaves last.ckpt untouched" \
    || bad "checkpoint: NaN resume rewrote last.ckpt"
ckpt_edit "$CK" "$T/negv.ckpt" neg-adam-v
expect_fail "checkpoint: negative Adam second moment" "negv.ckpt: ADAM_V value 3 is negative" \
    "$BIN" train --out "$T/run" --resume "$T/negv.ckpt" --set max_steps=12
ckpt_edit "$CK" "$T/nantime.ckpt" nan-time
expect_fail "checkpoint: NaN training time" "nantime.ckpt: implausible training state: training time nan" \
    "$BIN" train --out "$T/run" --resume "$T/nantime.ckpt" --set max_steps=12
ckpt_edit "$CK" "$T/negt.ckpt" neg-adam-t
expect_fail "checkpoint: negative optimiser step" "negt.ckpt: implausible training state: optimiser step -5" \
    "$BIN" train --out "$T/run" --resume "$T/negt.ckpt" --set max_steps=12
ckpt_edit "$CK" "$T/incl.ckpt" include "$CFG"
expect_fail "checkpoint: embedded config may not include files" "incl.ckpt.*include is not allowed here" \
    "$BIN" translate --model "$T/incl.ckpt" "${IN[@]}"

# ---------------------------------------------------------------- --set values that must read back
mkdir -p "$T/tok#2"; cp "$T/tok/"*.bin "$T/tok#2/"
expect_fail "--set data_dir with '#'" "data_dir = '.*tok#2': the value may not contain '#'" \
    "$BIN" train --config "$CFG" --out "$T/hash" --set data_dir="$T/tok#2" --set threads=1 --set max_steps=2
expect_fail "--set dev_split with ';'" "dev_split = 'dev;x': the value may not contain ';'" \
    "$BIN" train --config "$CFG" --out "$T/semi" "${DATA[@]}" --set 'dev_split=dev;x' --set max_steps=2
expect_fail "--set train_split with a tab" "train_split: the value may not contain control characters" \
    "$BIN" train --config "$CFG" --out "$T/tab" "${DATA[@]}" --set "train_split=tr$(printf '\t')ain" --set max_steps=2
expect_fail "--set dev_split with a newline" "dev_split: the value may not contain control characters" \
    "$BIN" train --config "$CFG" --out "$T/nl" "${DATA[@]}" --set "dev_split=dev
lr = 5" --set max_steps=2

"$BIN" train --config "$CFG" --out "$T/ls" "${DATA[@]}" --set label_smoothing=0.99 --set max_steps=2 \
    --quiet >/dev/null 2>&1
expect_ok "--set label_smoothing=0.99 (stored as 0.99000001): the checkpoint reads back" \
    "$BIN" train --out "$T/ls" --resume --set max_steps=3 --quiet

# ---------------------------------------------------------------- config files
{ cat "$CFG"; printf 'lr = 1e-3\0\nthis is not a config line\n'; } >"$T/nul.ini"
expect_fail "config: NUL byte" "nul.ini:[0-9]+: NUL byte" \
    "$BIN" train --config "$T/nul.ini" --out "$T/nul" "${DATA[@]}" --set max_steps=1
{ printf '\xef\xbb\xbf'; cat "$CFG"; } >"$T/bom.ini"
expect_ok "config: a UTF-8 byte-order mark is accepted" \
    "$BIN" train --config "$T/bom.ini" --out "$T/bom" "${DATA[@]}" --set max_steps=1 --quiet
sed "s/^tau = .*/tau = 0.10, 0.01, 0$(printf '%*s' 520 ''), 0.001/" "$CFG" >"$T/longlist.ini"
expect_fail "config: list value over 511 characters is not cut" "longlist.ini.*: config: tau has 4 value\(s\) but L = 3" \
    "$BIN" train --config "$T/longlist.ini" --out "$T/ll" "${DATA[@]}" --set max_steps=1
expect_fail "config range: d = 1 (the model needs >= 2)" "d = 1 out of range \[2, " \
    "$BIN" train --config "$CFG" --out "$T/rg" "${DATA[@]}" --set d=1
expect_fail "config range: n_enc = 17 (the model has at most 16 layers)" "n_enc = 17 out of range \[0, 16\]" \
    "$BIN" train --config "$CFG" --out "$T/rg" "${DATA[@]}" --set n_enc=17
expect_fail "config range: max_len = 65536" "max_len = 65536 out of range" \
    "$BIN" train --config "$CFG" --out "$T/rg" "${DATA[@]}" --set max_len=65536
expect_fail "config range: eps = 0 (0/0 on an unused parameter)" "eps = 0 out of range" \
    "$BIN" train --config "$CFG" --out "$T/rg" "${DATA[@]}" --set eps=0
printf '[train]\nplace = bogus\n' >"$T/place.ini"
expect_fail "config: bad place reported with file and line" "place.ini:2: place = 'bogus'" \
    "$BIN" train --config "$T/place.ini" --out "$T/rg" "${DATA[@]}"
[[ ! -e "$T/rg" ]] && ok "config errors are found before the run directory is made" \
    || bad "config errors: $T/rg was created"

# ---------------------------------------------------------------- FIFOs and devices
mkfifo "$T/fifo"
expect_fail "FIFO as --config" "fifo: not a regular file \(a FIFO\)" \
    "$BIN" train --config "$T/fifo" --out "$T/ff" "${DATA[@]}"
expect_fail "FIFO as --model" "fifo: not a regular file \(a FIFO\)" \
    "$BIN" translate --model "$T/fifo" "${IN[@]}"
printf '[model]\ninclude = fifo\n' >"$T/incfifo.ini"
expect_fail "FIFO as an include" "incfifo.ini:2: in included file: .*fifo: not a regular file" \
    "$BIN" train --config "$T/incfifo.ini" --out "$T/ff" "${DATA[@]}"
expect_fail "character device as --config" "/dev/null: not a regular file \(a character device\)" \
    "$BIN" train --config /dev/null --out "$T/ff" "${DATA[@]}"
expect_fail "directory as --model" "not a regular file \(a directory\)" \
    "$BIN" translate --model "$T" "${IN[@]}"

# ---------------------------------------------------------------- token files
mkdata "$T/padtok" 1 123
expect_fail "token file: PAD id inside a sentence, named at load" "padtok/train.bin: pair 123: source token 2 is id 0 \(PAD\)" \
    "$BIN" train --config "$CFG" --out "$T/pad" --set data_dir="$T/padtok" --set threads=1 --set max_steps=1
mkdata "$T/tok2" 2
expect_ok "token file version 2 (with checksum) loads" \
    "$BIN" train --config "$CFG" --out "$T/v2" --set data_dir="$T/tok2" --set threads=1 --set max_steps=1 --quiet
cp -r "$T/tok2" "$T/tok2bad"
printf '\x2a' | dd of="$T/tok2bad/train.bin" bs=1 seek=3000 conv=notrunc status=none
expect_fail "token file version 2: a changed id fails the checksum" "tok2bad/train.bin: corrupt token file \(checksum mismatch" \
    "$BIN" train --config "$CFG" --out "$T/v2b" --set data_dir="$T/tok2bad" --set threads=1 --set max_steps=1
"$PY" -c 'import struct,sys; open(sys.argv[1],"wb").write(struct.pack("<4sIII", b"GATK", 7, 0, 8000))' "$T/tok2bad/train.bin"
expect_fail "token file: unknown version says how to rebuild" "version 7.*re-run tools/prepare-data.sh" \
    "$BIN" train --config "$CFG" --out "$T/v2b" --set data_dir="$T/tok2bad" --set threads=1 --set max_steps=1

# ---------------------------------------------------------------- translate input
printf '10 11 12\n20 21\0 22\n30 31\n' >"$T/nul.ids"
expect_fail "translate: NUL byte in --ids input" "nul.ids:2: NUL byte" \
    "$BIN" translate --model "$CK" --ids --input "$T/nul.ids" --output-ids
printf 'Hello\nbad \xff\xfe line\nworld\n' >"$T/badutf8.txt"
# badutf8 NAME [ENV...]: a non-UTF-8 line becomes an empty line (exit 1), the
# others are translated
badutf8() {
    local name=$1; shift
    out=$(env "$@" timeout "$TMO" "$BIN" translate --model "$CK" --input "$T/badutf8.txt" \
          --output "$T/badutf8.out" 2>&1); rc=$?
    if ((rc == 1)) && [[ $(wc -l <"$T/badutf8.out") -eq 3 && -z $(sed -n 2p "$T/badutf8.out") \
          && -n $(sed -n 3p "$T/badutf8.out") ]] \
        && grep -q "badutf8.txt: line 2: not valid UTF-8" <<<"$out" && ! grep -q Traceback <<<"$out"; then
        ok "$name: a non-UTF-8 line becomes an empty line (exit 1), the others are translated"
    else
        bad "$name: non-UTF-8 line (exit $rc, $(wc -l <"$T/badutf8.out" 2>/dev/null) lines)" "$out"
    fi
}
# with a stand-in for tools/corpus/spm.py (GRANATTN_ROOT): the C side alone
mkdir -p "$T/fakeroot/tools/corpus" "$T/fakeroot/data/spm"
: >"$T/fakeroot/data/spm/spm.model"
cat >"$T/fakeroot/tools/corpus/spm.py" <<'EOF'
import sys  # stand-in: encode -> "10 11 12" per line (strict UTF-8), decode -> "w<ids>"
what, path = sys.argv[3], sys.argv[4]
for raw in open(path, "rb").read().split(b"\n")[:-1]:
    text = raw.decode("utf-8")
    if what == "encode":
        print("10 11 12")
    else:  # like spm: no ids, empty text
        print("w" + text.replace(" ", "-") if text else "")
EOF
# (GRANATTN_SPM=python: spawned even by a build with libsentencepiece)
badutf8 "translate (stand-in spm.py)" GRANATTN_ROOT="$T/fakeroot" GRANATTN_SPM=python
if [[ -f data/spm/spm.model ]]; then
    badutf8 "translate (real spm.py)" GRANATTN_SPM=python
    badutf8 "translate (the build's SentencePiece: in process when linked)"
else
    skipped "translate with the real spm.py: non-UTF-8 line (no data/spm/spm.model)"
fi

# ---------------------------------------------------------------- smaller ones
expect_fail "calibrate --mix with too many values" "--mix '.*': more than 8 values" \
    "$BIN" calibrate --model "$CK" --density 0.3 --mix 0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.2
expect_ok "train --out A/B makes A too" \
    "$BIN" train --config "$CFG" --out "$T/new/a/b" "${DATA[@]}" --set max_steps=1 --quiet
# eval: output directories made before translating; data_dir of the
# checkpoint relative to the repository, not to the working directory
mkdir -p "$T/corp" "$T/w/data" "$T/elsewhere/data/tok"
cp -r "$T/tok" "$T/w/data/tok"
for i in $(seq 30); do echo "reference $i"; done >"$T/corp/test.es"
(cd "$T/w" && "$BIN" train --config "$CFG" --out "$T/w/run" --set data_dir=data/tok --set threads=1 \
    --set max_steps=2 --quiet >/dev/null 2>&1)
printf 'XXXX not a token file' >"$T/elsewhere/data/tok/test.bin"
out=$(cd "$T/elsewhere" && timeout "$TMO" "$BIN" eval --model "$T/w/run/last.ckpt" --corpus-dir "$T/corp" \
      --limit 1 --json "$T/ev/json/e.json" --hyp "$T/ev/hyp/h.txt" 2>&1); rc=$?
if grep -q "not a token file" <<<"$out"; then
    bad "eval outside the repository read ./data/tok (the working directory's)" "$out"
elif grep -q "$ROOT/data/tok/test.bin" <<<"$out" || grep -q "^translating" <<<"$out"; then
    ok "eval outside the repository: the checkpoint's data_dir is relative to the repository"
else
    bad "eval outside the repository (exit $rc)" "$out"
fi
out=$(timeout "$TMO" "$BIN" eval --model "$T/w/run/last.ckpt" --corpus-dir "$T/corp" --data-dir "$T/tok" \
      --limit 2 --json "$T/ev2/sub/e.json" --hyp "$T/ev2/hyp.txt" 2>&1); rc=$?
if [[ -d "$T/ev2/sub" ]]; then
    ok "eval --json into a missing directory: made before translating"
else
    bad "eval --json into a missing directory (exit $rc)" "$out"
fi
out=$(timeout "$TMO" "$BIN" eval --model "$T/w/run/last.ckpt" --corpus-dir "$T/corp" --data-dir "$T/tok" \
      --limit 2 --json "$T/corp/test.es/e.json" 2>&1); rc=$?
if ((rc != 0 && rc < 128)) && grep -q "test.es/e.json" <<<"$out" && ! grep -q "^translating" <<<"$out"; then
    ok "eval --json under a file: fails before translating, naming the path"
else
    bad "eval --json under a file (exit $rc)" "$out"
fi

# two runs on one directory: the second is refused while the first holds it
"$BIN" train --out "$T/run" --resume --set max_steps=100000000 --quiet >"$T/bg.out" 2>&1 &
bgpid=$!
for _ in $(seq 300); do grep -q "^resumed" "$T/bg.out" 2>/dev/null && break; sleep 0.1; done
if grep -q "^resumed" "$T/bg.out"; then
    expect_fail "two --resume runs on one directory" "run: another granattn train is using this directory" \
        "$BIN" train --out "$T/run" --resume --set max_steps=12
    expect_fail "a new run on a directory in use" "another granattn train is using this directory" \
        "$BIN" train --config "$CFG" --out "$T/run" "${DATA[@]}" --set max_steps=1
else
    bad "two --resume runs: the first did not start" "$(cat "$T/bg.out")"
fi
kill -TERM "$bgpid" 2>/dev/null; wait "$bgpid" 2>/dev/null; bgpid=
step=$(grep -o "interrupted by SIGTERM at step [0-9]*" "$T/bg.out" | grep -o "[0-9]*$")
expect_ok "the directory is free again once that run has ended" \
    "$BIN" train --out "$T/run" --resume --set max_steps="${step:-10}" --quiet

echo "test_inputs: $skip skipped"
echo "$pass passed, $fail failed"
((fail == 0))
