#!/usr/bin/env python3
"""How fast each release binary turns bad input into its JSON error.

Usage: python3 bench/bad_input.py [--runs N]   (build first: cargo build --release --workspace)

Runs every case N times (default 21) per binary, as CloudStack would (no shell, stdin an open
pipe nobody writes), checks the contract on every run (empty stderr, exit 1 or 2, one JSON
error document) and prints the median and the maximum wall time.
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--runs', type=int, default=21)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix='bad-input-')
    path = lambda name: os.path.join(work, name)
    with open(path('huge.json'), 'w') as f:
        f.write(' ' * (10 * 1024 * 1024))
    with open(path('nested.json'), 'w') as f:
        f.write('[' * 200000 + ']' * 200000)
    with open(path('wrong.json'), 'w') as f:
        f.write('{"cloudstack.vm.details": {"cpus": "many"}}')
    with open(os.path.join(REPO, 'tests/fixtures/payloads/stop.json')) as src, open(path('valid.json'), 'w') as f:
        f.write(src.read())
    cases = {
        'no arguments': [],
        'missing file': ['stop', path('nope.json'), '60'],
        'wrong types': ['stop', path('wrong.json'), '60'],
        '10 MB file': ['stop', path('huge.json'), '60'],
        'deeply nested': ['stop', path('nested.json'), '60'],
        'unknown action': ['FrobnicateVM', path('valid.json'), '60'],
        'bad timeout': ['stop', path('valid.json'), 'ten'],
    }
    env = dict(os.environ, CLOUDSTACK_EXT_LOG='off')
    print(f'bad input -> JSON error, {args.runs} runs per case, wall time per process')
    print(f'{"binary":12} {"case":15} {"exit":>4} {"median ms":>10} {"max ms":>8}')
    for binary in ('proxmox-ext', 'hyperv-ext'):
        exe = os.path.join(REPO, 'target/release', binary)
        for name, argv in cases.items():
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                run = subprocess.run([exe] + argv, stdin=subprocess.PIPE, capture_output=True, env=env)
                times.append((time.perf_counter() - started) * 1000)
                doc = json.loads(run.stdout)
                assert run.stderr == b'' and run.returncode in (1, 2) and doc['status'] == 'error', (binary, name, run)
            print(f'{binary:12} {name:15} {run.returncode:>4} {statistics.median(times):>10.1f} {max(times):>8.1f}')


if __name__ == '__main__':
    main()
