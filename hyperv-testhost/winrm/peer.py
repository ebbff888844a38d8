"""The WinRM side of hyperv-testhost: a WS-Management endpoint on loopback that runs the same
fake PowerShell as the test host's sshd.

It speaks what a Windows WinRM HTTPS listener speaks to a client such as pywinrm:

* HTTPS with its own certificate, signed by a CA it makes at start-up (ca.pem; other-ca.pem is
  an unrelated CA for trust tests);
* HTTP authentication per TCP connection: NTLM (as "Negotiate" or "NTLM"), verified by the
  acceptor side of pyspnego against a credential file, with the TLS channel binding
  (tls-server-end-point) required as under WinRM's strict CBT hardening; optionally Basic;
* the Windows Remote Shell operations: Create shell, Command, Receive (long-polling up to the
  request's OperationTimeout, then the w:TimedOut fault Windows sends), Signal, Delete;
* a shell created with an IdleTimeOut is deleted (its commands killed) once no request has
  touched it for that long, as Windows does.

A Command starts the fake PowerShell (`<fake> --home <home>`, as the SSH test user) with the
command line in SSH_ORIGINAL_COMMAND, exactly as sshd's ForceCommand does, so both transports
reach the same simulated Hyper-V host.

What happened is written to counters.json after every request (see Counters in winrm.rs);
fault knobs are read from control.json before every request. Runs until killed; prints one
JSON line (port, certificate paths, fingerprint) when it accepts connections.

Usage: peer.py --dir DIR --fake FAKE --home HOME --user NAME --password-file FILE
               --uid UID --gid GID
"""

import argparse
import base64
import datetime
import hashlib
import http.server
import ipaddress
import json
import os
import re
import select
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET

import spnego
from spnego.channel_bindings import GssChannelBindings
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
}
SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
ACTIONS = {
    TRANSFER + "Create": "create",
    SHELL + "Command": "command",
    SHELL + "Receive": "receive",
    SHELL + "Signal": "signal",
    TRANSFER + "Delete": "delete",
}
SIGNAL_TERMINATE = SHELL + "signal/terminate"
STATE_DONE = SHELL + "CommandState/Done"
STATE_RUNNING = SHELL + "CommandState/Running"
# The WSManFault code Windows puts in the fault a Receive gets when OperationTimeout passes
# with no output (pywinrm retries on exactly this code).
TIMED_OUT_CODE = 2150858793
MACHINE = "HV-TEST"

for prefix, uri in NS.items():
    ET.register_namespace(prefix, uri)


def now_ms():
    return int(time.time() * 1000)


