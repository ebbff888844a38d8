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
  - `task_delay`: tasks of chosen types stay `running` for a while (a slow worker that a
    client can stop through the API while it waits, as the held tasks below);
  - `ceph`: an RBD storage whose operations are slow (real task durations at time_scale > 0);
  - `inject`: a proxy-style failure (HTML page, 595/596, dropped connection)
    for the next requests matching a method and path fragment, never forwarded.
Every request is logged (method, decoded and raw path, query, form body, status, token id);
`requests` returns that log.

In front of all that sits a fault-injecting proxy (FaultProxy): rules armed with the
`fault` command pick requests by method, path pattern (a regular expression searched in
the request path), how many matching requests to let pass first (`skip`) and how many to
hit (`times`, 0 for all), and then, most of them *after* forwarding the request to the
simulator (so PVE has acted):
  - `drop`: the connection is closed, no answer at all;
  - `truncate`: the answer's headers promise the whole body, `keep` bytes of it come
    (default: half), then the connection is closed;
  - `hang`: no answer for `secs` seconds (until `release` when absent), then the real
    answer (`then: "answer"`) or a closed connection (`then: "drop"`);
  - `status`: the answer replaced by a bare `status` with a plain-text reason (pveproxy's
    595/596/597/599, or any status);
  - `html`: the answer replaced by a reverse proxy's HTML error page;
  - `redirect`: a `status` (default 302) with `Location` (default: the same path on a
    decoy server at another loopback address, which records what reaches it and answers
    `decoy_data`); not forwarded unless `forward` is true.
Every fault the proxy applied is recorded (`faults`): the rule, the request, whether it
was forwarded, what the simulator answered (status and body) and what the client saw.
Tasks can be held `running` (`hold_tasks`): the chosen task types start (holding the VM's
config lock, a clone's target keeps `lock: clone`) and then stay running until `release_tasks`,
for `secs` seconds, or until the client stops them (DELETE /nodes/{node}/tasks/{upid}, as PVE
allows), which ends them with PVE's `received interrupt` (a stopped clone removes its half-made
VM, as PVE's clone worker does when it fails).

With E2E_LOG_DIR in the environment, the token secret and every console ticket or password the
simulator hands out are appended to E2E_LOG_DIR/secrets/harness-<pid>.txt for the suite's
final log scan (tests/scan_logs.py).
"""

import argparse
import asyncio
import json
import os
import re
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
from fakepve.model import TaskError

TOKEN_ID = 'root@pam!cs'
NODE = 'pve1'
TEMPLATE_VMID = 9000
TEMPLATE_NAME = 'debian-12-template'
ISO_NAME = 'debian.iso'
PROXY_PAGE = ('<html><head><title>{status} Bad Gateway</title></head>'
              '<body><center><h1>{status} Bad Gateway</h1></center><hr><center>nginx</center></body></html>')
# A hang "until released" still ends some time: the harness never outlives its test anyway.
MAX_HANG_SECS = 3600.0
FAULT_KINDS = ('drop', 'truncate', 'hang', 'status', 'html', 'redirect')
# What PVE records as the exit status of a task stopped through the API (its worker gets SIGTERM).
INTERRUPTED = 'received interrupt'


def note_secrets(*values):
    """Append secret values for the e2e suite's final log scan (only when E2E_LOG_DIR is set)."""
    root = os.environ.get('E2E_LOG_DIR')
    values = [v for v in values if isinstance(v, str) and len(v) >= 8]
    if not root or not values:
        return
    directory = os.path.join(root, 'secrets')
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, 'harness-{0}.txt'.format(os.getpid())), 'a') as out:
        out.write(''.join(v + '\n' for v in values))


def decoy_address(host):
    """Another loopback address next to host: the decoy is another host, not another port."""
    a, b, c, d = host.split('.')
    return '.'.join((a, b, c, str(int(d) + 1 if int(d) < 254 else int(d) - 1)))


