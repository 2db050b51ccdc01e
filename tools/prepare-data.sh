#!/bin/bash
# prepare-data.sh — build the English→Spanish corpus and its subword token files.
#
# Usage: tools/prepare-data.sh [--force] [--help]
#
# Steps (each skipped when its outputs exist and are newer than its inputs):
#   0. install missing Debian packages (sword-text-web, sword-text-sparv,
#      libsword-utils, python3-sentencepiece) — as root, with apt-get
#   1. tools/corpus/bible.py     -> data/corpus/{train,dev,test}.{en,es,ref}
#   2. tools/corpus/spm.py train -> data/spm/spm.{model,vocab}
#   3. tools/corpus/spm.py splits-> data/tok/{split}.{en,es}.ids, {split}.bin
#   4. tools/corpus/windows.py   -> data/windows/: passages of 2-16 consecutive
#      verses of one chapter (same chapter split), text and token files
# then verifies the counts against docs/NOTES.md and the token files against the
# corpus, and prints a summary.  --force redoes every step.
# Run from anywhere; paths are relative to the repository root.
set -euo pipefail

cd "$(dirname "$0")/.."
PY=/usr/bin/python3
PACKAGES=(sword-text-web sword-text-sparv libsword-utils python3-sentencepiece)
FORCE=0

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "prepare-data.sh: unknown argument: $arg" >&2; usage >&2; exit 2 ;;
    esac
done

log() { printf '[prepare-data] %s\n' "$*"; }

# install_packages: apt-get install whatever of PACKAGES is missing.
install_packages() {
    local missing=() pkg
    for pkg in "${PACKAGES[@]}"; do
        if ! grep -q 'ok installed' <<<"$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)"; then
            missing+=("$pkg")
        fi
    done
    if [ ${#missing[@]} -eq 0 ]; then
        log "packages: all present"
        return
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "prepare-data.sh: missing packages: ${missing[*]} (run as root, or install them)" >&2
        exit 1
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -q
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
}

# up_to_date OUT... -- IN...: true when every OUT exists and is newer than every IN.
up_to_date() {
    local outs=() out in
    while [ "$1" != "--" ]; do outs+=("$1"); shift; done
    shift
    [ "$FORCE" -eq 0 ] || return 1
    for out in "${outs[@]}"; do
        [ -e "$out" ] || return 1
        for in in "$@"; do
            [ "$in" -nt "$out" ] && return 1
        done
    done
    return 0
}

# module_files: the SWORD module files that the corpus is built from.
module_files() {
    dpkg -L sword-text-web sword-text-sparv | while read -r f; do
        [ -f "$f" ] && case "$f" in /usr/share/sword/*) echo "$f" ;; esac
    done
}

start=$(date +%s)
install_packages

SPLITS=(train dev test)
CORPUS_OUT=(data/corpus/counts.json data/corpus/aligned.tsv)
for s in "${SPLITS[@]}"; do
    CORPUS_OUT+=("data/corpus/$s.en" "data/corpus/$s.es" "data/corpus/$s.ref")
done
mapfile -t MODULES < <(module_files)

if up_to_date "${CORPUS_OUT[@]}" -- tools/corpus/bible.py tools/corpus/osis.py "${MODULES[@]}"; then
    log "corpus: up to date"
else
    log "corpus: building data/corpus"
    "$PY" tools/corpus/bible.py --out data/corpus
fi

SPM_OUT=(data/spm/spm.model data/spm/spm.vocab)
if up_to_date "${SPM_OUT[@]}" -- tools/corpus/spm.py data/corpus/train.en data/corpus/train.es; then
    log "sentencepiece model: up to date"
else
    log "sentencepiece model: training (about a minute)"
    "$PY" tools/corpus/spm.py train
fi

TOK_OUT=(data/tok/stats.json)
for s in "${SPLITS[@]}"; do
    TOK_OUT+=("data/tok/$s.en.ids" "data/tok/$s.es.ids" "data/tok/$s.bin")
done
TOK_IN=(tools/corpus/spm.py data/spm/spm.model)
for s in "${SPLITS[@]}"; do TOK_IN+=("data/corpus/$s.en" "data/corpus/$s.es"); done
if up_to_date "${TOK_OUT[@]}" -- "${TOK_IN[@]}"; then
    log "token files: up to date"
else
    log "token files: encoding every split"
    "$PY" tools/corpus/spm.py splits >/dev/null
fi

WIN_OUT=(data/windows/stats.tsv)
for s in "${SPLITS[@]}"; do WIN_OUT+=("data/windows/tok/$s.bin" "data/windows/$s.en" "data/windows/$s.es"); done
if up_to_date "${WIN_OUT[@]}" -- tools/corpus/windows.py "${TOK_IN[@]}"; then
    log "passage windows: up to date"
else
    log "passage windows: consecutive verses, 2-16 per window (tools/corpus/windows.py)"
    "$PY" tools/corpus/windows.py >/dev/null
fi

log "verifying"
"$PY" tools/corpus/bible.py --out data/corpus --verify
"$PY" tools/corpus/spm.py verify

echo
echo "== summary =="
"$PY" - <<'EOF'
import json
c = json.load(open("data/corpus/counts.json"))
print("WEB verses %(web_verses)d, RV1909 verses %(rv1909_verses)d, "
      "pairs by reference %(pairs_by_reference)d, aligned %(aligned_pairs)d "
      "(%(chapters)d chapters)" % c)
print("split train/dev/test: %(train)d / %(dev)d / %(test)d "
      "(%(length_filtered_out)d pairs outside 1-40 words)" % c)
for lang in ("en", "es"):
    w = c["aligned_words_" + lang]
    print("%s words/verse (aligned pairs): mean %.1f p95 %d max %d, "
          "vocabulary %d" % (lang, w["mean"], w["p95"], w["max"], w["vocab"]))
EOF
"$PY" tools/corpus/spm.py stats
echo "outputs: data/corpus/ data/spm/ data/tok/ data/windows/  ($(( $(date +%s) - start )) s)"
