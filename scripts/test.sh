#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this): set-up, formatting and
# lint gates, the release build, the package tests (scripts/test-packages.sh), then every test
# against real peers (fakepve for Proxmox VE, OpenSSH sshd for Hyper-V) and the
# documentation examples.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

scripts/setup.sh
venv=${CSEXT_VENV:-$repo/.venv}

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

echo "== benchmark harness (its unit tests; the benchmark itself is bench/run.sh) (at ${SECONDS} s)"
cargo build --release --quiet --locked --manifest-path bench/floor/Cargo.toml
"$venv/bin/python" -m unittest discover -s bench -p 'test_*.py'

echo "== documentation examples (at ${SECONDS} s)"
cargo test --release --doc -p ext-sdk --locked

# Every extension run of the suite logs at trace (RUST_LOG is passed on to them), each log is
# kept in E2E_LOG_DIR with the secret values the tests used, and a final scan proves no secret
# reached any log, not even split over the lines of a library's hex dump of raw traffic.
# Last, so the run closes on the test runner's summary and the scan.
echo "== tests (release), extensions logging at trace (at ${SECONDS} s)"
export E2E_LOG_DIR="$repo/target/e2e-logs"
rm -rf "$E2E_LOG_DIR"
mkdir -p "$E2E_LOG_DIR"
status=0
if command -v cargo-nextest >/dev/null 2>&1; then
  RUST_LOG=trace cargo nextest run --release --workspace --locked --no-fail-fast || status=$?
else
  RUST_LOG=trace cargo test --release --workspace --locked --no-fail-fast || status=$?
fi

echo "== secrets in the logs of every run (at ${SECONDS} s)"
python3 tests/scan_logs.py "$E2E_LOG_DIR" || status=$?
exit "$status"
