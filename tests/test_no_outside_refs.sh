#!/usr/bin/env bash
# tests/test_no_outside_refs.sh — no tracked file refers to a path outside the
# repository.  A user who clones the project has only the repository: the
# contract is docs/SPEC.md, the platform facts docs/NOTES.md, the concept
# docs/concept.md.  Checks the content of every tracked file (git ls-files,
# working-tree content, via git grep) for:
#   1. the project's shared folder reached from the repository (dot-dot-slash
#      "shared"), or a path into it (shared SPEC/NOTES, seed concept);
#   2. absolute paths of the machines the project was developed on (/work/...),
#      except in machine-written records under results/ (.json, .log, ...:
#      they record where a run happened, e.g. its build_dir, and are not read
#      as references); Markdown files under results/ are checked;
#   3. Markdown links whose relative target resolves outside the repository;
#   4. docs/SPEC.md and docs/NOTES.md exist (where the references now point).
# Prints one line per check and ends with "N passed, N failed" (the convention
# of run_counted in tools/test.sh); exit status 1 if any check failed.
# Usage: tests/test_no_outside_refs.sh   (from anywhere inside the checkout)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

pass=0 fail=0
ok() { echo "ok   - $1"; pass=$((pass + 1)); }
bad() {
    echo "FAIL - $1"
    [[ -z "$2" ]] || head -20 <<<"$2" | while IFS= read -r l; do echo "       $l"; done
    fail=$((fail + 1))
}

if ! root=$(git rev-parse --show-toplevel 2>/dev/null); then
    echo "FAIL - not a git checkout: cannot list the tracked files"
    echo "0 passed, 1 failed"
    exit 1
fi
cd "$root" || exit 1
self=tests/test_no_outside_refs.sh

# grep_tracked ERE: "path:line:text" of every tracked text file matching ERE
# (this script excluded: it names the patterns).
grep_tracked() {
    git grep -n -I -E -e "$1" -- . ":(exclude)$self" 2>/dev/null
}

# 1. the shared folder outside the repository (patterns are written as
#    bracket expressions so that this file does not match them literally)
hits=$(grep_tracked '[.][.]/shared|shared/(SPEC|NOTES)[.]md|seed/conc[e]pt[.]md|/work/sh[a]red')
if [[ -z "$hits" ]]; then
    ok "no reference to the shared folder outside the repository"
else
    bad "references to the shared folder outside the repository (point them to docs/):" "$hits"
fi

# 2. absolute paths of the development machines
hits=$(grep_tracked '/work/' | awk -F: '!($1 ~ /^results\// && $1 !~ /\.md$/)')
if [[ -z "$hits" ]]; then
    ok "no absolute /work/ path (machine-written records under results/ excepted)"
else
    bad "absolute /work/ paths in tracked files:" "$hits"
fi

# 3. relative Markdown links that leave the repository
outside=""
while IFS= read -r f; do
    dir=$(dirname "$f")
    while IFS= read -r target; do
        target=${target#](}
        target=${target%)}
        target=${target%%#*}
        target=${target%% *}
        case "$target" in
        '' | http://* | https://* | mailto:* | /*) continue ;;
        esac
        resolved=$(realpath -m "$dir/$target")
        [[ "$resolved" == "$root" || "$resolved" == "$root"/* ]] || outside+="$f: ($target)"$'\n'
    done < <(grep -oE '\]\([^)]+\)' "$f")
done < <(git ls-files -- '*.md')
if [[ -z "$outside" ]]; then
    ok "no Markdown link resolves outside the repository"
else
    bad "Markdown links that resolve outside the repository:" "${outside%$'\n'}"
fi

# 4. the documents the references point to
missing=""
for d in docs/SPEC.md docs/NOTES.md; do
    git ls-files --error-unmatch "$d" >/dev/null 2>&1 || missing+="$d "
done
if [[ -z "$missing" ]]; then
    ok "docs/SPEC.md and docs/NOTES.md are tracked"
else
    bad "not tracked: $missing" ""
fi

echo "$pass passed, $fail failed"
((fail == 0))
