#!/usr/bin/env python3
"""Serve one fakepve instance for a test, controlled over stdin/stdout.

Usage: harness.py --host 127.A.B.C --secret SECRET [--time-scale 0] [--dir DIR]

fakepve (PyPI `fakepve[crypto]==0.5.0`, AGPL) is installed into the venv by
scripts/setup.sh; this file is our own code and only drives it.

The instance listens on HOST:8006 with a self-signed certificate naming HOST,
accepts the API token `root@pam!cs` with SECRET, and holds a template VM 9000
(a `base-` disk on local-lvm, so linked clones work) and `local:iso/debian.iso`.
Once it listens, one line goes to stdout:

    {"ready": true, "host": "...", "port": 8006, "ca": "/path/fakepve.crt", "node": "pve1"}

or, when it could not start (address taken, ...), `{"ready": false, "error": "..."}`
and exit status 3, so the caller can retry on another address.

Then each stdin line is one JSON command `{"cmd": NAME, ...arguments}`, answered
by one stdout line: `{"ok": true, "result": ...}` or `{"ok": false, "error": "..."}`.
End of stdin stops the server: the harness never outlives the test that owns it.

Besides what fakepve does itself, the harness closes its known gaps to real PVE
(proxmox-api.md §4.3) with one outer aiohttp middleware, each part toggled by
the `quirks` command:
  - 401 as real PVE sends it: empty body, in both /api2/json and /api2/extjs
    (fakepve answers a JSON body, and HTTP 200 under extjs);
  - `legacy_errors`: /api2/json error bodies without `message`, as PVE before
    libpve-http-server-perl 5.2.0 sent them;
  - `close_on_error`: the connection is closed after every answer >= 400;
  - trailing slashes (`/qemu/`, `//`): refused with 400 and recorded, because
    fakepve would silently do nothing where real PVE acts; tests assert none;
  - `WARNINGS: N` task exit status for chosen task types (fakepve knows only
    OK and errors);
  - `task_delay`: tasks of chosen types stay `running` for a while (a slow worker);
  - `ceph`: an RBD storage whose operations are slow (real task durations at time_scale > 0);
  - `inject`: a proxy-style failure (HTML page, 595/596, dropped connection)
    for the next requests matching a method and path fragment.
Every request is logged (method, decoded and raw path, query, form body, status, token id);
`requests` returns that log.
"""

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import traceback
import urllib.parse

from aiohttp import web

from fakepve import FakePve
from fakepve import errors as pve_errors
from fakepve import schema as pve_schema
from fakepve.certs import make_cert

TOKEN_ID = 'root@pam!cs'
NODE = 'pve1'
TEMPLATE_VMID = 9000
TEMPLATE_NAME = 'debian-12-template'
ISO_NAME = 'debian.iso'
PROXY_PAGE = ('<html><head><title>{status} Bad Gateway</title></head>'
              '<body><center><h1>{status} Bad Gateway</h1></center><hr><center>nginx</center></body></html>')


