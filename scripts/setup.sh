#!/usr/bin/env bash
# Installs what the demo and the tests need on a fresh Debian 12 machine, and nothing
# that is already there: Debian packages (sshd for the Hyper-V test host, headers for the
# ssh2 crate's C build, the openssl command for the TLS tests and the benchmark) and a Python
# virtualenv holding the Proxmox VE simulator (fakepve, AGPL: installed here at test time,
# never vendored), the peer implementation we benchmark against, pyspnego (the NTLM acceptor
# of the Hyper-V test host's WinRM peer) and pywinrm (the WinRM client upstream's hyperv.py
# uses, to prove that peer speaks real WinRM). Idempotent; safe to run before every test run.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${CSEXT_VENV:-$repo/.venv}

apt_packages=(openssh-server openssl libssl-dev pkg-config zlib1g-dev)
python_requirements=("fakepve[crypto]==0.5.0" "cloudstack-extension-proxmox-ngine==0.2.0" "pyspnego==0.12.4" "pywinrm==0.5.0")

say() { printf 'setup: %s\n' "$*"; }

missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

stamp="$venv/.requirements"
wanted=$(printf '%s\n' "${python_requirements[@]}")
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  say "creating Python virtualenv $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "${python_requirements[@]}"
  printf '%s\n' "$wanted" >"$stamp"
fi
say "ready (venv: $venv)"
