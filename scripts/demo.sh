#!/usr/bin/env bash
# Demo: one VM through its whole life on a simulated Proxmox VE node, driven by the release
# proxmox-ext binary exactly as CloudStack runs it (`proxmox-ext <action> <payload> <timeout>`),
# then (as root) one Hyper-V VM through hyperv-ext and hyperv-testhost.
#
# Starts fakepve (through tests/pve/harness.py) on a loopback address, then runs
#   check -> prepare -> create -> status -> statuses -> getconsole -> CreateSnapshot
#   -> ListSnapshots -> RestoreSnapshot -> DeleteSnapshot -> reboot -> stop -> delete,
# one typical mistake (a misspelt detail) and its error, and prints each action's JSON answer.
# Then, when run as root, starts hyperv-testhost (a real sshd on loopback whose PowerShell is
# simulated; it needs root to create its test user) and runs
#   create -> status -> statuses -> CreateSnapshot -> ListSnapshots -> reboot -> stop -> delete
# through hyperv-ext; otherwise it says why that half is skipped.
# Works on a fresh clone: installs what it needs first.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

scripts/setup.sh >&2
venv=${CSEXT_VENV:-$repo/.venv}
python="$venv/bin/python"

echo "demo: building the release binaries" >&2
cargo build --release --quiet -p proxmox-ext -p hyperv-ext -p hyperv-testhost
bin="$repo/target/release/proxmox-ext"

work=$(mktemp -d -t proxmox-demo-XXXXXX)
# The VMID ledger of this demo's own "management server", gone with the demo.
export PROXMOX_EXT_STATE_DIR="$work/state"
secret="demo-$RANDOM$RANDOM"
harness_pid=""
testhost_pid=""
hvdir=""
cleanup() {
  [ -n "$harness_pid" ] && kill "$harness_pid" 2>/dev/null || true
  [ -n "$testhost_pid" ] && kill "$testhost_pid" 2>/dev/null && wait "$testhost_pid" 2>/dev/null || true
  rm -rf "$work" ${hvdir:+"$hvdir"}
}
trap cleanup EXIT

# A loopback address of its own, so the simulator can use PVE's port 8006.
ready=""
for _ in 1 2 3 4 5; do
  host="127.$((RANDOM % 200 + 20)).$((RANDOM % 250 + 1)).$((RANDOM % 250 + 2))"
  coproc HARNESS { exec "$python" tests/pve/harness.py --host "$host" --secret "$secret" --dir "$work" 2>"$work/harness.err"; }
  harness_pid=$HARNESS_PID
  if read -r ready <&"${HARNESS[0]}" && [[ $ready == *'"ready": true'* ]]; then
    break
  fi
  wait "$harness_pid" 2>/dev/null || true
  harness_pid=""
  ready=""
done
if [ -z "$ready" ]; then
  echo "demo: the simulator did not start:" >&2
  cat "$work/harness.err" >&2
  exit 1
fi
ca=$("$python" -c 'import json,sys; print(json.loads(sys.argv[1])["ca"])' "$ready")
echo "demo: fakepve listening on https://$host:8006 (template VM 9000, API token root@pam!cs)" >&2

