#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this): set-up, formatting and
# lint gates, the release build, the package tests (scripts/test-packages.sh), then every test
# against real peers (fakepve for Proxmox VE, OpenSSH sshd for Hyper-V) and the
# documentation examples.
#
# Lints, docs, the release build and the tests all go through scripts/cargo-zig.sh (the
# release profile, glibc 2.28, the build's flags), so each crate is compiled once for all of
# them, and the tests run on the code and the very binaries the packages ship. Each step
# prints its wall and CPU time, and the run ends with the table of them.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
venv=${CSEXT_VENV:-$repo/.venv}

# Step timing: wall from SECONDS, CPU as the user + system time of every finished child
# (the shell builtin `times`, read in this shell: a subshell would see none of it).
timing=$(mktemp)
# Background jobs run in sessions of their own; the ones still running when the suite ends
# (it failed early) are stopped with all their processes.
bg_pids=()
trap 'rm -f "$timing"; for p in "${bg_pids[@]}"; do kill -- "-$p" 2>/dev/null || true; done' EXIT
# Call `times >"$timing"` first, in this shell; this reads it.
cpu_seconds() {
  awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, p, /[ms]/); t += p[1] * 60 + p[2] }; printf "%.0f", t }' "$timing"
}
steps=()
step_name="" step_wall=0 step_cpu=0
step() {
  local cpu
  times >"$timing"
  cpu=$(cpu_seconds)
  if [ -n "$step_name" ]; then
    steps+=("$(printf '%-34s %6d s wall %6d s CPU' "$step_name" $((SECONDS - step_wall)) $((cpu - step_cpu)))")
  fi
  step_name=$1 step_wall=$SECONDS step_cpu=$cpu
  [ -z "$1" ] || echo "== $1 (at ${SECONDS} s)"
}
summary() {
  step ""
  echo "== time per step (CPU: user + system of the step's processes)"
  printf '%s\n' "${steps[@]}"
  times >"$timing"
  printf '%-34s %6d s wall %6d s CPU\n' total "$SECONDS" "$(cpu_seconds)"
}

step "set-up"
scripts/setup.sh
# Background work, so the 2 cores are never idle while the foreground waits on a test peer,
# the network or a serial compile step; each job is waited for by the step that needs it:
# - the package tests' Debian chroot base (debootstrap: mostly download and unpacking);
# - the pinned packaging tools (a compile), at idle priority (SCHED_IDLE), so the foreground
#   keeps the CPU it wants.
mkdir -p target/package-tests
setsid scripts/test-packages.sh --base-only >target/package-tests/base.log 2>&1 &
bg_pids+=($!)
idle() { setsid chrt --idle 0 nice -n 19 "$@"; }
idle bash -c 'repo=$1 && source scripts/tools.sh && ensure_packagers' _ "$repo" >target/package-tests/tools.log 2>&1 &
tools_pid=$!
bg_pids+=("$tools_pid")

step "format and lint"
cargo fmt --all -- --check
scripts/cargo-zig.sh clippy --release --workspace --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" scripts/cargo-zig.sh doc --release -p ext-sdk --no-deps --locked --quiet

step "build (the shipped binaries)"
scripts/build.sh --workspace --bins
# The e2e tests run these very binaries.
export E2E_BIN_DIR=$repo/target/x86_64-unknown-linux-gnu/release
shipped_sums=$(cd "$E2E_BIN_DIR" && sha256sum proxmox-ext hyperv-ext)
# The reproducibility test's second build (another directory and CARGO_HOME, -p), at idle
# priority while the package and e2e tests run; compared at the end.
second_build=$(mktemp -d /tmp/csext-repro.XXXXXX)
idle scripts/test-packages.sh --second-build "$second_build" >"$second_build.log" 2>&1 &
second_pid=$!
bg_pids+=("$second_pid")

step "packaging tools (cargo-deb, cargo-generate-rpm)"
wait "$tools_pid" || {
  cat target/package-tests/tools.log
  echo "FAIL: installing the packaging tools"
  exit 1
}
cat target/package-tests/tools.log

step "packages"
CSEXT_PACKAGE_TESTS="inspect binaries deb rpm" scripts/test-packages.sh

step "benchmark harness"
# Its unit tests need bench/floor's measure only; the benchmark itself is bench/run.sh.
cargo build --release --quiet --locked --manifest-path bench/floor/Cargo.toml --bin measure
"$venv/bin/python" -m unittest discover -s bench -p 'test_*.py'

step "documentation examples"
scripts/cargo-zig.sh test --release --doc -p ext-sdk --locked

# Every extension run of the suite logs at trace (RUST_LOG is passed on to them), each log is
# kept in E2E_LOG_DIR with the secret values the tests used, and a final scan proves no secret
# reached any log, not even split over the lines of a library's hex dump of raw traffic.
# Last, so the run closes on the test runner's summary and the scan.
step "tests, extensions logging at trace"
export E2E_LOG_DIR="$repo/target/e2e-logs"
rm -rf "$E2E_LOG_DIR"
mkdir -p "$E2E_LOG_DIR"
test_log=$repo/target/test-run.log
if command -v cargo-nextest >/dev/null 2>&1; then
  # nextest builds the tests with $CARGO (`cargo nextest` would set it to cargo itself).
  # A failed test runs once more (the second build shares the 2 cores): one that passes then
  # is reported FLAKY, listed again at the end of the run, and not hidden.
  run_tests() {
    CARGO=$repo/scripts/cargo-zig.sh RUST_LOG=trace \
      cargo-nextest nextest run --release --workspace --locked --no-fail-fast --retries 1
  }
else
  run_tests() { RUST_LOG=trace scripts/cargo-zig.sh test --release --workspace --locked --no-fail-fast; }
fi
set +e
run_tests 2>&1 | tee "$test_log"
status=${PIPESTATUS[0]}
set -e
summary_line=$(grep -E '^ *Summary \[' "$test_log" | tail -1 || true)
flaky=$(grep -E '^ *FLAKY ' "$test_log" | sort -u || true)
if [ "$shipped_sums" != "$(cd "$E2E_BIN_DIR" && sha256sum proxmox-ext hyperv-ext)" ]; then
  echo "FAIL: building the tests changed the binaries the e2e tests ran: they are not the packaged ones"
  status=1
fi

step "secrets in the logs of every run"
python3 tests/scan_logs.py "$E2E_LOG_DIR" || status=$?

step "packages: reproducible (the second build)"
if wait "$second_pid"; then
  cat "$second_build.log"
  CSEXT_PACKAGE_TESTS=reproducible CSEXT_SECOND_BUILD=$second_build scripts/test-packages.sh || status=1
else
  cat "$second_build.log"
  echo "FAIL: the reproducibility test's second build"
  status=1
fi
rm -rf "$second_build" "$second_build.log"

summary
# The test runner's closing line closes the run too.
[ -z "$flaky" ] || printf 'passed only when run again:\n%s\n' "$flaky"
[ -z "$summary_line" ] || echo "$summary_line"
exit "$status"