class Peer:
    """Everything shared by the connection threads: shells, counters, configuration."""

    def __init__(self, args):
        self.dir = args.dir
        self.fake = args.fake
        self.home = args.home
        self.user = args.user
        with open(args.password_file, encoding="utf-8") as f:
            self.password = f.read().strip()
        self.uid = args.uid
        self.gid = args.gid
        self.lock = threading.Lock()
        self.shells = {}
        self.counters = {
            "connections": 0,
            "tls_failures": 0,
            "requests": 0,
            "unauthenticated": 0,
            "ntlm_negotiates": 0,
            "ntlm_authenticated": 0,
            "basic_authenticated": 0,
            "auth_failures": 0,
            "shells_created": 0,
            "shells_deleted": 0,
            "shells_expired": 0,
            "commands": 0,
            "receives": 0,
            "timed_out_receives": 0,
            "signals": 0,
            "faults": 0,
            "garbage": 0,
            "events": [],
        }
        self.counters_path = os.path.join(self.dir, "counters.json")
        self.control_path = os.path.join(self.dir, "control.json")
        self.log_path = os.path.join(self.dir, "peer.log")
        self.log_lock = threading.Lock()
        self.save()
        threading.Thread(target=self.expire_idle_shells, daemon=True).start()

    def log(self, message):
        stamp = datetime.datetime.now().isoformat(timespec="milliseconds")
        with self.log_lock, open(self.log_path, "a", encoding="utf-8") as f:
            f.write(f"{stamp} {message}\n")

    def knobs(self):
        try:
            with open(self.control_path, encoding="utf-8") as f:
                value = json.load(f)
                return value if isinstance(value, dict) else {}
        except (OSError, ValueError):
            return {}

    def count(self, name, n=1, event=None):
        with self.lock:
            self.counters[name] += n
            if event is not None:
                event["at_ms"] = now_ms()
                self.counters["events"].append(event)
            self.save_locked()

    def event(self, event):
        with self.lock:
            event["at_ms"] = now_ms()
            self.counters["events"].append(event)
            self.save_locked()

    def save(self):
        with self.lock:
            self.save_locked()

    def expire_idle_shells(self):
        """Windows deletes a shell no request has touched for its IdleTimeOut."""
        while True:
            time.sleep(0.05)
            now = time.monotonic()
            with self.lock:
                idle = [
                    s
                    for s in self.shells.values()
                    if not s.deleted and s.idle_s is not None and s.busy == 0 and now - s.last_active > s.idle_s
                ]
                for shell in idle:
                    shell.deleted = True
            for shell in idle:
                running = [c for c in shell.commands.values() if c.running()]
                for cmd in shell.commands.values():
                    cmd.terminate()
                self.log(f"shell {shell.id} expired after {shell.idle_s} s idle")
                self.count(
                    "shells_expired",
                    event={"op": "expired", "shell": shell.id, "idle_s": shell.idle_s, "killed_commands": len(running)},
                )

    def save_locked(self):
        counters = dict(self.counters)
        counters["open_shells"] = sorted(k for k, s in self.shells.items() if not s.deleted)
        tmp = self.counters_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(counters, f, indent=1)
        os.replace(tmp, self.counters_path)


class Command:
    """One started fake PowerShell and what it has written so far."""

    def __init__(self, peer, shell_id, line):
        self.id = str(uuid.uuid4()).upper()
        self.peer = peer
        self.line = line
        self.cond = threading.Condition()
        self.out = {"stdout": bytearray(), "stderr": bytearray()}
        self.sent = {"stdout": 0, "stderr": 0}
        self.open_streams = 2
        self.stop = threading.Event()
        self.exit_code = None
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": peer.home,
            "SSH_ORIGINAL_COMMAND": line,
        }
        self.proc = subprocess.Popen(
            [peer.fake, "--home", peer.home],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=peer.home,
            user=peer.uid,
            group=peer.gid,
            extra_groups=[],
        )
        for name, pipe in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr)):
            threading.Thread(target=self.pump, args=(name, pipe), daemon=True).start()
        threading.Thread(target=self.reap, daemon=True).start()

    def pump(self, name, pipe):
        fd = pipe.fileno()
        try:
            while not self.stop.is_set():
                ready, _, _ = select.select([fd], [], [], 0.05)
                if not ready:
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                with self.cond:
                    self.out[name] += chunk
                    self.cond.notify_all()
        finally:
            # Closing our end is what tells the fake that the client went away (like sshd
            # closing the channel when a session ends).
            pipe.close()
            with self.cond:
                self.open_streams -= 1
                self.cond.notify_all()

    def reap(self):
        code = self.proc.wait()
        with self.cond:
            self.exit_code = code if code >= 0 else 128 - code
            self.cond.notify_all()

    def done_locked(self):
        return self.exit_code is not None and self.open_streams == 0

    def running(self):
        with self.cond:
            return self.exit_code is None

    def terminate(self):
        """What Windows does on Signal terminate or Delete: the process is gone."""
        self.stop.set()
        deadline = time.monotonic() + 2.0
        while self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def receive(self, wait_s):
        """New output, waiting up to wait_s for some; None when nothing came in time."""
        end = time.monotonic() + wait_s
        with self.cond:
            while True:
                fresh = {n: bytes(self.out[n][self.sent[n]:]) for n in ("stdout", "stderr")}
                if any(fresh.values()) or self.done_locked():
                    for n, data in fresh.items():
                        self.sent[n] += len(data)
                    return fresh, self.done_locked(), self.exit_code
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)