class Decoy(object):
    """The server a redirect points at: records every request, answers `data` in PVE's envelope."""

    def __init__(self, host, ssl_context):
        self.host = host
        self.ssl_context = ssl_context
        self.port = None
        self.runner = None
        self.requests = []
        self.data = None

    async def ensure_started(self):
        if self.runner is not None:
            return
        app = web.Application()
        app.router.add_route('*', '/{tail:.*}', self._answer)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, 0, ssl_context=self.ssl_context)
        await site.start()
        self.port = self.runner.addresses[0][1]

    def url(self):
        return 'https://{0}:{1}'.format(self.host, self.port)

    async def _answer(self, request):
        body = await request.read()
        self.requests.append({'method': request.method, 'path': request.path, 'query': request.query_string,
                              'body': body.decode('utf-8', 'replace'),
                              'authorization': 'Authorization' in request.headers})
        return web.json_response({'data': self.data, 'success': 1})

    async def stop(self):
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


class FaultProxy(object):
    """Decides, request by request, whether the client gets the simulator's answer (see the module doc)."""

    def __init__(self, decoy):
        self.decoy = decoy
        self.rules = []
        self.events = []
        self.waiters = []  # (rule id, asyncio.Event) of hanging answers
        self._ids = 0

    def add(self, a):
        kind = a.get('kind')
        if kind not in FAULT_KINDS:
            raise ValueError('fault kind is one of ' + ', '.join(FAULT_KINDS))
        self._ids += 1
        rule = {'id': self._ids, 'kind': kind, 'method': a.get('method'), 'path': a.get('path') or '',
                'skip': int(a.get('skip') or 0), 'times': int(a.get('times', 1) or 0),
                'forward': bool(a.get('forward', kind != 'redirect')),
                'status': int(a['status']) if a.get('status') is not None else None,
                'message': a.get('message'), 'keep': a.get('keep'), 'secs': a.get('secs'),
                'then': a.get('then', 'answer'), 'location': a.get('location'), 'hits': 0}
        re.compile(rule['path'])
        if kind in ('status', 'html') and rule['status'] is None:
            raise ValueError('a {0} fault needs a status'.format(kind))
        if rule['then'] not in ('answer', 'drop'):
            raise ValueError('then is answer or drop')
        self.rules.append(rule)
        return rule

    def clear(self):
        self.rules = []
        self.release()

    def release(self, rule_id=None):
        released = 0
        for rid, waiter in list(self.waiters):
            if rule_id is None or rid == rule_id:
                waiter.set()
                released += 1
        return released

    def _match(self, request):
        for rule in self.rules:
            if rule['method'] not in (None, request.method):
                continue
            if not re.search(rule['path'], request.path):
                continue
            if rule['skip'] > 0:
                rule['skip'] -= 1
                continue
            rule['hits'] += 1
            if rule['times'] and rule['hits'] >= rule['times']:
                self.rules.remove(rule)
            return rule
        return None

    async def handle(self, request, entry, forward):
        rule = self._match(request)
        if rule is None:
            return await forward()
        event = {'rule': rule['id'], 'kind': rule['kind'], 'method': request.method, 'path': request.path,
                 'forwarded': False, 'pve_status': None, 'pve_body': None, 'client_saw': None, 'time': time.time()}
        self.events.append(event)
        entry['fault'] = event
        response = None
        if rule['forward']:
            response = await forward()
            event['forwarded'] = True
            event['pve_status'] = response.status
            body = getattr(response, 'body', None)
            if isinstance(body, (bytes, bytearray)):
                event['pve_body'] = bytes(body[:4000]).decode('utf-8', 'replace')
        kind = rule['kind']
        if kind == 'drop':
            return self._drop(request, entry, event, 'connection closed, no answer')
        if kind == 'truncate':
            return await self._truncate(request, entry, event, rule, response)
        if kind == 'hang':
            return await self._hang(request, entry, event, rule, response)
        if kind == 'status':
            message = rule['message'] or ''
            event['client_saw'] = 'HTTP {0} {1}'.format(rule['status'], message).strip()
            answer = web.Response(status=rule['status'], text=message, reason=message or None)
        elif kind == 'html':
            event['client_saw'] = 'HTTP {0} HTML page'.format(rule['status'])
            answer = web.Response(status=rule['status'], text=PROXY_PAGE.format(status=rule['status']),
                                  content_type='text/html')
        else:  # redirect
            location = rule['location']
            if not location:
                await self.decoy.ensure_started()
                location = self.decoy.url() + request.path_qs
            status = rule['status'] or 302
            event['client_saw'] = 'HTTP {0} to {1}'.format(status, location)
            answer = web.Response(status=status, headers={'Location': location}, text='')
        answer.force_close()
        return answer

    @staticmethod
    def _drop(request, entry, event, saw):
        event['client_saw'] = saw
        entry['status'] = 'dropped'
        request.transport.close()
        raise ConnectionResetError('harness proxy: ' + saw)

    async def _truncate(self, request, entry, event, rule, response):
        body = bytes(getattr(response, 'body', None) or b'')
        keep = len(body) // 2 if rule['keep'] is None else min(int(rule['keep']), max(len(body) - 1, 0))
        headers = dict((k, v) for k, v in response.headers.items()
                       if k.lower() not in ('content-length', 'transfer-encoding', 'connection'))
        partial = web.StreamResponse(status=response.status, reason=response.reason, headers=headers)
        partial.content_length = len(body)
        await partial.prepare(request)
        await partial.write(body[:keep])
        # close(), not abort(): what was written still reaches the client, then the end of the stream.
        return self._drop(request, entry, event, 'answer cut off after {0} of {1} body bytes'.format(keep, len(body)))

    async def _hang(self, request, entry, event, rule, response):
        waiter = asyncio.Event()
        pair = (rule['id'], waiter)
        self.waiters.append(pair)
        secs = MAX_HANG_SECS if rule['secs'] is None else float(rule['secs'])
        started = time.time()
        event['client_saw'] = 'no answer (hanging)'
        try:
            await asyncio.wait_for(waiter.wait(), secs)
            ended = 'released'
        except asyncio.TimeoutError:
            ended = 'timed out'
        finally:
            self.waiters.remove(pair)
        waited = 'no answer for {0:.1f} s ({1})'.format(time.time() - started, ended)
        if rule['then'] == 'drop' or response is None:
            return self._drop(request, entry, event, waited + ', then connection closed')
        event['client_saw'] = waited + ', then the answer'
        return response


