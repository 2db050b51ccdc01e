#!/bin/sh
# setup-arm64.sh — prepare this Debian 12 amd64 machine to cross-build granattn
# for AArch64 (NEON kernels) and run its tests under qemu-user.
#
# Run as root from anywhere; it works on the repository that contains it.
# Idempotent: every step first checks whether its work is already done, so a
# second run changes nothing and takes a second or two.
#
# Afterwards (from the repository root):
#   meson setup build-arm64 --cross-file .deps/arm64/cross-aarch64.ini -Dbench=false
#   meson test -C build-arm64
#
# What it sets up (see docs/NOTES.md, "Cross-building and testing NEON under qemu"):
#   * amd64 tools: cross gcc/g++, qemu-user(-static), binfmt-support,
#     pkg-config, meson, ninja;
#   * the arm64 architecture in dpkg and the arm64 libraries the library
#     links (sleef, hwloc, gomp) plus Criterion's runtime dependencies;
#   * Criterion for arm64 unpacked into .deps/arm64/root (libcriterion-dev:arm64
#     cannot be co-installed with the amd64 one);
#   * .deps/arm64/bin/aarch64-linux-gnu-pkg-config, a pkg-config wrapper that
#     sees only arm64 .pc files (system + .deps/arm64);
#   * .deps/arm64/cross-aarch64.ini, the meson cross file;
#   * binfmt_misc mounted and qemu-aarch64 enabled, because Criterion
#     re-executes its own (aarch64) binary for every test.
# Installing arm64 libraries may upgrade amd64 packages to matching versions;
# that is expected.
set -eu