class Harness(object):
    def __init__(self, pve, secret):
        self.pve = pve
        self.secret = secret
        self.log = []
        self.quirks = {'real_401': True, 'legacy_errors': False, 'close_on_error': True,
                       'reject_trailing_slash': True}
        # task type -> number of warnings its successful tasks end with
        self.warnings = {}
        self.warned = set()
        # proxy-style failures: dicts with method, path, times, kind, status
        self.injected = []
        # task type -> real seconds its tasks stay `running` before they start working
        self.task_delays = {}
        # UPID -> {'at': time.monotonic() when the task's work ended}, for latency measurements
        self.task_ends = {}
        self._wrap_tasks()

    def _wrap_tasks(self):
        """Let chosen task types sit `running` for a while before they do anything.

        fakepve runs a task inline at time_scale 0 and holds the VM config lock for its whole
        run. A delayed task here runs in the background, takes the lock only once its delay is
        over, and so looks like a slow PVE worker that has not started changing the VM yet:
        what a client sees when its deadline passes while it waits.
        """
        pve = self.pve
        original = pve.task

        async def task(node, ttype, tid, user, work, vm=None, lock=True, log=()):
            ended = {}

            async def body():
                try:
                    return await work()
                finally:
                    ended['at'] = time.monotonic()
            upid = await delayable(node, ttype, tid, user, body, vm=vm, lock=lock, log=log)
            self.task_ends[upid] = ended
            return upid

        async def delayable(node, ttype, tid, user, body, vm=None, lock=True, log=()):
            delay = self.task_delays.get(ttype)
            if not delay:
                return await original(node, ttype, tid, user, body, vm=vm, lock=lock, log=log)

            async def delayed():
                await asyncio.sleep(delay)
                if vm is not None and lock:
                    await pve.acquire(vm, 'harness-delay')
                try:
                    return await body()
                finally:
                    if vm is not None and lock:
                        pve.release(vm, 'harness-delay')
            scale = pve.time_scale
            pve.time_scale = scale or 1e-9  # makes fakepve run the task in the background
            try:
                return await original(node, ttype, tid, user, delayed, vm=None, lock=False, log=log)
            finally:
                pve.time_scale = scale
        pve.task = task

    # ----------------------------------------------------------- middleware

    @web.middleware
    async def middleware(self, request, handler):
        body = await request.read()  # aiohttp keeps it for the handlers below
        entry = {'method': request.method, 'path': request.path, 'raw_path': request.rel_url.raw_path,
                 'query': request.query_string,
                 'body': body.decode('utf-8', 'replace'),
                 'form': dict(urllib.parse.parse_qsl(body.decode('utf-8', 'replace'), keep_blank_values=True)),
                 'token': self._token_id(request), 'status': None}
        self.log.append(entry)
        response = await self._answer(request, handler, entry)
        entry['status'] = response.status if response is not None else 'dropped'
        return response

    @staticmethod
    def _token_id(request):
        auth = request.headers.get('Authorization', '')
        if not auth.startswith('PVEAPIToken='):
            return None
        return auth[len('PVEAPIToken='):].rpartition('=')[0]

    async def _answer(self, request, handler, entry):
        rule = self._injected(request)
        if rule is not None:
            if rule['kind'] == 'drop':
                request.transport.close()
                raise ConnectionResetError('harness: connection dropped')
            if rule['kind'] == 'html':
                return self._closing(web.Response(status=rule['status'], text=PROXY_PAGE.format(status=rule['status']),
                                                  content_type='text/html'))
            # pveproxy's AnyEvent pseudo-statuses: a plain-text reason, no JSON
            return self._closing(web.Response(status=rule['status'], text=rule.get('message') or '',
                                              reason=rule.get('message') or 'Connection refused'))
        path = request.path
        if self.quirks['reject_trailing_slash'] and (path.endswith('/') or '//' in path):
            entry['violation'] = 'trailing slash'
            return self._closing(web.json_response(
                {'data': None, 'message': 'harness: path with a trailing or double slash: ' + path + '\n'},
                status=400))
        if self.quirks['real_401']:
            auth = request.headers.get('Authorization', '')
            tokenid, _, secret = auth[len('PVEAPIToken='):].rpartition('=')
            if not auth.startswith('PVEAPIToken=') or self.pve.apitokens.get(tokenid) != secret:
                # Real PVE: HTTP 401, empty body, reason in the status line only.
                return self._closing(web.Response(status=401, reason='Authentication failed!'))
        self._apply_warnings()
        response = await handler(request)
        if self.quirks['legacy_errors'] and response.status >= 400 and path.startswith('/api2/json/') \
                and isinstance(response, web.Response) and response.content_type == 'application/json':
            data = json.loads(response.text)
            data.pop('message', None)
            response = web.json_response(data, status=response.status, reason=response.reason)
        if self.quirks['close_on_error'] and response.status >= 400:
            response.force_close()
        return response

    @staticmethod
    def _closing(response):
        response.force_close()
        return response

    def _injected(self, request):
        for rule in self.injected:
            if rule['method'] not in (None, request.method):
                continue
            if rule['path'] and rule['path'] not in request.path:
                continue
            rule['times'] -= 1
            if rule['times'] <= 0:
                self.injected.remove(rule)
            return rule
        return None

    def _apply_warnings(self):
        """Turn finished OK tasks of the chosen types into `WARNINGS: N`, as PVE's worker ends them."""
        if not self.warnings:
            return
        for upid, task in self.pve.tasks.items():
            count = self.warnings.get(task['type'])
            if not count or upid in self.warned or task.get('exitstatus') != 'OK':
                continue
            self.warned.add(upid)
            log = task['log']
            if log and log[-1] == 'TASK OK':
                log.pop()
            log.extend('WARN: harness warning {0} of {1}'.format(n + 1, count) for n in range(count))
            log.append('TASK WARNINGS: {0}'.format(count))
            task['exitstatus'] = 'WARNINGS: {0}'.format(count)

    # ------------------------------------------------------------- commands

    def vm_view(self, vm):
        return {'vmid': vm.vmid, 'name': vm.name, 'node': vm.node, 'status': vm.status, 'qmpstatus': vm.qmpstatus,
                'template': bool(vm.template), 'lock': vm.lock, 'config': vm.config, 'pending': vm.pending,
                'snapshots': vm.snapshots}

    def _vm(self, vmid):
        vm = self.pve.vm(int(vmid))
        if vm is None:
            raise KeyError('no VM {0}'.format(vmid))
        return vm

    async def run(self, cmd, a):
        pve = self.pve
        if cmd == 'ping':
            return 'pong'
        if cmd == 'requests':
            return self.log[int(a.get('since', 0)):]
        if cmd == 'pve_requests':
            # fakepve's own log: (method, path, body) with secrets redacted
            return [[m, p, b.decode('utf-8', 'replace')] for m, p, b in pve.requests]
        if cmd == 'reset_requests':
            self.log = []
            pve.requests.clear()
            return None
        if cmd == 'vm':
            vm = pve.vm(int(a['vmid']))
            return self.vm_view(vm) if vm else None
        if cmd == 'vms':
            return [self.vm_view(vm) for vm in pve.vms]
        if cmd == 'add_vm':
            vm = pve.add_vm(int(a['vmid']), a['name'], node=a.get('node', NODE), status=a.get('status', 'stopped'),
                            config=a.get('config') or {}, template=a.get('template', False))
            return self.vm_view(vm)
        if cmd == 'add_vms':
            # many VMs in one command (a busy node is seeded in milliseconds, not 3,000 calls);
            # answers only how many VMs the simulator holds now
            for spec in a['vms']:
                pve.add_vm(int(spec['vmid']), spec['name'], node=spec.get('node', NODE),
                           status=spec.get('status', 'stopped'), config=spec.get('config') or {})
            return len(pve.vms)
        if cmd == 'node_offline':
            # a node that went down: requests for it get pveproxy's 595, its VMs show `unknown`
            pve.set_node_offline(a['node'], a.get('offline', True))
            return None
        if cmd == 'set_vm':
            # scenario attributes: start_error, acpi, shutdown_secs, start_secs, stop_secs, name, status
            vm = self._vm(a['vmid'])
            for key, value in a['attrs'].items():
                if key not in ('start_error', 'acpi', 'shutdown_secs', 'start_secs', 'stop_secs', 'status',
                               'qmpstatus', 'ha_state'):
                    raise KeyError('set_vm cannot set ' + key)
                setattr(vm, key, value)
            return self.vm_view(vm)
        if cmd == 'set_config':
            vm = self._vm(a['vmid'])
            vm.config.update(a['config'])
            vm.name = vm.config.get('name') or vm.name
            return self.vm_view(vm)
        if cmd == 'move_vm':
            # what Proxmox HA or a manual migration leaves behind: the VM lives on another node
            vm = self._vm(a['vmid'])
            pve.nodes.setdefault(a['node'], {'online': True})
            vm.node = a['node']
            return self.vm_view(vm)
        if cmd == 'add_node':
            pve.add_node(a['node'], online=a.get('online', True))
            return None
        if cmd == 'remove_vm':
            pve.vms.remove(self._vm(a['vmid']))
            return None
        if cmd == 'fail':
            pve.fail(a['method'], a['path'], status=a.get('status'), message=a.get('message'),
                     html=a.get('html', False), error=a.get('error'), times=a.get('times'))
            return None
        if cmd == 'clear_failures':
            pve.failures.clear()
            self.injected = []
            return None
        if cmd == 'errors_for':
            return [{'name': e['name'], 'status': e['status'], 'in_task': e['in_task'], 'message': e['message']}
                    for e in pve.errors_for(a['method'], a['path'])]
        if cmd == 'inject':
            kind = a.get('kind', 'status')
            if kind not in ('status', 'html', 'drop'):
                raise ValueError('inject kind is status, html or drop')
            self.injected.append({'method': a.get('method'), 'path': a.get('path'), 'times': int(a.get('times', 1)),
                                  'kind': kind, 'status': int(a.get('status', 502)), 'message': a.get('message')})
            return None
        if cmd == 'snapshot_lock':
            pve.snapshot_lock(int(a['vmid']), a.get('lock', 'snapshot'))
            return None
        if cmd == 'unlock':
            pve.unlock(int(a['vmid']))
            return None
        if cmd == 'hold_config_lock':
            await pve.hold_config_lock(int(a['vmid']), a.get('secs'))
            return None
        if cmd == 'release_config_lock':
            pve.release_config_lock(int(a['vmid']))
            return None
        if cmd == 'time_scale':
            pve.time_scale = float(a['value'])
            return None
        if cmd == 'lock_wait':
            pve.lock_wait = float(a['value'])
            return None
        if cmd == 'warnings':
            # {"types": {"qmstart": 2}}: successful tasks of these types end `WARNINGS: N`
            self.warnings = dict((k, int(v)) for k, v in a['types'].items())
            return None
        if cmd == 'task_delay':
            # {"types": {"qmstart": 5}}: tasks of these types stay running that many real seconds
            self.task_delays = dict((k, float(v)) for k, v in a['types'].items())
            return None
        if cmd == 'quirks':
            unknown = set(a) - set(self.quirks) - {'cmd'}
            if unknown:
                raise KeyError('unknown quirks: ' + ', '.join(sorted(unknown)))
            self.quirks.update((k, bool(v)) for k, v in a.items() if k != 'cmd')
            return dict(self.quirks)
        if cmd == 'tasks':
            # ended_monotonic: when the task's work ended, on the CLOCK_MONOTONIC of this machine
            return [dict(t, ended_monotonic=self.task_ends.get(t['upid'], {}).get('at')) for t in pve.tasklog]
        if cmd == 'ceph':
            # {"storage": "ceph-pool", "slow": 0.75}: an RBD storage (created when missing) whose
            # every operation (clone, start of a VM with a disk on it) takes `slow` PVE seconds
            name = a.get('storage', 'ceph-pool')
            if name not in pve.storages:
                pve.add_ceph_storage(name)
            pve.ceph_slow(float(a.get('slow', 0)))
            return None
        if cmd == 'storage':
            store = pve.storages[a['storage']]
            return sorted(store.get('volumes', {}))
        raise KeyError('unknown command ' + repr(cmd))


