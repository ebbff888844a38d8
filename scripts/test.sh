#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this): set-up, formatting and
# lint gates, the release build, the package tests (scripts/test-packages.sh), then every test
# against real peers (fakepve for Proxmox VE, OpenSSH sshd for Hyper-V) and the
# documentation examples.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

scripts/setup.sh

echo "== format and lint (at ${SECONDS} s)"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc -p ext-sdk --no-deps --locked --quiet

echo "== build (release: the binaries the packages ship, glibc 2.28, reproducible) (at ${SECONDS} s)"
scripts/build.sh --workspace --bins
# The e2e tests run these very binaries.
export E2E_BIN_DIR=$repo/target/x86_64-unknown-linux-gnu/release

echo "== packages (build, inspect, install in a Debian 11 chroot and with rpm, rebuild elsewhere) (at ${SECONDS} s)"
scripts/test-packages.sh

echo "== documentation examples (at ${SECONDS} s)"
cargo test --release --doc -p ext-sdk --locked

# Last, so the run closes on the test runner's summary.
echo "== tests (release) (at ${SECONDS} s)"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --release --workspace --locked --no-fail-fast
else
  cargo test --release --workspace --locked --no-fail-fast
fi