class Shell:
    def __init__(self, owner, idle_s):
        self.id = str(uuid.uuid4()).upper()
        self.owner = owner
        self.commands = {}
        self.deleted = False
        # IdleTimeOut in seconds (None: the client asked for none); the time of the last
        # request on the shell, and how many are in progress (a shell is not idle meanwhile).
        self.idle_s = idle_s
        self.last_active = time.monotonic()
        self.busy = 0


class SoapFault(Exception):
    def __init__(self, status, code, subcode, reason, wsman_code):
        super().__init__(reason)
        self.status = status
        self.code = code
        self.subcode = subcode
        self.reason = reason
        self.wsman_code = wsman_code


def parse_duration(text, default):
    """xs:duration as WinRM clients send it (PT20S, PT20.000S, PT1M)."""
    m = re.fullmatch(r"PT(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?", (text or "").strip())
    if not m or not any(m.groups()):
        return default
    return int(m.group(1) or 0) * 60 + float(m.group(2) or 0)


def envelope(action, relates_to, body_xml):
    return (
        '<s:Envelope xml:lang="en-US" xmlns:s="{s}" xmlns:a="{a}" xmlns:x="{x}" xmlns:w="{w}" '
        'xmlns:rsp="{rsp}"><s:Header><a:Action>{action}</a:Action>'
        "<a:MessageID>uuid:{mid}</a:MessageID>"
        "<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
        "<a:RelatesTo>{relates}</a:RelatesTo></s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).format(
        action=action,
        mid=str(uuid.uuid4()).upper(),
        relates=xml_escape(relates_to),
        body=body_xml,
        **NS,
    )


def fault_envelope(relates_to, fault):
    detail = ""
    if fault.wsman_code is not None:
        detail = (
            '<s:Detail><f:WSManFault xmlns:f="{f}" Code="{code}" Machine="{m}">'
            "<f:Message>{msg}</f:Message></f:WSManFault></s:Detail>"
        ).format(f=NS["f"], code=fault.wsman_code, m=MACHINE, msg=xml_escape(fault.reason))
    body = (
        "<s:Fault><s:Code><s:Value>{code}</s:Value><s:Subcode><s:Value>{sub}</s:Value>"
        '</s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">{reason}</s:Text></s:Reason>'
        "{detail}</s:Fault>"
    ).format(code=fault.code, sub=fault.subcode, reason=xml_escape(fault.reason), detail=detail)
    return envelope("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", relates_to, body)


