# Pinned build and packaging tools, each installed when missing (sourced by build.sh and
# package.sh; expects $repo). Zig and cargo-zigbuild come from PyPI into the project's
# virtualenv (scripts/setup.sh pins them); cargo-deb and cargo-generate-rpm from the crates registry.

CARGO_DEB_VERSION=3.8.0
CARGO_GENERATE_RPM_VERSION=0.21.1

# Puts cargo-zigbuild on PATH and points it at the zig executable of the ziglang wheel.
ensure_zig() {
  "$repo/scripts/setup.sh" >/dev/null
  local venv=${CSEXT_VENV:-$repo/.venv}
  local zig
  zig=$(find "$venv/lib" -path '*/site-packages/ziglang/zig' -type f -perm -u+x | head -1)
  if [ ! -x "$venv/bin/cargo-zigbuild" ] || [ -z "$zig" ]; then
    echo "tools: cargo-zigbuild or ziglang is missing from $venv" >&2
    return 1
  fi
  # Only cargo-zigbuild from the virtualenv: its python3 would be found first.
  mkdir -p "$venv/zig-bin"
  ln -sfn "$venv/bin/cargo-zigbuild" "$venv/zig-bin/cargo-zigbuild"
  export PATH="$venv/zig-bin:$PATH"
  # cargo-zigbuild runs for every C file and link, and asks `python3 -m ziglang` first, a
  # Python start-up each time (the OpenSSL build has over a thousand files): a Python that
  # does not exist sends it straight to the zig executable named here.
  export CARGO_ZIGBUILD_PYTHON_PATH=$venv/zig-bin/no-python
  export CARGO_ZIGBUILD_ZIG_PATH=$zig
}

# cargo install of NAME@VERSION unless `cargo NAME --version` already says VERSION.
ensure_cargo_tool() {
  local name=$1 version=$2
  if "cargo-$name" --version 2>/dev/null | grep -qF " $version"; then
    return 0
  fi
  echo "tools: installing cargo-$name $version from the crates registry"
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
