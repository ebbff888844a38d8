"""Unit tests of the benchmark harness (run by scripts/test.sh; the benchmark itself is not,
its numbers depend on the machine). The `measure` tests need bench/floor built."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


class Statistics(unittest.TestCase):
    def test_median_and_spread(self):
        xs = list(range(1, 12))
        self.assertEqual(bench.median(xs), 6)
        self.assertEqual(bench.spread(xs), (2, 10))
        self.assertEqual(bench.spread([5.0]), (5.0, 5.0))

    def test_least_squares_recovers_a_line(self):
        a, b = bench.least_squares([(100, 3.0 + 0.015 * 100), (500, 3.0 + 0.015 * 500), (2000, 3.0 + 0.015 * 2000)])
        self.assertAlmostEqual(a, 0.015)
        self.assertAlmostEqual(b, 3.0)


class Sample(object):
    def __init__(self, wall, cpu, rss):
        self.wall_ms, self.cpu_ms, self.rss_mib = wall, cpu, rss


class Report(unittest.TestCase):
    def test_markdown_has_ratios_targets_and_the_create_floor(self):
        b = bench.Bench.__new__(bench.Bench)
        b.args = type('Args', (), {'runs': 2, 'warmup': 1})()
        b.ours = b.hyperv = '/nonexistent'
        b.trust = {'hashed': 3, 'bundle_bytes': 4096}
        b.results = [
            ('Proxmox: one VM', 'status', {'ours': bench.Stats([Sample(6, 3, 6), Sample(8, 3, 6)]),
                                           'ngine': bench.Stats([Sample(140, 100, 23)] * 2),
                                           'floor': bench.Stats([Sample(5, 2.5, 4.3)] * 2)}, ''),
            ('Proxmox: timed tasks', 'create', {'ours': bench.Stats([Sample(1650, 8, 6)] * 2), 'floor': None}, ''),
        ]
        b.create_floor = 1500
        b.targets = [('`status` wall ≤ 1.15× the floor client', '1.40×', False)]
        text = b.markdown()
        self.assertIn('| status | ours | 7.0 (6.2–7.8) | 3.00 (3.00–3.00) | 6.0 (6.0–6.0) |  |', text)
        self.assertIn('| 20.0× ours |', text)
        self.assertIn('| ours 1.40× |', text)
        self.assertIn('1.100× the simulated floor (1500 ms)', text)
        self.assertIn('| `status` wall ≤ 1.15× the floor client | 1.40× | **no** |', text)


MEASURE = os.path.join(bench.FLOOR_BIN, 'measure')


@unittest.skipUnless(os.path.exists(MEASURE), 'bench/floor is not built')
class Measure(unittest.TestCase):
    def measure(self, argv):
        work = tempfile.mkdtemp(prefix='measure-test-')
        self.addCleanup(shutil.rmtree, work, True)
        meter = bench.Meter(work)
        return meter.run(argv, dict(os.environ), expect_exit=(0, 3), contract=False, label='test')

    def test_reports_the_childs_own_peak_rss_not_the_parents(self):
        small = self.measure(['/bin/true'])
        # Python (this process) holds well over 8 MiB; the child forked by measure does not.
        self.assertLess(small.rss_mib, 4)
        big = self.measure([sys.executable, '-c', 'b = bytearray(64 << 20); b[::4096] = b"x" * (len(b) // 4096)'])
        self.assertGreater(big.rss_mib, 64)

    def test_exit_status_cpu_and_output(self):
        done = self.measure(['sh', '-c', 'echo hello; exit 3'])
        self.assertEqual((done.exit, done.stdout), (3, b'hello\n'))
        spin = self.measure([sys.executable, '-c', 'sum(range(3000000))'])
        self.assertGreater(spin.cpu_ms, 10)
        self.assertGreaterEqual(spin.wall_ms, spin.cpu_ms * 0.5)
        self.assertLess(spin.start_ns, spin.end_ns)

    def test_stdin_is_an_open_pipe_nobody_writes(self):
        # `read` would get EOF at once from /dev/null; from measure's pipe it would block,
        # so the child only checks what its stdin is.
        done = self.measure(['sh', '-c', '[ -p /dev/stdin ] && exit 0 || exit 3'])
        self.assertEqual(done.exit, 0)


if __name__ == '__main__':
    unittest.main()
