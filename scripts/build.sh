#!/usr/bin/env bash
# The release build the packages ship and the end-to-end tests run (scripts/cargo-zig.sh):
# every binary needs at most glibc 2.28 (cargo-zigbuild links against it; OpenSSL and zlib
# are built in), and the bytes depend only on the commit: not on the checkout directory, the
# build user's CARGO_HOME, the time, or whether one package or the whole workspace is built.
#
#   scripts/build.sh --workspace --bins     # what scripts/test.sh builds
#   scripts/build.sh -p proxmox-ext -p hyperv-ext
#
# The binaries land in target/x86_64-unknown-linux-gnu/release/; the shipped ones then have
# the precompiled standard library's /rustc/<commit>/ paths rewritten
# (scripts/remap-std-paths.py).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
scripts/cargo-zig.sh build --release --locked "$@"
version=$(rustc --version | awk '{print $2}')
for exe in proxmox-ext hyperv-ext; do
  bin=target/x86_64-unknown-linux-gnu/release/$exe
  [ ! -f "$bin" ] || python3 scripts/remap-std-paths.py "$version" "$bin"
done
