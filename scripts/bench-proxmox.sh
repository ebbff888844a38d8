#!/usr/bin/env bash
# Benchmark: proxmox-ext's lifecycle wall time and per-action median latency against fakepve
# (time_scale 0), and the same for the peer cloudstack-extension-proxmox-ngine 0.2.0 in the
# same run. Usage: scripts/bench-proxmox.sh [--runs N] (default 20 runs after 2 warm-ups).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

scripts/setup.sh >&2
venv=${CSEXT_VENV:-$repo/.venv}
echo "bench: building the release binary" >&2
cargo build --release --quiet -p proxmox-ext
exec "$venv/bin/python" bench/proxmox_bench.py \
  --binary "$repo/target/release/proxmox-ext" \
  --peer "$venv/bin/cloudstack-extension-proxmox" "$@"
