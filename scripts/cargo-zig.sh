#!/usr/bin/env bash
# cargo as the release build runs it: for the target x86_64-unknown-linux-gnu with glibc
# 2.28 (EL8, the oldest management-server OS CloudStack supports), C compiled and linked by
# Zig through cargo-zigbuild, OpenSSL and zlib built in, and the path remaps that make the
# bytes depend only on the commit: not on the checkout directory, the build user's
# CARGO_HOME or the time.
#
#   scripts/cargo-zig.sh build --release -p proxmox-ext   # what scripts/build.sh runs
#   scripts/cargo-zig.sh clippy --release --workspace --all-targets
#   CARGO=scripts/cargo-zig.sh cargo-nextest nextest run --release   # nextest builds via $CARGO
#
# scripts/test.sh lints, documents and tests through it too, so every crate (OpenSSL's C
# above all) is compiled once for the shipped binaries, the lints and the tests. Subcommands
# cargo-zigbuild does not wrap (metadata, ...) go to cargo unchanged. Installs cargo-zigbuild
# and Zig (PyPI, pinned, in the project's virtualenv) when missing.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Whoever called us through $CARGO (nextest) must not see it again: cargo-zigbuild runs the
# real cargo.
unset CARGO

# The subcommand, after cargo's global options (nextest passes --color=auto first); they
# go after it for cargo-zigbuild, whose subcommands take them too.
global=()
while [ $# -gt 0 ] && [[ $1 == -* ]]; do
  global+=("$1")
  shift
done
case "${1:-}" in
  build | b | check | c | clippy | doc | run | r | rustc | test | t) ;;
  *) exec cargo "${global[@]}" "$@" ;;
esac

# shellcheck source=scripts/tools.sh
source "$repo/scripts/tools.sh"
ensure_zig

target=x86_64-unknown-linux-gnu.2.28

cargo_home=$(cd "${CARGO_HOME:-$HOME/.cargo}" && pwd -P)
sysroot=$(rustc --print sysroot)
target_dir=$(cd "$repo" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
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
  echo "cargo-zig: not a git checkout: set CSEXT_BUILD_COMMIT to the commit for --version" >&2
fi

sub=$1
shift
exec cargo-zigbuild "$sub" --target "$target" "${global[@]}" "$@"