# The payload CloudStack writes for this VM (cloudstack-contract.md §3.5); VMID filled in later.
payload() { # $1: file, $2: proxmox_vmid (may be empty), $3: custom action, $4: parameters JSON,
  # $5: host details to rename, JSON {"old": "new"} (a typo on purpose)
  "$python" - "$1" "$host" "$secret" "$ca" "${2:-}" "${3:-}" "${4:-}" "${5:-}" <<'EOF'
import json, sys
path, host, secret, ca, vmid, action, params, rename = sys.argv[1:9]
details = {"deployvm": "true", "External:template_type": "template", "External:template_id": "9000"}
if vmid:
    details["proxmox_vmid"] = vmid
doc = {
    "externaldetails": {
        "host": {"url": "https://%s:8006" % host, "user": "root@pam", "token": "cs", "secret": secret,
                 "node": "pve1", "network_bridge": "vmbr0", "ca_certificate": ca},
        "virtualmachine": {"template_type": "template", "template_id": "9000"},
    },
    "virtualmachineid": "126f4562-1f0f-4313-875e-6150cabeb72f",
    "virtualmachinename": "i-2-45-VM",
    "cloudstack.vm.details": {
        "id": 45, "name": "i-2-45-VM", "uuid": "126f4562-1f0f-4313-875e-6150cabeb72f", "cpus": 2,
        "minRam": 1073741824, "maxRam": 1073741824, "vncPassword": "uHQHQ4niy8f4ogwCM1k-rw",
        "details": details,
        "nics": [{"deviceId": 0, "nicUuid": "388e2dad-d1f1-4381-8e32-4878f6d29c41",
                  "uuid": "3cd4f011-88e1-4b01-875f-ce318c3678a5", "mac": "02:01:00:cc:00:01",
                  "broadcastUri": "vlan://1577", "defaultNic": True}],
    },
}
for old, new in json.loads(rename or "{}").items():
    doc["externaldetails"]["host"][new] = doc["externaldetails"]["host"].pop(old)
if action:
    doc["action"] = action
    if params:
        doc["parameters"] = json.loads(params)
with open(path, "w") as out:
    json.dump(doc, out)
EOF
}

step=0
run() { # $1: action, $2: payload file, $3: the binary (proxmox-ext when absent)
  local exe=${3:-$bin}
  step=$((step + 1))
  printf '\n[%d] %s %s <payload> 600\n' "$step" "$(basename "$exe")" "$1"
  local code=0
  CLOUDSTACK_EXT_LOG="$work/$(basename "$exe").log" "$exe" "$1" "$2" 600 || code=$?
  if [ "$code" -ne 0 ]; then
    echo "demo: $1 failed (exit $code)" >&2
    exit 1
  fi
}
run_failing() { # $1: action, $2: payload file, $3: what is wrong; the answer is an error, exit 1
  step=$((step + 1))
  printf '\n[%d] proxmox-ext %s <payload> 600   (%s)\n' "$step" "$1" "$3"
  local code=0
  CLOUDSTACK_EXT_LOG="$work/proxmox-ext.log" "$bin" "$1" "$2" 600 || code=$?
  if [ "$code" -ne 1 ]; then
    echo "demo: $1 should have failed with exit 1, got $code" >&2
    exit 1
  fi
}

payload "$work/check.json" "" check
run check "$work/check.json"

payload "$work/prepare.json"
prepared=$(CLOUDSTACK_EXT_LOG="$work/proxmox-ext.log" "$bin" prepare "$work/prepare.json" 600)
printf '\n[%d] proxmox-ext prepare <payload> 600\n%s\n' "$((step += 1))" "$prepared"
vmid=$("$python" -c 'import json,sys; print(json.loads(sys.argv[1])["details"]["proxmox_vmid"])' "$prepared")

payload "$work/vm.json" "$vmid"
run create "$work/vm.json"
run status "$work/vm.json"
payload "$work/host.json"
run statuses "$work/host.json"
run getconsole "$work/vm.json"
payload "$work/typo.json" "$vmid" "" "" '{"network_bridge": "netwrok_bridge"}'
run_failing create "$work/typo.json" "a typical mistake: the host detail network_bridge misspelt"
payload "$work/snap-create.json" "$vmid" CreateSnapshot \
  '{"snap_name": "before-upgrade", "snap_description": "demo snapshot", "snap_save_memory": false}'
run CreateSnapshot "$work/snap-create.json"
payload "$work/snap-list.json" "$vmid" ListSnapshots
run ListSnapshots "$work/snap-list.json"
payload "$work/snap-restore.json" "$vmid" RestoreSnapshot '{"snap_name": "before-upgrade"}'
run RestoreSnapshot "$work/snap-restore.json"
payload "$work/snap-delete.json" "$vmid" DeleteSnapshot '{"snap_name": "before-upgrade"}'
run DeleteSnapshot "$work/snap-delete.json"
run reboot "$work/vm.json"
run stop "$work/vm.json"
run delete "$work/vm.json"