class TaskHolds(object):
    """Tasks that stay `running` (see the module doc): rules by task type, and the held tasks."""

    def __init__(self, pve):
        self.pve = pve
        self.rules = []
        self.held = {}  # upid -> {'type', 'vmid', 'event', 'stopped', 'ended'}
        self.log = []

    def add(self, a):
        rule = {'type': a['type'], 'times': int(a.get('times', 1) or 0), 'secs': a.get('secs'), 'hits': 0}
        self.rules.append(rule)
        return rule

    def take(self, ttype):
        for rule in self.rules:
            if rule['type'] == ttype:
                rule['hits'] += 1
                if rule['times'] and rule['hits'] >= rule['times']:
                    self.rules.remove(rule)
                return rule
        return None

    def wrap(self, rule, ttype, vm, body):
        """The task body, preceded by the hold; returns (hold record, body)."""
        hold = {'type': ttype, 'vmid': vm.vmid if vm is not None else None, 'event': asyncio.Event(),
                'stopped': False, 'ended': None, 'upid': None}
        secs = MAX_HANG_SECS if rule['secs'] is None else float(rule['secs'])

        async def held():
            try:
                await asyncio.wait_for(hold['event'].wait(), secs)
            except asyncio.TimeoutError:
                pass
            if hold['stopped']:
                hold['ended'] = 'stopped'
                if ttype == 'qmclone' and vm is not None and vm in self.pve.vms:
                    # PVE's clone worker removes the half-made VM when it fails.
                    self.pve.vms.remove(vm)
                    raise TaskError('clone failed: ' + INTERRUPTED)
                raise TaskError(INTERRUPTED)
            hold['ended'] = 'released' if hold['event'].is_set() else 'timed out'
            return await body()
        return hold, held

    def release(self, ttype=None):
        released = 0
        for hold in self.held.values():
            if hold['ended'] is None and not hold['event'].is_set() and ttype in (None, hold['type']):
                hold['event'].set()
                released += 1
        return released

    def stop(self, upid):
        """A client stopped the task: True when it was a held one."""
        hold = self.held.get(upid)
        if hold is None or hold['ended'] is not None:
            return False
        hold['stopped'] = True
        hold['event'].set()
        self.log.append({'upid': upid, 'stopped': True, 'time': time.time()})
        return True

    def view(self):
        return [{'upid': upid, 'type': h['type'], 'vmid': h['vmid'], 'ended': h['ended'], 'stopped': h['stopped']}
                for upid, h in self.held.items()]