say() { printf 'setup-arm64: %s\n' "$*"; }
die() { printf 'setup-arm64: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and enables binfmt_misc)"
[ "$(dpkg --print-architecture)" = amd64 ] || die "expected an amd64 Debian host"

REPO=$(cd "$(dirname "$0")/.." && pwd)
DEPS="$REPO/.deps/arm64"
ROOT="$DEPS/root"                                  # unpacked arm64 .debs
CRIT_LIBDIR="$ROOT/usr/lib/aarch64-linux-gnu"
APT_GET="apt-get -o DPkg::Lock::Timeout=600 -y --no-install-recommends"
export DEBIAN_FRONTEND=noninteractive

# True iff every named package is installed ("ii" in dpkg's database).
installed() {
    for p in "$@"; do
        [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" = "ii " ] || return 1
    done
}

# Prints the named packages that are not installed.
missing() {
    for p in "$@"; do
        installed "$p" || printf '%s ' "$p"
    done
}

# apt-get update at most once per run.
UPDATED=0
apt_update() {
    if [ "$UPDATED" -eq 0 ]; then
        say "apt-get update"
        apt-get -o DPkg::Lock::Timeout=600 update -q
        UPDATED=1
    fi
}

# True iff apt knows a candidate version for every named package.
have_candidates() {
    for p in "$@"; do
        apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [^(]' || return 1
    done
}

# Installs the named packages that are missing (updating the lists if apt
# does not know them yet).
ensure_packages() {
    need=$(missing "$@")
    [ -n "$need" ] || return 0
    # shellcheck disable=SC2086
    have_candidates $need || apt_update
    say "installing: $need"
    # shellcheck disable=SC2086
    $APT_GET install $need
}

# Writes stdin to file $1 only when the content differs (keeps mtimes stable,
# so re-running does not make meson reconfigure); $2 = mode.
write_if_changed() {
    tmp="$1.tmp.$$"
    cat > "$tmp"
    if [ -f "$1" ] && cmp -s "$tmp" "$1"; then
        rm -f "$tmp"
    else
        say "writing ${1#"$REPO"/}"
        chmod "$2" "$tmp"
        mv "$tmp" "$1"
    fi
}

# 1. amd64 tools: the cross compilers, qemu-user and binfmt support, and the
#    build tools (pkg-config, meson, ninja) when they are not on PATH.
TOOLS="gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user qemu-user-static binfmt-support"
command -v pkg-config >/dev/null 2>&1 || TOOLS="$TOOLS pkgconf"
command -v meson >/dev/null 2>&1 || TOOLS="$TOOLS meson"
command -v ninja >/dev/null 2>&1 || TOOLS="$TOOLS ninja-build"
# shellcheck disable=SC2086
ensure_packages $TOOLS

# 2. The arm64 architecture in dpkg (then apt must learn its package lists).
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    say "dpkg --add-architecture arm64"
    dpkg --add-architecture arm64
    apt_update
fi

# 3. arm64 libraries: what libgranattn links (sleef, hwloc, OpenMP runtime)
#    and the runtime dependencies of libcriterion3 except libnanomsg5, which
#    is unpacked in step 4 with Criterion.  No libbenchmark: the arm64 build
#    uses -Dbench=false.
ensure_packages libsleef-dev:arm64 libhwloc-dev:arm64 libgomp1:arm64 \
    libffi8:arm64 libgit2-1.5:arm64

# 4. Criterion for arm64, unpacked (not installed) into .deps/arm64/root.
CRIT_DEBS="libcriterion3:arm64 libcriterion-dev:arm64 libnanomsg5:arm64"
if [ ! -e "$CRIT_LIBDIR/libcriterion.so" ] || [ ! -e "$CRIT_LIBDIR/libnanomsg.so.5" ] ||
   [ ! -e "$ROOT/usr/include/criterion/criterion.h" ]; then
    mkdir -p "$DEPS/debs" "$ROOT"
    rm -f "$DEPS"/debs/*.deb
    # shellcheck disable=SC2086
    have_candidates $CRIT_DEBS || apt_update
    say "apt-get download $CRIT_DEBS"
    # The sandbox user _apt cannot write into a root-owned project folder.
    # shellcheck disable=SC2086
    (cd "$DEPS/debs" && apt-get -q -o APT::Sandbox::User=root download $CRIT_DEBS)
    for deb in "$DEPS"/debs/*.deb; do
        say "dpkg-deb -x $(basename "$deb")"
        dpkg-deb -x "$deb" "$ROOT"
    done
fi

# 5. criterion.pc: point its prefix at .deps/arm64/root/usr and drop the
#    private requirements (boxfort, libgit2, ... have no arm64 .pc files here;
#    they only matter for static linking).
PC="$CRIT_LIBDIR/pkgconfig/criterion.pc"
[ -f "$PC" ] || die "$PC missing after unpacking Criterion"
sed -e "s|^prefix=.*|prefix=$ROOT/usr|" \
    -e '/^Requires\.private:/d' -e '/^Libs\.private:/d' "$PC" |
    write_if_changed "$PC" 644

# 6. The pkg-config wrapper meson calls for the host (arm64) machine: only the
#    arm64 multiarch .pc files, the arch-independent ones and .deps/arm64's.
mkdir -p "$DEPS/bin"
PKGCONF="$DEPS/bin/aarch64-linux-gnu-pkg-config"
write_if_changed "$PKGCONF" 755 <<EOF
#!/bin/sh
# Generated by tools/setup-arm64.sh: pkg-config for the arm64 host.
PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig
PKG_CONFIG_PATH=$CRIT_LIBDIR/pkgconfig
export PKG_CONFIG_LIBDIR PKG_CONFIG_PATH
exec pkg-config "\$@"
EOF

# 7. The meson cross file.  exe_wrapper without -L: the arm64 loader and libc
#    are installed in / (multiarch), and "-L /usr/aarch64-linux-gnu" makes
#    Criterion hang.  RPATH (not RUNPATH, hence --disable-new-dtags) so that
#    libcriterion also finds libnanomsg in the same folder.
write_if_changed "$DEPS/cross-aarch64.ini" 644 <<EOF
# Generated by tools/setup-arm64.sh — meson cross file for AArch64 + qemu-user.
[binaries]
c = 'aarch64-linux-gnu-gcc'
cpp = 'aarch64-linux-gnu-g++'
ar = 'aarch64-linux-gnu-ar'
strip = 'aarch64-linux-gnu-strip'
pkgconfig = '$PKGCONF'
exe_wrapper = ['qemu-aarch64']

[built-in options]
c_link_args = ['-Wl,--disable-new-dtags,-rpath,$CRIT_LIBDIR']
cpp_link_args = ['-Wl,--disable-new-dtags,-rpath,$CRIT_LIBDIR']

[host_machine]
system = 'linux'
cpu_family = 'aarch64'
cpu = 'armv8-a'
endian = 'little'
EOF

# 8. binfmt_misc: Criterion re-executes /proc/self/exe, so the kernel itself
#    must hand aarch64 binaries to qemu.
BINFMT=/proc/sys/fs/binfmt_misc
if [ ! -e "$BINFMT/register" ]; then
    say "mount -t binfmt_misc binfmt_misc $BINFMT"
    mount -t binfmt_misc binfmt_misc "$BINFMT" ||
        die "cannot mount binfmt_misc (a container needs it from its host)"
fi
if ! grep -qx enabled "$BINFMT/qemu-aarch64" 2>/dev/null; then
    say "update-binfmts --enable qemu-aarch64"
    update-binfmts --enable qemu-aarch64
fi
grep -qx enabled "$BINFMT/qemu-aarch64" || die "qemu-aarch64 is not enabled in binfmt_misc"

say "ready. Next, from $REPO:"
say "  meson setup build-arm64 --cross-file .deps/arm64/cross-aarch64.ini -Dbench=false"
say "  meson test -C build-arm64"
