#!/usr/bin/env bash
# The benchmark of issue 11, in one command, from a fresh clone:
#
#   bench/run.sh [--runs 20] [--warmup 3] [--cases version,status,...] [--no-readme]
#
# Installs what it needs (scripts/setup.sh: Debian packages, the venv with fakepve and the peer
# cloudstack-extension-proxmox-ngine 0.2.0), builds the release binaries and bench/floor (the
# floor client and the `measure` helper, a separate crate with its own Cargo.lock), then runs
# bench/bench.py: every case for proxmox-ext, ngine and the floor client, alternating, on
# simulators it starts itself (fakepve through tests/pve/harness.py, hyperv-testhost). Writes
# bench/results.md and, when every case ran, copies it into README.md. Takes about 15 minutes
# at 20 runs; not part of CI (its numbers depend on the machine), but scripts/test.sh checks
# that the harness still parses.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

scripts/setup.sh >&2
venv=${CSEXT_VENV:-$repo/.venv}
command -v openssl >/dev/null || { echo "bench: needs openssl (the trust-store case hashes a certificate)" >&2; exit 1; }
echo "bench: building the release binaries and bench/floor" >&2
cargo build --release --quiet --workspace --bins
cargo build --release --quiet --locked --manifest-path bench/floor/Cargo.toml --features floor
exec "$venv/bin/python" bench/bench.py "$@"