def xml_escape(text):
    return (
        str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, peer, context, address):
        self.peer = peer
        self.context = context
        self.certificate_hash = None
        super().__init__(address, Handler)

    def finish_request(self, request, client_address):
        self.peer.count("connections")
        # Answers are written in pieces (headers, body); without this, Nagle and the client's
        # delayed ACK add 40 ms to every round trip.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request.settimeout(30)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            # The client refused our certificate (or never spoke TLS): nothing was sent.
            self.peer.count("tls_failures", event={"op": "tls_failure", "error": str(e)})
            self.peer.log(f"TLS handshake failed: {e}")
            return
        try:
            tls.settimeout(120)
            Handler(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""

    def setup(self):
        super().setup()
        self.peer = self.server.peer
        self.ntlm = None
        self.user = None  # set once NTLM authenticated this connection
        self.touched = None  # the shell the request in progress works on

    def log_message(self, format, *args):
        self.peer.log("http: " + (format % args))

    def send(self, status, body=b"", headers=(), content_type="application/soap+xml;charset=UTF-8"):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if body:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)
        self.wfile.flush()

    def challenge_headers(self, knobs, token=None, scheme="Negotiate"):
        if token is not None:
            return [("WWW-Authenticate", f"{scheme} {base64.b64encode(token).decode()}")]
        headers = [("WWW-Authenticate", "Negotiate")]
        if knobs.get("basic"):
            headers.append(("WWW-Authenticate", 'Basic realm="WSMAN"'))
        return headers

    def do_GET(self):
        self.send(405, b"", [("Allow", "POST")])

    def do_POST(self):
        peer = self.peer
        knobs = peer.knobs()
        length = self.headers.get("Content-Length")
        if length is None:
            self.send(411)
            return
        body = self.rfile.read(int(length))
        peer.count("requests")
        if self.path.rstrip("/").lower() != "/wsman":
            self.send(404)
            return
        user = self.authenticate(knobs)
        if user is None:
            return
        if not body:
            # The empty body of an authentication round trip that already succeeded.
            self.send(200)
            return
        self.soap(body, user, knobs)

    def authenticate(self, knobs):
        """The authenticated user, or None after answering the request with a 401."""
        peer = self.peer
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        scheme_l = scheme.lower()
        if scheme_l in ("negotiate", "ntlm") and value:
            try:
                token = base64.b64decode(value.strip(), validate=True)
            except ValueError:
                peer.count("auth_failures", event={"op": "auth_failure", "why": "bad base64"})
                self.send(401, headers=self.challenge_headers(knobs))
                return None
            message_type = int.from_bytes(token[8:12], "little") if token[:8] == b"NTLMSSP\0" else 0
            if message_type == 1:
                self.user = None
                self.ntlm = spnego.server(
                    protocol="ntlm",
                    channel_bindings=GssChannelBindings(
                        application_data=b"tls-server-end-point:" + self.server.certificate_hash
                    ),
                )
                challenge = self.ntlm.step(token)
                peer.count("ntlm_negotiates")
                self.send(401, headers=self.challenge_headers(knobs, challenge, scheme))
                return None
            if message_type == 3 and self.ntlm is not None:
                ntlm, self.ntlm = self.ntlm, None
                try:
                    ntlm.step(token)
                except Exception as e:  # pyspnego raises several types; all mean "refused"
                    peer.count("auth_failures", event={"op": "auth_failure", "why": str(e)})
                    peer.log(f"NTLM authentication failed: {e}")
                    self.send(401, headers=self.challenge_headers(knobs))
                    return None
                self.user = ntlm.client_principal or "?"
                peer.count("ntlm_authenticated", event={"op": "authenticated", "user": self.user})
                return self.user
            peer.count("auth_failures", event={"op": "auth_failure", "why": "unexpected token"})
            self.send(401, headers=self.challenge_headers(knobs))
            return None
        if scheme_l == "basic" and value:
            try:
                name, _, password = base64.b64decode(value.strip()).decode("utf-8").partition(":")
            except ValueError:
                name, password = "", None
            if knobs.get("basic") and name.lower() == peer.user.lower() and password == peer.password:
                peer.count("basic_authenticated")
                return name
            peer.count("auth_failures", event={"op": "auth_failure", "why": "basic"})
            self.send(401, headers=self.challenge_headers(knobs))
            return None
        if self.user is not None:
            return self.user
        peer.count("unauthenticated")
        self.send(401, headers=self.challenge_headers(knobs))
        return None

    def soap(self, body, user, knobs):
        peer = self.peer
        relates_to = ""
        try:
            try:
                root = ET.fromstring(body)
            except ET.ParseError as e:
                raise SoapFault(400, "s:Sender", "w:InvalidMessage", f"the request is not XML: {e}", 2150858817)
            header = root.find("s:Header", NS)
            if header is None or root.find("s:Body", NS) is None:
                raise SoapFault(400, "s:Sender", "w:InvalidMessage", "not a SOAP envelope", 2150858817)
            relates_to = header.findtext("a:MessageID", "", NS)
            action = header.findtext("a:Action", "", NS).strip()
            resource = header.findtext("w:ResourceURI", "", NS).strip()
            op = ACTIONS.get(action)
            if op is None:
                raise SoapFault(500, "s:Sender", "a:ActionNotSupported", f"unsupported action {action}", None)
            if resource != SHELL_URI:
                raise SoapFault(500, "s:Sender", "w:DestinationUnreachable", f"unknown resource {resource}", 2150858770)
            if not relates_to:
                raise SoapFault(400, "s:Sender", "w:InvalidMessage", "no MessageID", 2150858817)
            if knobs.get("garbage_at") == op:
                peer.count("garbage", event={"op": "garbage", "at": op})
                self.send(200, b"\x00\xffthis is not SOAP <Envelope", content_type="text/plain")
                return
            if knobs.get("fault_at") == op:
                peer.count("faults", event={"op": "fault", "at": op})
                raise SoapFault(
                    500,
                    "s:Receiver",
                    "w:InternalError",
                    knobs.get("fault_message") or "The WS-Management service cannot process the request (test fault).",
                    knobs.get("fault_code", 2150858752),
                )
            try:
                reply = getattr(self, "op_" + op)(root, header, user, knobs)
            finally:
                self.release_shell()
            self.send(200, envelope(action + "Response", relates_to, reply).encode("utf-8"))
        except SoapFault as fault:
            self.send(fault.status, fault_envelope(relates_to or "uuid:0", fault).encode("utf-8"))

    def release_shell(self):
        """The request on the shell is over: its idle time counts from now."""
        shell, self.touched = self.touched, None
        if shell is not None:
            with self.peer.lock:
                shell.busy -= 1
                shell.last_active = time.monotonic()

    @staticmethod
    def shell_id(header):
        for selector in header.findall("w:SelectorSet/w:Selector", NS):
            if selector.get("Name") == "ShellId":
                return (selector.text or "").strip()
        return ""

    def find_shell(self, header, user):
        shell_id = self.shell_id(header)
        with self.peer.lock:
            shell = self.peer.shells.get(shell_id)
            found = shell is not None and not shell.deleted and shell.owner.lower() == user.lower()
            if found:
                shell.busy += 1
                self.touched = shell
        if not found:
            raise SoapFault(
                500,
                "s:Sender",
                "w:InvalidSelectors",
                f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell was not found on the server.",
                2150858843,
            )
        return shell

    def op_create(self, root, header, user, knobs):
        peer = self.peer
        idle_text = root.findtext("s:Body/rsp:Shell/rsp:IdleTimeOut", None, NS)
        idle_s = parse_duration(idle_text, None) if idle_text is not None else None
        cap = knobs.get("max_idle_timeout_ms")
        if idle_s is not None and cap:
            idle_s = min(idle_s, cap / 1000.0)
        shell = Shell(user, idle_s)
        options = {o.get("Name"): (o.text or "") for o in header.findall("w:OptionSet/w:Option", NS)}
        with peer.lock:
            peer.shells[shell.id] = shell
        peer.count(
            "shells_created",
            event={"op": "create", "shell": shell.id, "user": user, "options": options, "idle_timeout": idle_text},
        )
        return (
            "<x:ResourceCreated><a:Address>https://127.0.0.1/wsman</a:Address><a:ReferenceParameters>"
            "<w:ResourceURI>{uri}</w:ResourceURI><w:SelectorSet><w:Selector Name=\"ShellId\">{id}</w:Selector>"
            "</w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>"
            "<rsp:Shell><rsp:ShellId>{id}</rsp:ShellId><rsp:ResourceUri>{uri}</rsp:ResourceUri>"
            "<rsp:Owner>{owner}</rsp:Owner><rsp:InputStreams>stdin</rsp:InputStreams>"
            "<rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>"
        ).format(uri=SHELL_URI, id=shell.id, owner=xml_escape(user))

    def op_command(self, root, header, user, knobs):
        peer = self.peer
        shell = self.find_shell(header, user)
        line_node = root.find("s:Body/rsp:CommandLine", NS)
        if line_node is None:
            raise SoapFault(400, "s:Sender", "w:InvalidMessage", "no CommandLine", 2150858817)
        command = (line_node.findtext("rsp:Command", "", NS) or "").strip()
        arguments = [a.text or "" for a in line_node.findall("rsp:Arguments", NS)]
        line = " ".join([command] + arguments)
        options = {o.get("Name"): (o.text or "") for o in header.findall("w:OptionSet/w:Option", NS)}
        cmd = Command(peer, shell.id, line)
        with peer.lock:
            shell.commands[cmd.id] = cmd
        peer.count(
            "commands",
            event={
                "op": "command",
                "shell": shell.id,
                "command": cmd.id,
                "chars": len(line),
                "program": line.split(" ", 1)[0],
                "options": options,
            },
        )
        return f"<rsp:CommandResponse><rsp:CommandId>{cmd.id}</rsp:CommandId></rsp:CommandResponse>"

    def op_receive(self, root, header, user, knobs):
        peer = self.peer
        shell = self.find_shell(header, user)
        desired = root.find("s:Body/rsp:Receive/rsp:DesiredStream", NS)
        command_id = (desired.get("CommandId") if desired is not None else "") or ""
        cmd = shell.commands.get(command_id.upper())
        if cmd is None:
            raise SoapFault(500, "s:Sender", "w:InvalidParameter", f"unknown CommandId {command_id}", 2150858882)
        wait = parse_duration(header.findtext("w:OperationTimeout", "", NS), 60.0)
        cap = knobs.get("max_operation_timeout_ms")
        if cap:
            wait = min(wait, cap / 1000.0)
        peer.count("receives")
        got = cmd.receive(wait)
        if got is None:
            peer.count("timed_out_receives", event={"op": "receive_timed_out", "shell": shell.id})
            raise SoapFault(
                500,
                "s:Receiver",
                "w:TimedOut",
                "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.",
                TIMED_OUT_CODE,
            )
        fresh, done, exit_code = got
        parts = []
        for name in ("stdout", "stderr"):
            data = fresh[name]
            if data:
                parts.append(
                    f'<rsp:Stream Name="{name}" CommandId="{cmd.id}">{base64.b64encode(data).decode()}</rsp:Stream>'
                )
            if done:
                parts.append(f'<rsp:Stream Name="{name}" CommandId="{cmd.id}" End="true"></rsp:Stream>')
        if done:
            parts.append(
                f'<rsp:CommandState CommandId="{cmd.id}" State="{STATE_DONE}"><rsp:ExitCode>{exit_code}</rsp:ExitCode></rsp:CommandState>'
            )
            peer.event({"op": "done", "shell": shell.id, "command": cmd.id, "exit_code": exit_code})
        else:
            parts.append(f'<rsp:CommandState CommandId="{cmd.id}" State="{STATE_RUNNING}"/>')
        return "<rsp:ReceiveResponse>" + "".join(parts) + "</rsp:ReceiveResponse>"

    def op_signal(self, root, header, user, knobs):
        peer = self.peer
        shell = self.find_shell(header, user)
        node = root.find("s:Body/rsp:Signal", NS)
        command_id = (node.get("CommandId") if node is not None else "") or ""
        code = (node.findtext("rsp:Code", "", NS) if node is not None else "").strip()
        cmd = shell.commands.get(command_id.upper())
        if cmd is None:
            raise SoapFault(500, "s:Sender", "w:InvalidParameter", f"unknown CommandId {command_id}", 2150858882)
        was_running = cmd.running()
        if code == SIGNAL_TERMINATE:
            cmd.terminate()
        peer.count(
            "signals",
            event={"op": "signal", "shell": shell.id, "command": cmd.id, "code": code.rsplit("/", 1)[-1], "was_running": was_running},
        )
        return "<rsp:SignalResponse/>"

    def op_delete(self, root, header, user, knobs):
        peer = self.peer
        shell = self.find_shell(header, user)
        running = [c for c in shell.commands.values() if c.running()]
        for cmd in shell.commands.values():
            cmd.terminate()
        with peer.lock:
            shell.deleted = True
        peer.count("shells_deleted", event={"op": "delete", "shell": shell.id, "killed_commands": len(running)})
        return ""


