#!/usr/bin/env bash
# tests/test_install.sh BUILDDIR — `meson install` into a scratch DESTDIR, then
# builds and runs a program that finds the library only through the installed
# pkg-config file and header (shared and static linking).
# Prints "N passed, N failed" (read by tools/test.sh).
set -uo pipefail
build=${1:?usage: tests/test_install.sh BUILDDIR}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1"; }

if DESTDIR="$tmp/root" meson install -C "$build" --quiet >"$tmp/install.log" 2>&1; then
    ok "meson install"
else
    bad "meson install"; cat "$tmp/install.log"
fi
pc=$(find "$tmp/root" -name granattn.pc | head -1)
[[ -n "$pc" ]] && ok "granattn.pc installed" || bad "granattn.pc installed"
prefix=$(sed -n 's/^prefix=//p' "$pc" 2>/dev/null)
# Point the .pc at the DESTDIR copy.
sed "s|^prefix=.*|prefix=$tmp/root$prefix|" "$pc" >"$tmp/granattn.pc"
cat >"$tmp/use.c" <<'C'
#include <granattn.h>
#include <stdio.h>
int main(void)
{
    const ga_kernels *k = ga_kernels_default();
    ga_config cfg;
    ga_config_default(&cfg);
    if (!k || ga_config_check(&cfg) != GA_OK) {
        printf("error: %s\n", ga_last_error());
        return 1;
    }
    float s[3] = {0.0f, -1.0f, -3.0f}, theta[8], p[3 + GA_KEEP_PAD], Z;
    int idx[3 + GA_KEEP_PAD];
    unsigned char lev[3] = {0, 0, 0};
    ga_theta_from_tau(&cfg, theta);
    int n = k->threshold(s, 3, 0.0f, lev, theta, GA_NORM_SEED, idx, p, &Z);
    printf("%s kept %d\n", k->name, n);
    return n == 2 ? 0 : 1; /* level 0 (tau 0.10): e^-1 = 0.37 kept, e^-3 = 0.05 dropped */
}
C
export PKG_CONFIG_PATH=$tmp
libdir=$(pkg-config --variable=libdir granattn)
for mode in shared static; do
    flags=$(pkg-config --cflags granattn)
    if [[ $mode == shared ]]; then
        libs=$(pkg-config --libs granattn)
    else # libgranattn.a itself + the .pc's Libs.private, those linked dynamically
         # (Debian ships no static SLEEF, and hwloc's own private deps are not needed)
        libs="$libdir/libgranattn.a $(sed -n 's/^Libs.private: //p' "$tmp/granattn.pc")"
    fi
    if cc -std=c11 $flags "$tmp/use.c" -o "$tmp/use-$mode" $libs -lm 2>"$tmp/cc-$mode.log"; then
        out=$(LD_LIBRARY_PATH=$libdir "$tmp/use-$mode" 2>&1)
        [[ $out == *"kept 2" ]] && ok "consumer ($mode link) runs: $out" || bad "consumer ($mode link) output: $out"
    else
        bad "consumer ($mode link) compiles"; cat "$tmp/cc-$mode.log"
    fi
done
echo "$pass passed, $fail failed"
((fail == 0))
