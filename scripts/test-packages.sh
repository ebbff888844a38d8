#!/usr/bin/env bash
# Tests the packages as an operator meets them (scripts/test.sh runs this after the e2e tests,
# on the binaries those tests ran):
#   1. package both formats (scripts/package.sh --no-build) and inspect their metadata, files,
#      modes and scripts;
#   2. the binaries: newest glibc symbol at most GLIBC_2.28, no shared OpenSSL or zlib, no
#      absolute build path left in them;
#   3. in a Debian 11 chroot (debootstrap, glibc 2.31) with a dummy cloudstack-management that
#      creates `cloud` and the layout: install, reinstall, CloudStack's deleteExtension
#      cleanup, remove and purge of each .deb, for the 4.21+ symlinked extensions root and a
#      real directory; the entry point passes CloudStack's checks as `cloud` and runs;
#   4. each .rpm installed with its scripts into a copy of that chroot (rpm --root), with an
#      EL-style cloud user;
#   5. a second build from a clone in another directory with another CARGO_HOME, building
#      the two packages only (-p) at another time of day: same binaries, same packages
#      (scripts/test.sh runs that build in the background: CSEXT_SECOND_BUILD names its
#      directory, made by `scripts/test-packages.sh --second-build DIR`).
# Needs root (chroot). Work files live in target/package-tests/ (the Debian base is kept
# there between runs; `scripts/test-packages.sh --base-only` makes just that). CSEXT_PACKAGE_TESTS="deb rpm" runs only those parts (of: inspect
# binaries deb rpm reproducible); the packages are always built first.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
packages=(proxmox-ext hyperv-ext)
triple=x86_64-unknown-linux-gnu
bins=$repo/target/$triple/release
out=$repo/target/packages
work=$repo/target/package-tests
suite=bullseye

step() { printf '\n== packages: %s\n' "$*"; }
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
check() {
  local what=$1
  shift
  if "$@"; then echo "ok: $what"; else fail "$what"; fi
}
# lacks PATTERN TEXT: TEXT has no line matching the extended regular expression PATTERN.
lacks() { ! grep -Eiq -- "$1" <<<"$2"; }
# count_of PATTERN TEXT: how many lines of TEXT match PATTERN.
count_of() { grep -Ec -- "$1" <<<"$2" || true; }
timed() {
  local start=$SECONDS
  "$@"
  echo "took $((SECONDS - start)) s: $*"
}

mkdir -p "$work"
base=$work/$suite-base

# The Debian base of every chroot, made once (debootstrap, kept in $work). Under a lock, so
# scripts/test.sh can start it in the background (--base-only) while it builds, and the
# chroot tests wait for that run instead of starting their own.
ensure_base() {
  (
    flock 9
    [ ! -f "$base/.complete" ] || exit 0
    command -v debootstrap >/dev/null || fail "debootstrap is missing (scripts/setup.sh installs it)"
    mirror=$(sed -n 's/^URIs: *\(.*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
    [ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null)
    [ -n "$mirror" ] || fail "no Debian mirror configured for apt on this machine"
    rm -rf "$base"
    timed debootstrap --variant=minbase --include=logrotate "$suite" "$base" "$mirror" >"$work/debootstrap.log" 2>&1 ||
      fail "debootstrap $suite failed: $(tail -5 "$work/debootstrap.log")"
    touch "$base/.complete"
  ) 9>"$work/base.lock"
}
# second_build DIR: the release build of the two packages (-p, as scripts/package.sh builds)
# from a clone of HEAD in DIR/src, with another build user's CARGO_HOME (the crates already
# downloaded, nothing built) and another time zone; DIR/.built marks success. scripts/test.sh
# starts it in the background at idle priority (--second-build DIR) while the tests run.
second_build() {
  local dir=$1
  if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    fail "the checkout has uncommitted changes: commit them, the second build is a clone of HEAD"
  fi
  local cargo_home
  cargo_home=$(cd "${CARGO_HOME:-$HOME/.cargo}" && pwd -P)
  rm -rf "$dir/src" "$dir/cargo-home" "$dir/.built"
  git clone --quiet --no-hardlinks "$repo" "$dir/src"
  git -C "$dir/src" checkout --quiet --detach "$(git rev-parse HEAD)"
  mkdir -p "$dir/cargo-home/registry"
  cp -a "$cargo_home/registry/index" "$cargo_home/registry/cache" "$dir/cargo-home/registry/"
  (
    cd "$dir/src"
    export CARGO_HOME=$dir/cargo-home TZ=Pacific/Kiritimati
    export CSEXT_VENV=${CSEXT_VENV:-$repo/.venv}
    unset CARGO_TARGET_DIR
    scripts/build.sh -p proxmox-ext -p hyperv-ext >"$dir/build.log" 2>&1 || {
      tail -30 "$dir/build.log"
      fail "the second build failed"
    }
  )
  touch "$dir/.built"
}
case "${1:-}" in
  --base-only)
    ensure_base
    exit 0
    ;;
  --second-build)
    timed second_build "${2:?--second-build needs a directory}"
    exit 0
    ;;