# What the simulator holds now, and how much it was asked.
printf '{"cmd": "vms"}\n{"cmd": "requests"}\n' >&"${HARNESS[1]}"
read -r vms <&"${HARNESS[0]}"
read -r requests <&"${HARNESS[0]}"
"$python" - "$vms" "$requests" <<'EOF'
import json, sys
vms = json.loads(sys.argv[1])["result"]
requests = json.loads(sys.argv[2])["result"]
print("\ndemo: the Proxmox half is done. The simulator now holds: %s (the template only); it answered %d API requests."
      % (", ".join("%s %s" % (v["vmid"], v["name"]) for v in vms), len(requests)))
EOF

# ---------------------------------------------------------------------------------- Hyper-V
if [ "$(id -u)" -ne 0 ]; then
  echo
  echo "demo: skipping the Hyper-V half: hyperv-testhost needs root (it creates its test user and runs"
  echo "demo: a real sshd on loopback). Run scripts/demo.sh as root to see a Hyper-V VM's life cycle too."
  exit 0
fi
hvbin="$repo/target/release/hyperv-ext"
# A directory of its own (not inside $work, which is private): the test host's SSH user must
# reach the fake PowerShell and its state there.
hvdir=$(mktemp -d -t hyperv-demo-XXXXXX)
"$repo/target/release/hyperv-testhost" --dir "$hvdir" >"$work/testhost.out" 2>"$work/testhost.err" &
testhost_pid=$!
info=""
for _ in $(seq 300); do
  info=$(head -n 1 "$work/testhost.out")
  [ -n "$info" ] && break
  kill -0 "$testhost_pid" 2>/dev/null || break
  sleep 0.1
done
if [[ $info != *'"host"'* ]]; then
  echo "demo: hyperv-testhost did not start:" >&2
  cat "$work/testhost.err" >&2
  exit 1
fi
hvfield() { "$python" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$info" "$1"; }
echo "demo: hyperv-testhost: a real sshd on $(hvfield host):$(hvfield port), simulated Hyper-V behind it" >&2
hvpayload() { # $1: file, $2: custom action, $3: parameters JSON
  "$python" - "$1" "$info" "${2:-}" "${3:-}" <<'EOF'
import json, sys
path, info, action, params = sys.argv[1:5]
i = json.loads(info)
uuid = "4b3c2a1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d"
doc = {
    "externaldetails": {
        "host": {"url": i["host"], "port": str(i["port"]), "username": i["username"],
                 "password": i["password"], "host_key_fingerprint": i["host_key_fingerprint"],
                 "network_switch": i["switch"], "vhd_path": i["vhd_path"], "vm_path": i["vm_path"],
                 "stop_timeout": "5"},
        "virtualmachine": {"template_type": "template", "generation": "2",
                           "template_path": i["template_path"]},
    },
    "virtualmachineid": uuid,
    "virtualmachinename": "i-2-46-VM",
    "cloudstack.vm.details": {
        "id": 46, "name": "i-2-46-VM", "uuid": uuid, "cpus": 2, "minRam": 536870912,
        "maxRam": 536870912, "details": {"deployvm": "true", "External:template_type": "template"},
        "nics": [{"deviceId": 0, "nicUuid": "nic-a", "uuid": "net-a", "mac": "02:01:00:cc:00:02",
                  "broadcastUri": "vlan://1577", "defaultNic": True}],
    },
}
if action:
    doc["action"] = action
    if params:
        doc["parameters"] = json.loads(params)
with open(path, "w") as out:
    json.dump(doc, out)
EOF
}
hvpayload "$work/hv-vm.json"
run create "$work/hv-vm.json" "$hvbin"
run status "$work/hv-vm.json" "$hvbin"
run statuses "$work/hv-vm.json" "$hvbin"
hvpayload "$work/hv-snap.json" CreateSnapshot '{"snapshot_name": "before-upgrade"}'
run CreateSnapshot "$work/hv-snap.json" "$hvbin"
hvpayload "$work/hv-list.json" ListSnapshots
run ListSnapshots "$work/hv-list.json" "$hvbin"
run reboot "$work/hv-vm.json" "$hvbin"
run stop "$work/hv-vm.json" "$hvbin"
run delete "$work/hv-vm.json" "$hvbin"
"$python" - "$(hvfield state)" <<'EOF'
import json, sys
state = json.load(open(sys.argv[1]))
print("\ndemo: done. The Hyper-V test host now holds %d VMs." % len(state.get("vms") or []))
EOF
