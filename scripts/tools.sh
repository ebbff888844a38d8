# Pinned build and packaging tools, each installed when missing (sourced by build.sh and
# package.sh; expects $repo). Zig and cargo-zigbuild come from PyPI into the project's
# virtualenv (scripts/setup.sh pins them); cargo-deb and cargo-generate-rpm from crates.io.

CARGO_DEB_VERSION=3.8.0
CARGO_GENERATE_RPM_VERSION=0.21.1

# Puts cargo-zigbuild and zig (the linker for glibc 2.28) on PATH.
ensure_zig() {
  "$repo/scripts/setup.sh" >/dev/null
  local venv=${CSEXT_VENV:-$repo/.venv}
  export PATH="$venv/bin:$PATH"
  command -v cargo-zigbuild >/dev/null || {
    echo "tools: cargo-zigbuild is missing from $venv" >&2
    return 1
  }
}

# cargo install of NAME@VERSION unless `cargo NAME --version` already says VERSION.
ensure_cargo_tool() {
  local name=$1 version=$2
  if "cargo-$name" --version 2>/dev/null | grep -qF " $version"; then
    return 0
  fi
  echo "tools: installing cargo-$name $version from crates.io"
  # A tool that packages two files needs no optimised build: an unoptimised one without
  # debug info compiles in half the time on a cold machine. The shared target directory lets
  # the two tools share their common crates.
  CARGO_PROFILE_DEV_DEBUG=0 CARGO_TARGET_DIR="$repo/target/tools-build" \
    cargo install --locked --quiet --debug "cargo-$name@$version"
}

ensure_packagers() {
  ensure_cargo_tool deb "$CARGO_DEB_VERSION"
  ensure_cargo_tool generate-rpm "$CARGO_GENERATE_RPM_VERSION"
}