def bind(peer, context):
    """WinRM's own port, 5986, on a loopback address of its own (127.a.b.c, never 127.0.0.x,
    so parallel test hosts do not collide): a client then needs only the host, as upstream's
    hyperv.py does (https://<url>:5986/wsman)."""
    import random

    rng = random.Random(os.urandom(16))
    last = None
    for _ in range(32):
        address = f"127.{rng.randint(10, 249)}.{rng.randint(0, 255)}.{rng.randint(2, 253)}"
        try:
            return Server(peer, context, (address, 5986))
        except OSError as e:
            last = e
    raise SystemExit(f"no free loopback address for port 5986: {last}")


def make_certificates(directory, address):
    """A CA, a server certificate it signs (CN HV-TEST, SAN `address`, 127.0.0.1 and
    localhost), and an unrelated CA; PEM files in `directory`. EC P-256 keys: instant."""
    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def ca(cn):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(name(cn))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(key, hashes.SHA256())
        )
        return key, cert

    ca_key, ca_cert = ca("hyperv-testhost WinRM CA")
    _, other_cert = ca("hyperv-testhost unrelated CA")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name(MACHINE))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address(address)),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    paths = {
        "ca": os.path.join(directory, "ca.pem"),
        "other_ca": os.path.join(directory, "other-ca.pem"),
        "cert": os.path.join(directory, "server.pem"),
        "key": os.path.join(directory, "server.key"),
    }
    pem = serialization.Encoding.PEM
    with open(paths["ca"], "wb") as f:
        f.write(ca_cert.public_bytes(pem))
    with open(paths["other_ca"], "wb") as f:
        f.write(other_cert.public_bytes(pem))
    with open(paths["cert"], "wb") as f:
        f.write(cert.public_bytes(pem))
    with open(paths["key"], "wb") as f:
        f.write(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
    der = cert.public_bytes(serialization.Encoding.DER)
    return paths, hashlib.sha256(der).digest()


def main():
    parser = argparse.ArgumentParser()
    for flag in ("--dir", "--fake", "--home", "--user", "--password-file"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--uid", type=int, required=True)
    parser.add_argument("--gid", type=int, required=True)
    args = parser.parse_args()

    os.makedirs(args.dir, exist_ok=True)
    peer = Peer(args)
    # pyspnego's NTLM acceptor reads the accounts from this file (DOMAIN:USER:PASSWORD):
    # the user with no domain, and as HV-TEST\user like a local Windows account.
    users = os.path.join(args.dir, "ntlm-users")
    with open(users, "w", encoding="utf-8") as f:
        f.write(f":{peer.user}:{peer.password}\n{MACHINE}:{peer.user}:{peer.password}\n")
    os.chmod(users, 0o600)
    os.environ["NTLM_USER_FILE"] = users

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server = bind(peer, context)
    address, port = server.server_address[:2]
    paths, certificate_hash = make_certificates(args.dir, address)
    context.load_cert_chain(paths["cert"], paths["key"])
    # tls-server-end-point: the hash of our certificate with its signature's hash (SHA-256).
    server.certificate_hash = certificate_hash
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    parent = os.getppid()

    def orphaned():
        # hyperv-testhost ends us with its process group; this covers it dying by SIGKILL.
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=orphaned, daemon=True).start()
    peer.log(f"listening on {address}:{port}")
    print(
        json.dumps(
            {
                "address": address,
                "port": port,
                "ca_certificate": paths["ca"],
                "other_ca_certificate": paths["other_ca"],
                "certificate": paths["cert"],
                "certificate_sha256": certificate_hash.hex(),
                "control": peer.control_path,
                "counters": peer.counters_path,
                "log": peer.log_path,
            }
        ),
        flush=True,
    )
    server.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
