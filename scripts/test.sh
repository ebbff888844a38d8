#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this): set-up, formatting and
# lint gates, the release build, then every test against real peers (fakepve for Proxmox VE,
# OpenSSH sshd for Hyper-V) and the documentation examples.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

scripts/setup.sh
venv=${CSEXT_VENV:-$repo/.venv}

echo "== format and lint"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc -p ext-sdk --no-deps --locked --quiet

echo "== build (release)"
cargo build --release --workspace --bins --locked

echo "== benchmark harness (its unit tests; the benchmark itself is bench/run.sh)"
cargo build --release --quiet --locked --manifest-path bench/floor/Cargo.toml
"$venv/bin/python" -m unittest discover -s bench -p 'test_*.py'

echo "== documentation examples"
cargo test --release --doc -p ext-sdk --locked

# Last, so the run closes on the test runner's summary.
echo "== tests (release)"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --release --workspace --locked --no-fail-fast
else
  cargo test --release --workspace --locked --no-fail-fast
fi
