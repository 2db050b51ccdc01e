#!/usr/bin/env bash
# tools/dump-traces.sh CKPT OUTDIR — real attention traces for the kernel harness.
#
# With `granattn inspect --dump-trace` (include/granattn_trace.h format), one
# .gatrace file per (input, decoder layer), teacher-forced on the reference:
#   OUTDIR/sent-s<k>-l<l>.gatrace    8 test sentences (test lines 1, 171, 341, ...)
#   OUTDIR/p256-s0-l<l>.gatrace      the first passage of data/passages/test-256
#   OUTDIR/p1024-s0-l<l>.gatrace     ... test-1024
#   OUTDIR/p4096-s0-l<l>.gatrace     ... test-4096 (consecutive test verses
#                                     across chapters: see tools/corpus/passages.py)
# Every file is read back and checked (--verify: the context recomputed from
# it with ga_attend_run_levels equals the model's).  The passages are longer
# than the model's trained max_len (128 for configs/default.ini): they run
# with --max-len 4608, which extends the sinusoidal position table at
# inference time (no parameter changes; positions >= 128 were never trained).
# Ends with OUTDIR/index.tsv: file, N (source incl. eos), T (bos + target), bytes.
#
# Needs data/corpus, data/spm (tools/prepare-data.sh); makes data/passages
# with tools/corpus/passages.py when missing.  ~1 GB of memory for the 4096 passage.
set -euo pipefail
if [[ $# -ne 2 || $1 == -h || $1 == --help ]]; then
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    [[ $# -eq 2 ]] && exit 0 || exit 2
fi
CKPT=$1 OUT=$2
cd "$(dirname "$0")/.."
BIN=${GRANATTN_BIN:-build/model/granattn}
PY=/usr/bin/python3
[[ -x $BIN ]] || { echo "dump-traces: $BIN not built (ninja -C build)" >&2; exit 1; }
[[ -f $CKPT ]] || { echo "dump-traces: $CKPT: no such checkpoint" >&2; exit 1; }
[[ -f data/corpus/test.en && -f data/spm/spm.model ]] \
    || { echo "dump-traces: no data/corpus or data/spm (run tools/prepare-data.sh)" >&2; exit 1; }
[[ -f data/passages/test-4096.en ]] || "$PY" tools/corpus/passages.py >/dev/null
mkdir -p "$OUT"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dump-traces.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

awk 'NR % 170 == 1 && ++n <= 8' data/corpus/test.en >"$tmp/sent.en"
awk 'NR % 170 == 1 && ++n <= 8' data/corpus/test.es >"$tmp/sent.es"
"$BIN" inspect --model "$CKPT" --input "$tmp/sent.en" --ref "$tmp/sent.es" \
    --dump-trace "$OUT" --name sent --verify
for n in 256 1024 4096; do
    head -1 "data/passages/test-$n.en" >"$tmp/p$n.en"
    head -1 "data/passages/test-$n.es" >"$tmp/p$n.es"
    "$BIN" inspect --model "$CKPT" --input "$tmp/p$n.en" --ref "$tmp/p$n.es" \
        --dump-trace "$OUT" --name "p$n" --max-len 4608 --verify
done
"$PY" - "$OUT" <<'PYEOF'
import glob, os, struct, sys
out = sys.argv[1]
rows = []
for p in sorted(glob.glob(os.path.join(out, "*.gatrace"))):
    with open(p, "rb") as f:
        h = f.read(40)
    H, N, dh, T, L, mode, layer, _ = struct.unpack_from("<8i", h, 8)
    rows.append((os.path.basename(p), N, T, H, dh, layer, os.path.getsize(p)))
with open(os.path.join(out, "index.tsv"), "w") as f:
    f.write("file\tN\tT\tH\tdh\tlayer\tbytes\n")
    for r in rows:
        f.write("%s\t%d\t%d\t%d\t%d\t%d\t%d\n" % r)
print("%d trace files, %.1f MB, in %s (index.tsv)" % (len(rows), sum(r[-1] for r in rows) / 1e6, out))
PYEOF
