#!/usr/bin/env python3
"""Lifecycle wall time and per-action latency of proxmox-ext against fakepve, with the peer
implementation `cloudstack-extension-proxmox-ngine` 0.2.0 measured in the same run.

Usage (scripts/bench-proxmox.sh sets everything up):
    python bench/proxmox_bench.py --binary target/release/proxmox-ext \
        --peer .venv/bin/cloudstack-extension-proxmox --runs 20

Both implementations get the same payloads (shaped like CloudStack's) and the same simulator
(tests/pve/harness.py, time_scale 0: every PVE task finishes before its request returns), and
are run the way CloudStack runs them: one process per action, `<exe> <action> <payload>
<timeout>`. Each action's latency is the wall time of that process, start to exit; the
lifecycle time is the sum over one VM's life. Runs alternate between the two implementations
so drift on the machine hits both alike; medians over all runs are reported.

Like-for-like settings: both do a full clone to local-lvm (the peer sends `storage` with a
linked clone, which PVE refuses), and both skip TLS verification (the peer only knows the
system trust store). The simulator's trailing-slash guard is off for the peer: it sends
`PUT .../config/`, which fakepve answers without acting (real PVE would apply it), so the
peer's create does slightly less work than ours.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
HARNESS = os.path.join(REPO, 'tests', 'pve', 'harness.py')

LIFECYCLE = [
    ('prepare', None),
    ('create', None),
    ('status', None),
    ('statuses', None),
    ('getconsole', None),
    ('CreateSnapshot', {'snap_name': 'bench', 'snap_description': 'benchmark', 'snap_save_memory': False}),
    ('ListSnapshots', None),
    ('RestoreSnapshot', {'snap_name': 'bench'}),
    ('DeleteSnapshot', {'snap_name': 'bench'}),
    ('reboot', None),
    ('stop', None),
    ('delete', None),
]


class Simulator(object):
    """tests/pve/harness.py on a loopback address of its own."""

    def __init__(self, workdir):
        self.secret = 'bench-%d' % random.randrange(10 ** 9)
        for _ in range(8):
            self.host = '127.%d.%d.%d' % (random.randrange(20, 250), random.randrange(256), random.randrange(2, 254))
            self.proc = subprocess.Popen(
                [sys.executable, HARNESS, '--host', self.host, '--secret', self.secret, '--dir', workdir],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            ready = json.loads(self.proc.stdout.readline() or '{}')
            if ready.get('ready'):
                self.ca = ready['ca']
                return
            self.proc.wait()
        raise SystemExit('bench: the simulator did not start')

    def command(self, **args):
        self.proc.stdin.write(json.dumps(args) + '\n')
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        if not reply.get('ok'):
            raise SystemExit('bench: harness command %s failed: %s' % (args, reply.get('error')))
        return reply['result']

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def payload(sim, vmid, action, params):
    """A CloudStack payload for VM i-2-45-VM (cloudstack-contract.md §3.5)."""
    details = {'deployvm': 'true', 'External:template_type': 'template', 'External:template_id': '9000'}
    if vmid:
        details['proxmox_vmid'] = vmid
    doc = {
        'externaldetails': {
            'host': {'url': 'https://%s:8006' % sim.host, 'user': 'root@pam', 'token': 'cs',
                     'secret': sim.secret, 'node': 'pve1', 'network_bridge': 'vmbr1',
                     'verify_tls_certificate': 'false'},
            'virtualmachine': {'template_type': 'template', 'template_id': '9000',
                               'is_full_clone': 'true', 'storage': 'local-lvm'},
        },
        'virtualmachineid': '126f4562-1f0f-4313-875e-6150cabeb72f',
        'virtualmachinename': 'i-2-45-VM',
        'cloudstack.vm.details': {
            'id': 45, 'name': 'i-2-45-VM', 'uuid': '126f4562-1f0f-4313-875e-6150cabeb72f', 'cpus': 2,
            'minRam': 1073741824, 'maxRam': 1073741824, 'vncPassword': 'uHQHQ4niy8f4ogwCM1k-rw',
            'details': details,
            'nics': [{'deviceId': 0, 'nicUuid': '388e2dad-d1f1-4381-8e32-4878f6d29c41',
                      'uuid': '3cd4f011-88e1-4b01-875f-ce318c3678a5', 'mac': '02:01:00:cc:00:01',
                      'broadcastUri': 'vlan://1577', 'defaultNic': True}],
        },
    }
    if params is not None:
        doc['action'] = action
        doc['parameters'] = params
    elif action[0].isupper():
        doc['action'] = action
    return doc


def one_lifecycle(sim, workdir, name, exe, lower_case_actions, env):
    """Runs the lifecycle once; returns {action: seconds} and the total."""
    times = {}
    vmid = None
    path = os.path.join(workdir, '%s-payload.json' % name)
    started = time.perf_counter()
    for action, params in LIFECYCLE:
        with open(path, 'w') as out:
            json.dump(payload(sim, vmid, action, params), out)
        argv = [exe, action.lower() if lower_case_actions else action, path, '600']
        t0 = time.perf_counter()
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env)
        times[action] = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit('bench: %s %s failed (exit %d): %s %s'
                             % (name, action, done.returncode, done.stdout.strip(), done.stderr.strip()))
        if action == 'prepare':
            vmid = json.loads(done.stdout)['details']['proxmox_vmid']
    total = time.perf_counter() - started
    left = [vm['vmid'] for vm in sim.command(cmd='vms') if vm['vmid'] != 9000]
    if left:
        raise SystemExit('bench: %s left VMs behind: %s' % (name, left))
    return times, total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--binary', default=os.path.join(REPO, 'target', 'release', 'proxmox-ext'))
    parser.add_argument('--peer', default=os.path.join(os.path.dirname(sys.executable), 'cloudstack-extension-proxmox'))
    parser.add_argument('--runs', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=2)
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix='proxmox-bench-')
    sim = Simulator(workdir)
    env = dict(os.environ, CLOUDSTACK_EXT_LOG=os.path.join(workdir, 'proxmox-ext.log'),
               PROXMOX_EXT_STATE_DIR=os.path.join(workdir, 'state'))
    env.pop('RUST_LOG', None)
    impls = [('proxmox-ext', args.binary, False), ('ngine-0.2.0', args.peer, True)]
    results = dict((name, {'actions': dict((a, []) for a, _ in LIFECYCLE), 'total': [], 'requests': []})
                   for name, _, _ in impls)
    try:
        for run in range(args.warmup + args.runs):
            order = impls if run % 2 == 0 else list(reversed(impls))
            for name, exe, lower in order:
                # ours must never send a trailing slash; the peer does (see the module doc)
                sim.command(cmd='quirks', reject_trailing_slash=(name == 'proxmox-ext'))
                sim.command(cmd='reset_requests')
                times, total = one_lifecycle(sim, workdir, name, exe, lower, env)
                requests = len(sim.command(cmd='requests'))
                if run < args.warmup:
                    continue
                for action, secs in times.items():
                    results[name]['actions'][action].append(secs)
                results[name]['total'].append(total)
                results[name]['requests'].append(requests)
    finally:
        sim.close()

    ours, peer = results['proxmox-ext'], results['ngine-0.2.0']
    ms = lambda xs: statistics.median(xs) * 1000  # noqa: E731
    print('Proxmox lifecycle against fakepve (time_scale 0), %d runs after %d warm-up, medians'
          % (args.runs, args.warmup))
    print('%-16s %14s %14s %10s' % ('action', 'proxmox-ext ms', 'ngine-0.2 ms', 'ngine/ours'))
    for action, _ in LIFECYCLE:
        a, b = ms(ours['actions'][action]), ms(peer['actions'][action])
        print('%-16s %14.1f %14.1f %9.1fx' % (action, a, b, b / a))
    a, b = ms(ours['total']), ms(peer['total'])
    print('%-16s %14.1f %14.1f %9.1fx' % ('LIFECYCLE', a, b, b / a))
    print('%-16s %14d %14d' % ('API requests', statistics.median(ours['requests']),
                               statistics.median(peer['requests'])))
    spread = lambda xs: (min(xs) * 1000, max(xs) * 1000)  # noqa: E731
    print('lifecycle min..max ms: proxmox-ext %.1f..%.1f, ngine %.1f..%.1f'
          % (spread(ours['total']) + spread(peer['total'])))


if __name__ == '__main__':
    main()
