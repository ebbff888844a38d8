#!/usr/bin/env bash
# The release build the packages ship and the end-to-end tests run: every binary needs at
# most glibc 2.28 (cargo-zigbuild links against it; OpenSSL and zlib are built in), and the
# bytes depend only on the commit: not on the checkout directory, the build user's
# CARGO_HOME, the time, or whether one package or the whole workspace is built.
#
#   scripts/build.sh --workspace --bins     # what scripts/test.sh builds
#   scripts/build.sh -p proxmox-ext -p hyperv-ext
#
# The binaries land in target/x86_64-unknown-linux-gnu/release/. Installs cargo-zigbuild and
# Zig (PyPI, pinned, in the project's virtualenv) when missing.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=scripts/tools.sh
source scripts/tools.sh
ensure_zig

# glibc 2.28: EL8, the oldest management-server OS CloudStack supports.
target=x86_64-unknown-linux-gnu.2.28

cargo_home=$(cd "${CARGO_HOME:-$HOME/.cargo}" && pwd -P)
sysroot=$(rustc --print sysroot)
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
# Absolute paths rustc would otherwise embed (panic locations, file!()) become fixed ones.
# Set whole, so a developer's own RUSTFLAGS cannot change the bytes.
unset CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS
export RUSTFLAGS="--remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$repo=/build --remap-path-prefix=$target_dir=/target --remap-path-prefix=$sysroot=/rust"
# The vendored OpenSSL would embed its install directory under target/ as its engines and
# modules directories; give them the fixed paths of a stock /usr/local build instead (the
# later definition wins; neither directory is used: no shared modules, no engines loaded).
export CPPFLAGS='-DENGINESDIR=\"/usr/local/lib/engines-3\" -DMODULESDIR=\"/usr/local/lib/ossl-modules\"'
# The same build from a tarball (no git) still names its commit.
if [ -z "${CSEXT_BUILD_COMMIT:-}" ] && ! git -C "$repo" rev-parse HEAD >/dev/null 2>&1; then
  echo "build: not a git checkout: set CSEXT_BUILD_COMMIT to the commit for --version" >&2
fi

exec cargo zigbuild --release --locked --target "$target" "$@"