esac

parts=${CSEXT_PACKAGE_TESTS:-inspect binaries deb rpm reproducible}
want() { [[ " $parts " == *" $1 "* ]]; }

# ---------------------------------------------------------------------------------------
if [ "$parts" != reproducible ] || [ "$(find "$out" -maxdepth 1 -type f 2>/dev/null | wc -l)" -ne 4 ]; then
  step "build the four packages from the tested binaries"
  timed scripts/package.sh --no-build
fi
debs=("$out"/*.deb)
rpms=("$out"/*.rpm)
check "two .deb and two .rpm" test "${#debs[@]}" -eq 2 -a "${#rpms[@]}" -eq 2

if want inspect; then
actions_of() { "$bins/$1" --help | sed -n 's/.*Action to run: //p' | tr -d ' ' | tr ',' '\n'; }

for pkg in "${packages[@]}"; do
  deb=$(ls "$out"/"${pkg}"_*.deb)
  rpm=$(ls "$out"/"${pkg}"-*.rpm)
  info=$(dpkg-deb -I "$deb")
  contents=$(dpkg-deb -c "$deb")
  check "$pkg.deb: name and version from Cargo.toml" grep -q "^ Package: $pkg$" <<<"$info"
  check "$pkg.deb: depends on cloudstack-management (>= 4.21) and libc6 (>= 2.28) only" \
    grep -qx " Depends: cloudstack-management (>= 4.21), libc6 (>= 2.28)" <<<"$info"
  check "$pkg.deb: no Python, jq or curl" lacks 'python|jq|curl' "$(dpkg-deb -f "$deb" Depends Recommends Pre-Depends)"
  check "$pkg.deb: binary root:root 0755 in /usr/libexec/$pkg/" \
    grep -Eq "^-rwxr-xr-x 0/0 .* \./usr/libexec/$pkg/$pkg$" <<<"$contents"
  check "$pkg.deb: logrotate snippet" grep -Eq "^-rw-r--r-- 0/0 .* \./etc/logrotate\.d/$pkg$" <<<"$contents"
  check "$pkg.deb: nothing shipped into CloudStack's trees" \
    lacks '\./(etc/cloudstack|usr/share/cloudstack-management|var/lib/cloudstack)' "$contents"
  n_actions=$(actions_of "$pkg" | wc -l)
  n_examples=$(count_of "\./usr/share/doc/$pkg/examples/.*\.json$" "$contents")
  check "$pkg.deb: an example for each of its $n_actions actions" test "$n_examples" -eq "$n_actions"
  ctl=$work/control-$pkg
  rm -rf "$ctl" && dpkg-deb -e "$deb" "$ctl"
  check "$pkg.deb: conffiles = the logrotate snippet" grep -qx "/etc/logrotate.d/$pkg" "$ctl/conffiles"
  check "$pkg.deb: postinst and postrm, generated for $pkg" grep -qx "PKG=$pkg" "$ctl/postinst" "$ctl/postrm"
  check "$pkg.deb: maintainer scripts are valid sh" sh -n "$ctl/postinst" "$ctl/postrm"

  rinfo=$(rpm -qip "$rpm" 2>/dev/null)
  requires=$(rpm -qp --requires "$rpm" 2>/dev/null)
  rfiles=$(rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]' "$rpm" 2>/dev/null)
  scripts=$(rpm -qp --scripts "$rpm" 2>/dev/null)
  check "$pkg.rpm: name" grep -Eq "^Name +: $pkg$" <<<"$rinfo"
  check "$pkg.rpm: requires cloudstack-management >= 4.21" grep -qx "cloudstack-management >= 4.21" <<<"$requires"
  check "$pkg.rpm: requires glibc 2.28 symbols" grep -qxF "libc.so.6(GLIBC_2.28)(64bit)" <<<"$requires"
  check "$pkg.rpm: no Python, jq or curl" lacks 'python|jq|curl' "$requires"
  check "$pkg.rpm: binary root:root 0755" grep -qx -- "-rwxr-xr-x root:root /usr/libexec/$pkg/$pkg" <<<"$rfiles"
  check "$pkg.rpm: logrotate snippet is a config file" grep -qx "/etc/logrotate.d/$pkg" <<<"$(rpm -qcp "$rpm" 2>/dev/null)"
  check "$pkg.rpm: examples" test "$(count_of "/usr/share/doc/$pkg/examples/.*\.json$" "$rfiles")" -eq "$n_actions"
  check "$pkg.rpm: post-install and post-uninstall scripts for $pkg" \
    test "$(count_of '^(postinstall|postuninstall) scriptlet' "$scripts"):$(count_of "^PKG=$pkg\$" "$scripts")" = 2:2
done
fi

# ---------------------------------------------------------------------------------------
if want binaries; then
step "the packaged binaries run on glibc 2.28 and carry no build path"
cargo_home=$(cd "${CARGO_HOME:-$HOME/.cargo}" && pwd -P)
for pkg in "${packages[@]}"; do
  x=$work/extract-$pkg
  rm -rf "$x" && mkdir -p "$x/deb" "$x/rpm"
  dpkg-deb -x "$out"/"${pkg}"_*.deb "$x/deb"
  # Debian's rpm2cpio exits 1 after writing a zstd payload in full; cmp below checks it.
  (cd "$x/rpm" && { rpm2cpio "$out"/"${pkg}"-*.rpm || true; } | cpio -idm --quiet)
  b=$x/deb/usr/libexec/$pkg/$pkg
  check "$pkg: the .deb's binary is the .rpm's" cmp -s "$b" "$x/rpm/usr/libexec/$pkg/$pkg"
  check "$pkg: the .deb's and the .rpm's documentation are the same" diff -r "$x/deb/usr/share/doc/$pkg/examples" "$x/rpm/usr/share/doc/$pkg/examples" -q
  check "$pkg: the .deb's README is the .rpm's" cmp -s "$x/deb/usr/share/doc/$pkg/README.md" "$x/rpm/usr/share/doc/$pkg/README.md"
  check "$pkg: the packaged binary is the one the tests ran" cmp -s "$b" "$bins/$pkg"
  newest=$(objdump -T "$b" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
  echo "$pkg: newest glibc symbol $newest"
  check "$pkg: needs at most GLIBC_2.28" test "$(printf '%s\nGLIBC_2.28\n' "$newest" | sort -V | tail -1)" = GLIBC_2.28
  needed=$(readelf -d "$b" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')
  echo "$pkg: needs $needed"
  check "$pkg: no shared OpenSSL, zlib or libgcc" lacks 'libssl|libcrypto|libz|libgcc' "$needed"
  strings -n 6 "$b" >"$x/strings"
  for leak in "$cargo_home" "$repo" "/root/" "/home/" ".cache/cargo-zigbuild" "openssl-build"; do
    check "$pkg: no '$leak' in the binary" bash -c '! grep -qF -- "$1" "$2"' _ "$leak" "$x/strings"
  done
  # The precompiled standard library's /rustc/<commit>/ paths, rewritten by scripts/build.sh.
  check "$pkg: no /rustc/<commit>/ path in the binary" bash -c '! grep -Eq "/rustc/[0-9a-f]{40}" "$1"' _ "$x/strings"
  echo "$pkg: $(grep -o '/rust-std-[0-9.]*/' "$x/strings" | wc -l) standard-library paths as /rust-std-<version>/"
done
fi

# ---------------------------------------------------------------------------------------
if want deb || want rpm; then
  step "a Debian $suite chroot (glibc 2.31) with a dummy cloudstack-management"
  ensure_base
fi

# dummy_cloudstack LAYOUT: a cloudstack-management 4.22 .deb that creates what the real one
# does for extensions: the cloud user, the extensions root (the 4.21+ symlink into
# /etc/cloudstack/extensions, or a real directory), upstream's extensions, a payload and
# CloudStack's log directory.
dummy_cloudstack() {
  local layout=$1 d=$work/dummy-$1
  rm -rf "$d" && mkdir -p "$d/DEBIAN"
  cat >"$d/DEBIAN/control" <<EOF
Package: cloudstack-management
Version: 4.22.0.0
Architecture: all
Maintainer: tests <tests@localhost>
Description: stand-in for CloudStack's management server (tests only)
EOF
  cat >"$d/DEBIAN/postinst" <<EOF
#!/bin/sh
set -e
id cloud >/dev/null 2>&1 || useradd -r -U -M -d /var/lib/cloudstack/management -s /bin/sh cloud
install -d -o cloud -g cloud /var/lib/cloudstack/management/extensions/ProxmoxRs /var/log/cloudstack/management
echo '{"secret":"x"}' >/var/lib/cloudstack/management/extensions/ProxmoxRs/payload.json
install -d -o cloud -g cloud /usr/share/cloudstack-management
if [ "$layout" = symlink ]; then
  install -d -o cloud -g cloud /etc/cloudstack/extensions
  ln -sfn /etc/cloudstack/extensions /usr/share/cloudstack-management/extensions
else
  install -d -o cloud -g cloud /usr/share/cloudstack-management/extensions
fi
for e in Proxmox/proxmox.sh HyperV/hyperv.py MaaS/maas.py; do
  install -d -o cloud -g cloud /usr/share/cloudstack-management/extensions/\${e%/*}
  echo "# upstream \$e" >/usr/share/cloudstack-management/extensions/\$e
done
EOF
  chmod 0755 "$d/DEBIAN/postinst"
  dpkg-deb --root-owner-group -b "$d" "$work/cloudstack-management-$layout.deb" >/dev/null
}

# A fresh copy of the base for one test.
fresh_root() {
  local r=$1
  rm -rf "$r"
  cp -a "$base" "$r"
  mkdir -p "$r/tmp/pkgs"
  cp "$out"/*.deb "$out"/*.rpm "$r/tmp/pkgs/"
}

in_root() {
  local r=$1
  shift
  chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"
}

as_cloud() {
  local r=$1
  shift
  chroot --userspec=cloud:cloud "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/var/lib/cloudstack/management "$@"
}

# Everything on the root's file system that a package could have left, with owners, modes and
# link targets; dpkg's own bookkeeping and logs excluded.
snapshot() {
  local r=$1
  (cd "$r" && find . -xdev \( -path ./proc -o -path ./sys -o -path ./dev -o -path ./tmp -o -path ./var/lib/dpkg -o -path ./var/cache -o -path ./var/log/dpkg.log -o -path ./var/log/apt -o -path ./var/lib/rpm \) -prune -o -printf '%p %u:%g %m %l\n' | sort)
}

# (Paths inside a root are resolved inside it: the extensions root is an absolute symlink.)
upstream_sums() {
  in_root "$1" sh -c 'cd /usr/share/cloudstack-management/extensions && sha256sum Proxmox/proxmox.sh HyperV/hyperv.py MaaS/maas.py /var/lib/cloudstack/management/extensions/ProxmoxRs/payload.json'
}

# The packages in ROOT's /tmp/pkgs matching the globs, as paths inside ROOT.
pkgs() {
  local r=$1 g
  shift
  for g in "$@"; do (cd "$r/tmp/pkgs" && ls $g) | sed 's|^|/tmp/pkgs/|'; done
}

# entry_point_ok ROOT PKG DIR: CloudStack's checks, as cloud: the entry point exists, is a
# regular file after following links, readable, executable, alone in its directory, owned
# as CloudStack's are; it runs and names its commit.
entry_point_ok() {
  local r=$1 pkg=$2 dir=$3
  local ext=/usr/share/cloudstack-management/extensions/$dir
  # (inside the root: user names are the root's, and the extensions root may be a symlink)
  check "$pkg: $ext/$pkg is a link to /usr/libexec/$pkg/$pkg" test "$(in_root "$r" readlink "$ext/$pkg")" = "/usr/libexec/$pkg/$pkg"
  check "$pkg: $dir/ is cloud:cloud 0755" test "$(in_root "$r" stat -L -c '%U:%G %a' "$ext")" = "cloud:cloud 755"
  check "$pkg: $dir/ holds the entry point only" test "$(in_root "$r" ls -A "$ext")" = "$pkg"
  check "$pkg: as cloud, a readable executable regular file" as_cloud "$r" sh -c "test -f '$ext/$pkg' && test -r '$ext/$pkg' && test -x '$ext/$pkg'"
  local version
  version=$(as_cloud "$r" "$ext/$pkg" --version)
  check "$pkg: runs on $suite as cloud: '$version'" grep -Eq "^$pkg [0-9.]+ \(commit [0-9a-f]{12}(-dirty)?\)$" <<<"$version"
  # A real action, the way CloudStack runs it: no network in the chroot, so it fails at
  # reaching the example's host, with one JSON document, and logs as cloud.
  local doc
  doc=$(as_cloud "$r" "$ext/$pkg" statuses "/usr/share/doc/$pkg/examples/statuses.json" 20 </dev/null 2>&1 || true)
  check "$pkg: statuses from the example answers one JSON error" grep -Eq '^\{"status":"error","error":".*(connect|resolve|lookup)' <<<"$doc"
  check "$pkg: logs as cloud under /var/log/cloudstack/management/extensions" \
    test "$(in_root "$r" stat -c %U "/var/log/cloudstack/management/extensions/$pkg.log")" = cloud
}

if want deb; then
for layout in symlink dir; do
  step "install, reinstall, cleanup, remove, purge: extensions root as a $layout"
  r=$work/root-$layout
  fresh_root "$r"
  dummy_cloudstack "$layout"
  cp "$work/cloudstack-management-$layout.deb" "$r/tmp/"
  in_root "$r" dpkg -i "/tmp/cloudstack-management-$layout.deb" >/dev/null
  before=$(snapshot "$r")
  sums=$(upstream_sums "$r")

  in_root "$r" dpkg -i $(pkgs "$r" 'proxmox-ext_*.deb' 'hyperv-ext_*.deb')
  entry_point_ok "$r" proxmox-ext proxmoxrs
  entry_point_ok "$r" hyperv-ext hypervrs
  check "logrotate accepts the snippets" in_root "$r" sh -c 'logrotate -d /etc/logrotate.d/proxmox-ext /etc/logrotate.d/hyperv-ext 2>/dev/null'

  in_root "$r" dpkg -i $(pkgs "$r" 'proxmox-ext_*.deb' 'hyperv-ext_*.deb') >/dev/null
  entry_point_ok "$r" proxmox-ext proxmoxrs
  entry_point_ok "$r" hyperv-ext hypervrs

  # deleteExtension cleanup=true: CloudStack deletes the directory on every server.
  as_cloud "$r" rm -rf /usr/share/cloudstack-management/extensions/proxmoxrs
  in_root "$r" dpkg -i $(pkgs "$r" 'proxmox-ext_*.deb') >/dev/null
  entry_point_ok "$r" proxmox-ext proxmoxrs
  as_cloud "$r" rm -rf /usr/share/cloudstack-management/extensions/proxmoxrs
  check "removal after CloudStack's cleanup does not fail" in_root "$r" dpkg -r proxmox-ext
  in_root "$r" dpkg -r hyperv-ext >/dev/null
  check "removed: no entry point left" in_root "$r" test ! -e /usr/share/cloudstack-management/extensions/hypervrs
  check "removed: the logs stay until purge" test -f "$r/var/log/cloudstack/management/extensions/hyperv-ext.log"
  in_root "$r" dpkg -P proxmox-ext hyperv-ext >/dev/null
  check "purged: the file system is as before the install" diff <(echo "$before") <(snapshot "$r")
  check "upstream's extensions and CloudStack's payloads untouched" test "$sums" = "$(upstream_sums "$r")"
done
fi

# ---------------------------------------------------------------------------------------
if want rpm; then
step "rpm --root: install, upgrade and erase each .rpm with its scripts (EL-style cloud user)"
r=$work/root-rpm
fresh_root "$r"
spec=$work/cloudstack-management.spec
cat >"$spec" <<'EOF'
Name: cloudstack-management
Version: 4.22.0.0
Release: 1
Summary: stand-in for CloudStack's management server (tests only)
License: Apache-2.0
BuildArch: noarch
# What glibc and bash provide on EL8 (the chroot's are Debian's, unknown to rpm).
Provides: libc.so.6(GLIBC_2.28)(64bit)
Provides: /bin/sh
%description
Creates the cloud user with EL's home and the 4.21+ extensions layout.
%pre
id cloud >/dev/null 2>&1 || useradd -M -U -r -s /bin/sh -d /var/cloudstack/management cloud
%post
install -d -o cloud -g cloud /var/cloudstack/management /etc/cloudstack/extensions /var/log/cloudstack/management /usr/share/cloudstack-management
ln -sfn /etc/cloudstack/extensions /usr/share/cloudstack-management/extensions
%files
EOF
rm -rf "$work/rpmbuild"
rpmbuild -bb --quiet --define "_topdir $work/rpmbuild" "$spec" >/dev/null 2>&1 ||
  fail "rpmbuild of the dummy cloudstack-management failed"
rpm --root "$r" --initdb
rpm --root "$r" -i --nosignature "$work"/rpmbuild/RPMS/noarch/cloudstack-management-*.rpm
check "rpm: both packages install with their dependencies met" \
  rpm --root "$r" -i --nosignature "$out"/proxmox-ext-*.rpm "$out"/hyperv-ext-*.rpm
check "rpm: cloud's home is EL's" test "$(in_root "$r" sh -c 'getent passwd cloud | cut -d: -f6')" = /var/cloudstack/management
entry_point_ok "$r" proxmox-ext proxmoxrs
entry_point_ok "$r" hyperv-ext hypervrs
check "rpm: files as packaged" rpm --root "$r" -V proxmox-ext hyperv-ext
check "rpm: upgrade (reinstall) keeps the entry points" \
  rpm --root "$r" -U --replacepkgs --nosignature "$out"/proxmox-ext-*.rpm "$out"/hyperv-ext-*.rpm
entry_point_ok "$r" proxmox-ext proxmoxrs
check "rpm: erase" rpm --root "$r" -e proxmox-ext hyperv-ext
check "rpm: erased: no entry point, no binary" \
  test ! -e "$r/etc/cloudstack/extensions/proxmoxrs" -a ! -e "$r/etc/cloudstack/extensions/hypervrs" -a ! -e "$r/usr/libexec/proxmox-ext"
fi

# ---------------------------------------------------------------------------------------
if want reproducible; then
step "reproducible: a clone elsewhere, another CARGO_HOME, -p instead of --workspace, another time zone"
second=${CSEXT_SECOND_BUILD:-}
if [ -z "$second" ]; then
  second=$(mktemp -d /tmp/csext-repro.XXXXXX)
  timed second_build "$second"
elif [ ! -f "$second/.built" ]; then
  tail -30 "$second/build.log" 2>/dev/null || true
  fail "the second build in $second did not finish (its log: $second/build.log)"
fi
# The packages of the clone, the way package.sh makes them after its build.
(
  cd "$second/src"
  export CARGO_HOME=$second/cargo-home TZ=Pacific/Kiritimati
  timed scripts/package.sh --no-build >"$second/package.log" 2>&1 || {
    tail -30 "$second/package.log"
    fail "packaging the second build failed"
  }
)
first_sums=$(cd "$repo/target" && sha256sum $triple/release/proxmox-ext $triple/release/hyperv-ext packages/*)
second_sums=$(cd "$second/src/target" && sha256sum $triple/release/proxmox-ext $triple/release/hyperv-ext packages/*)
echo "first build ($repo, --workspace):"
echo "$first_sums"
echo "second build ($second/src, -p, CARGO_HOME=$second/cargo-home):"
echo "$second_sums"
check "the same binaries and packages, byte for byte" test "$first_sums" = "$second_sums"
rm -rf "$second"
fi

echo
echo "packages: all checks passed"