class Harness(object):
    def __init__(self, pve, secret, decoy):
        self.pve = pve
        self.secret = secret
        self.decoy = decoy
        self.proxy = FaultProxy(decoy)
        self.holds = TaskHolds(pve)
        self.log = []
        self.quirks = {'real_401': True, 'legacy_errors': False, 'close_on_error': True,
                       'reject_trailing_slash': True}
        # task type -> number of warnings its successful tasks end with
        self.warnings = {}
        self.warned = set()
        # task type -> real seconds its tasks stay `running` before they start working
        self.task_delays = {}
        # UPID -> the event that stops a delayed task still waiting (DELETE .../tasks/{upid})
        self.delayed = {}
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
            hold_rule = self.holds.take(ttype)
            if hold_rule is not None:
                hold, held = self.holds.wrap(hold_rule, ttype, vm, body)
                scale = pve.time_scale
                pve.time_scale = scale or 1e-9  # makes fakepve run the task in the background
                try:
                    upid = await original(node, ttype, tid, user, held, vm=vm, lock=lock, log=log)
                finally:
                    pve.time_scale = scale
                hold['upid'] = upid
                self.holds.held[upid] = hold
                return upid
            delay = self.task_delays.get(ttype)
            if not delay:
                return await original(node, ttype, tid, user, body, vm=vm, lock=lock, log=log)
            interrupt = asyncio.Event()

            async def delayed():
                try:
                    await asyncio.wait_for(interrupt.wait(), delay)
                except asyncio.TimeoutError:
                    pass
                if interrupt.is_set():
                    # Stopped through the API while it waited: PVE's worker dies on SIGTERM.
                    raise TaskError(INTERRUPTED)
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
                upid = await original(node, ttype, tid, user, delayed, vm=None, lock=False, log=log)
            finally:
                pve.time_scale = scale
            self.delayed[upid] = interrupt
            return upid
        pve.task = task

    # ----------------------------------------------------------- middleware

    @web.middleware
    async def middleware(self, request, handler):
        body = await request.read()  # aiohttp keeps it for the handlers below
        entry = {'method': request.method, 'path': request.path, 'raw_path': request.rel_url.raw_path,
                 'query': request.query_string,
                 'body': body.decode('utf-8', 'replace'),
                 'form': dict(urllib.parse.parse_qsl(body.decode('utf-8', 'replace'), keep_blank_values=True)),
                 'token': self._token_id(request), 'status': None, 'fault': None}
        self.log.append(entry)
        response = await self.proxy.handle(request, entry, lambda: self._answer(request, handler, entry))
        entry['status'] = response.status if response is not None else 'dropped'
        return response

    @staticmethod
    def _token_id(request):
        auth = request.headers.get('Authorization', '')
        if not auth.startswith('PVEAPIToken='):
            return None
        return auth[len('PVEAPIToken='):].rpartition('=')[0]

    async def _answer(self, request, handler, entry):
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
        stopped = self._stop_task(request)
        if stopped is not None:
            return stopped
        response = await handler(request)
        self._note_console_secrets(path, response)
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

    def _stop_task(self, request):
        """DELETE /nodes/{node}/tasks/{upid} of a held or delayed task: PVE stops its worker."""
        match = re.fullmatch(r'/api2/(json|extjs)/nodes/[^/]+/tasks/([^/]+)', request.path)
        if request.method != 'DELETE' or not match:
            return None
        upid = match.group(2)
        delayed = self.delayed.get(upid)
        if delayed is not None and self.pve.tasks.get(upid, {}).get('status') == 'running':
            delayed.set()
        elif not self.holds.stop(upid):
            return None
        return web.json_response({'data': None, 'success': 1} if match.group(1) == 'extjs' else {'data': None})

    @staticmethod
    def _note_console_secrets(path, response):
        if not path.endswith('/vncproxy') and not path.endswith('/termproxy'):
            return
        try:
            data = json.loads(response.text).get('data') or {}
        except (AttributeError, TypeError, ValueError):
            return
        note_secrets(data.get('ticket'), data.get('password'))

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
        if cmd == 'add_token':
            # another API token (user@realm!tokenid), e.g. a least-privilege one
            pve.apitokens[a['token']] = a['secret']
            note_secrets(a['secret'])
            return None
        if cmd == 'grant':
            # an ACL entry: the user or token holds these privileges on the path (and below);
            # once any grant exists, tokens of users other than root@pam hold only what is granted
            pve.grant(a['user'], a['path'], *a['privileges'])
            return None
        if cmd == 'set_storage':
            # storage.cfg options of a storage, e.g. {"disable": 1}
            pve.storages[a['storage']].update(a['options'])
            return None
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
            self.proxy.clear()
            return None
        if cmd == 'errors_for':
            return [{'name': e['name'], 'status': e['status'], 'in_task': e['in_task'], 'message': e['message']}
                    for e in pve.errors_for(a['method'], a['path'])]
        if cmd == 'inject':
            # a failure before the simulator sees the request: a fault that is never forwarded,
            # picked by a path fragment
            kind = a.get('kind', 'status')
            if kind not in ('status', 'html', 'drop'):
                raise ValueError('inject kind is status, html or drop')
            self.proxy.add({'kind': kind, 'method': a.get('method'), 'path': re.escape(a.get('path') or ''),
                            'times': max(int(a.get('times', 1)), 1), 'forward': False,
                            'status': int(a.get('status', 502)),
                            'message': a.get('message') or ('Connection refused' if kind == 'status' else None)})
            return None
        if cmd == 'fault':
            return self.proxy.add(a)['id']
        if cmd == 'faults':
            # what the proxy did: one event per request it interfered with
            return self.proxy.events
        if cmd == 'fault_rules':
            return self.proxy.rules
        if cmd == 'clear_faults':
            self.proxy.clear()
            return None
        if cmd == 'release':
            # answers of hanging faults (of one rule, or all) go out now
            return self.proxy.release(a.get('rule'))
        if cmd == 'decoy':
            # the decoy server redirects point at: its address and what reached it; `data` sets its answer
            await self.decoy.ensure_started()
            if 'data' in a:
                self.decoy.data = a['data']
            return {'url': self.decoy.url(), 'requests': self.decoy.requests}
        if cmd == 'hold_tasks':
            # {"type": "qmclone", "times": 1, "secs": null}: such tasks stay running
            self.holds.add(a)
            return None
        if cmd == 'release_tasks':
            # held tasks (of one type, or all) go on and finish
            return self.holds.release(a.get('type'))
        if cmd == 'held_tasks':
            return self.holds.view()
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
    decoy_host = decoy_address(args.host)
    certfile, keyfile, _ = make_cert(directory, hosts=(args.host, decoy_host))
    note_secrets(args.secret)

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

    import ssl
    decoy_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    decoy_ssl.load_cert_chain(certfile, keyfile)
    harness = Harness(pve, args.secret, Decoy(decoy_host, decoy_ssl))
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
        harness.proxy.release()
        harness.holds.release()
        await harness.decoy.stop()
        await pve.stop()


if __name__ == '__main__':
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