async def control_loop(harness):
    """Answer one JSON line per command until stdin closes."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        if not line.strip():
            continue
        try:
            args = json.loads(line)
            result = await harness.run(args.get('cmd'), args)
            reply = {'ok': True, 'result': result}
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the test as text
            reply = {'ok': False, 'error': '{0}: {1}'.format(type(exc).__name__, exc),
                     'trace': traceback.format_exc()}
        sys.stdout.write(json.dumps(reply, default=str) + '\n')
        sys.stdout.flush()


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--host', required=True)
    parser.add_argument('--port', type=int, default=8006)
    parser.add_argument('--secret', required=True)
    parser.add_argument('--time-scale', type=float, default=0.0)
    parser.add_argument('--dir', help='where the certificate goes (default: a new temporary directory)')
    args = parser.parse_args()

    directory = args.dir or tempfile.mkdtemp(prefix='fakepve-harness-')
    os.makedirs(directory, exist_ok=True)
    certfile, keyfile, _ = make_cert(directory, hosts=(args.host,))

    pve = FakePve(host=args.host, port=args.port)
    pve.time_scale = args.time_scale
    pve.apitokens[TOKEN_ID] = args.secret
    pve.add_vm(TEMPLATE_VMID, TEMPLATE_NAME, template=True, config={
        'scsi0': 'local-lvm:base-{0}-disk-0,size=8G'.format(TEMPLATE_VMID), 'cores': 1, 'memory': '512',
        'ostype': 'l26', 'scsihw': 'virtio-scsi-single', 'template': 1,
        'net0': 'virtio=BC:24:11:00:00:01,bridge=vmbr0'})
    pve.store_file('local', ISO_NAME, 1 << 20)
    # Load the schema and the error catalogue now, not on the first request of a timed test.
    pve_schema.load()
    pve_errors.load()

    harness = Harness(pve, args.secret)
    build = pve._build_app

    def build_with_harness():
        app = build()
        app.middlewares.insert(0, harness.middleware)  # outermost: sees every request and answer
        return app
    pve._build_app = build_with_harness

    try:
        await pve.start(certfile, keyfile)
    except OSError as exc:
        print(json.dumps({'ready': False, 'error': str(exc)}), flush=True)
        sys.exit(3)
    print(json.dumps({'ready': True, 'host': pve.host, 'port': pve.port, 'ca': certfile, 'node': NODE,
                      'token': TOKEN_ID, 'template': TEMPLATE_VMID, 'iso': 'local:iso/' + ISO_NAME}), flush=True)
    try:
        await control_loop(harness)
    finally:
        await pve.stop()


if __name__ == '__main__':
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
