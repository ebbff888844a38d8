#!/usr/bin/env bash
# Demo: one VM through its whole life on a simulated Proxmox VE node, driven by the release
# proxmox-ext binary exactly as CloudStack runs it (`proxmox-ext <action> <payload> <timeout>`).
#
# Starts fakepve (through tests/pve/harness.py) on a loopback address, then runs
#   prepare -> create -> status -> CreateSnapshot -> ListSnapshots -> RestoreSnapshot
#   -> DeleteSnapshot -> reboot -> stop -> delete
# and prints each action's JSON answer. Works on a fresh clone: installs what it needs first.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

scripts/setup.sh >&2
venv=${CSEXT_VENV:-$repo/.venv}
python="$venv/bin/python"

echo "demo: building the release binary" >&2
cargo build --release --quiet -p proxmox-ext
bin="$repo/target/release/proxmox-ext"

work=$(mktemp -d -t proxmox-demo-XXXXXX)
# The VMID ledger of this demo's own "management server", gone with the demo.
export PROXMOX_EXT_STATE_DIR="$work/state"
secret="demo-$RANDOM$RANDOM"
harness_pid=""
cleanup() {
  [ -n "$harness_pid" ] && kill "$harness_pid" 2>/dev/null || true
  rm -rf "$work"
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
payload() { # $1: file, $2: proxmox_vmid (may be empty), $3: custom action, $4: parameters JSON
  "$python" - "$1" "$host" "$secret" "$ca" "${2:-}" "${3:-}" "${4:-}" <<'EOF'
import json, sys
path, host, secret, ca, vmid, action, params = sys.argv[1:8]
details = {"deployvm": "true", "External:template_type": "template", "External:template_id": "9000"}
if vmid:
    details["proxmox_vmid"] = vmid
doc = {
    "externaldetails": {
        "host": {"url": "https://%s:8006" % host, "user": "root@pam", "token": "cs", "secret": secret,
                 "node": "pve1", "network_bridge": "vmbr1", "ca_certificate": ca},
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
if action:
    doc["action"] = action
    if params:
        doc["parameters"] = json.loads(params)
with open(path, "w") as out:
    json.dump(doc, out)
EOF
}

step=0
run() { # $1: action, $2: payload file
  step=$((step + 1))
  printf '\n[%d] proxmox-ext %s <payload> 600\n' "$step" "$1"
  local code=0
  CLOUDSTACK_EXT_LOG="$work/proxmox-ext.log" "$bin" "$1" "$2" 600 || code=$?
  if [ "$code" -ne 0 ]; then
    echo "demo: $1 failed (exit $code)" >&2
    exit 1
  fi
}

payload "$work/prepare.json"
prepared=$(CLOUDSTACK_EXT_LOG="$work/proxmox-ext.log" "$bin" prepare "$work/prepare.json" 600)
printf '\n[%d] proxmox-ext prepare <payload> 600\n%s\n' "$((step += 1))" "$prepared"
vmid=$("$python" -c 'import json,sys; print(json.loads(sys.argv[1])["details"]["proxmox_vmid"])' "$prepared")

payload "$work/vm.json" "$vmid"
run create "$work/vm.json"
run status "$work/vm.json"
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
print("\ndemo: done. The simulator now holds: %s (the template only); it answered %d API requests."
      % (", ".join("%s %s" % (v["vmid"], v["name"]) for v in vms), len(requests)))
EOF
