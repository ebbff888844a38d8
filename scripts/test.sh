#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this): set-up, formatting and
# lint gates, the release build, then every test against real peers (fakepve for Proxmox VE,
# OpenSSH sshd for Hyper-V) and the documentation examples.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

scripts/setup.sh

echo "== format and lint"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc -p ext-sdk --no-deps --locked --quiet

echo "== build (release)"
cargo build --release --workspace --bins --locked

echo "== documentation examples"
cargo test --release --doc -p ext-sdk --locked

# Every extension run of the suite logs at trace (RUST_LOG is passed on to them), each log is
# kept in E2E_LOG_DIR with the secret values the tests used, and a final scan proves no secret
# reached any log, not even split over the lines of a library's hex dump of raw traffic.
echo "== tests (release), extensions logging at trace"
export E2E_LOG_DIR="$repo/target/e2e-logs"
rm -rf "$E2E_LOG_DIR"
mkdir -p "$E2E_LOG_DIR"
status=0
if command -v cargo-nextest >/dev/null 2>&1; then
  RUST_LOG=trace cargo nextest run --release --workspace --locked --no-fail-fast || status=$?
else
  RUST_LOG=trace cargo test --release --workspace --locked --no-fail-fast || status=$?
fi

echo "== secrets in the logs of every run"
python3 tests/scan_logs.py "$E2E_LOG_DIR" || status=$?
exit "$status"
