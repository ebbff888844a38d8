#!/usr/bin/env python3
"""Search every log the e2e suite wrote for every secret value it used.

Usage: scan_logs.py E2E_LOG_DIR

E2E_LOG_DIR is what the suite filled (tests/src/logs.rs): `logs/*` (the extensions' log files)
and `secrets/*.txt` (one secret value per line: token secrets, passwords, lines of private
keys, passphrases, VNC passwords and console tickets). A secret counts as found when it
appears in a log
  - as it is, percent-encoded or JSON-escaped, or
  - inside a hex dump of raw traffic (16 bytes a line, as ureq-proto writes it at trace),
    where the value is split over two lines: consecutive dump lines are decoded and joined.
Prints a summary line (logs, bytes, secrets, findings) and exits 1 when anything was found,
naming the file, the line and the secret (masked), or 2 when there was nothing to scan.
"""

import json
import os
import re
import sys
import urllib.parse

# ureq-proto's Row: 8 groups of 4 hex digits ('--' pads the last row), then the printable text.
HEX_ROW = re.compile(r'((?:(?:[0-9a-f]{2}|--){2} ){8}) .{16}$')


def forms(secret):
    """The spellings a secret may take in a log line."""
    out = {secret, urllib.parse.quote(secret, safe=''), urllib.parse.quote_plus(secret),
           json.dumps(secret)[1:-1]}
    return sorted(out)


def hex_dumps(lines):
    """(first line number, bytes) of each run of consecutive hex-dump lines."""
    start, data = None, bytearray()
    for number, line in enumerate(lines, 1):
        match = HEX_ROW.search(line)
        if match:
            if start is None:
                start = number
            for pair in match.group(1).split():
                for i in (0, 2):
                    byte = pair[i:i + 2]
                    if byte != '--':
                        data.append(int(byte, 16))
            continue
        if start is not None:
            yield start, bytes(data)
            start, data = None, bytearray()
    if start is not None:
        yield start, bytes(data)


def mask(secret):
    return '{0}... ({1} chars)'.format(secret[:3], len(secret))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    secrets = set()
    secrets_dir = os.path.join(root, 'secrets')
    for name in sorted(os.listdir(secrets_dir)) if os.path.isdir(secrets_dir) else []:
        with open(os.path.join(secrets_dir, name), encoding='utf-8', errors='replace') as f:
            secrets.update(line.rstrip('\n') for line in f if line.strip())
    logs_dir = os.path.join(root, 'logs')
    logs = sorted(os.listdir(logs_dir)) if os.path.isdir(logs_dir) else []
    if not secrets or not logs:
        print('scan_logs: nothing to scan in {0} ({1} logs, {2} secrets)'.format(root, len(logs), len(secrets)))
        sys.exit(2)
    spelled = [(s, forms(s)) for s in sorted(secrets)]
    findings, size = [], 0
    for name in logs:
        path = os.path.join(logs_dir, name)
        with open(path, 'rb') as f:
            raw = f.read()
        size += len(raw)
        text = raw.decode('utf-8', 'replace')
        lines = text.split('\n')
        for secret, spellings in spelled:
            for number, line in enumerate(lines, 1):
                if any(s in line for s in spellings):
                    findings.append((name, number, secret, 'in the text'))
                    break
        for start, data in hex_dumps(lines):
            for secret, spellings in spelled:
                if any(s.encode() in data for s in spellings):
                    findings.append((name, start, secret, 'in a hex dump of raw traffic'))
    for name, number, secret, where in findings:
        print('scan_logs: SECRET FOUND {0}: {1}:{2} {3}'.format(mask(secret), name, number, where))
    print('scan_logs: {0} logs, {1} bytes, {2} secret values, {3} found'.format(
        len(logs), size, len(secrets), len(findings)))
    sys.exit(1 if findings else 0)


if __name__ == '__main__':
    main()
