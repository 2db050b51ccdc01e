#!/usr/bin/env bash
# tools/ct2/compare.sh — granattn and CTranslate2 side by side (decoding speed,
# BLEU / chrF, output agreement) on one checkpoint.  Everything is done by
# tools/ct2/compare.py on the project venv .venv-ct2 (created on first use
# with ctranslate2 4.8.5 and sacreBLEU 2.x: tools/ct2/ct2env.py).
#
#   tools/ct2/compare.sh --help
#   tools/ct2/compare.sh --model runs/default-dense/best.ckpt
#
# Writes results/<machine>/decode-vs-ct2/{results.tsv,runs.tsv,README.md}
# (or --out DIR).  Needs build/model/granattn, data/tok and data/corpus
# (tools/prepare-data.sh) and data/spm/spm.model.
set -euo pipefail
cd "$(dirname "$0")/../.."
for a in "$@"; do
    if [[ "$a" == -h || "$a" == --help ]]; then
        exec /usr/bin/python3 tools/ct2/compare.py --help
    fi
done
py=$(/usr/bin/python3 tools/ct2/ct2env.py) || { echo "compare.sh: the CTranslate2 venv is not available (see above)" >&2; exit 1; }
exec "$py" tools/ct2/compare.py "$@"
