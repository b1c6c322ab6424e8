"""The arbiter's worker management: the worker count, replacing dead workers, recycling after
--max-requests, and killing a worker stuck past --timeout."""

import os
import signal
import time
import unittest

from harness import AlicornTestCase, pid_alive


class WorkerCount(AlicornTestCase):
    def test_two_workers_running(self):
        server = self.start_server("hello:app", workers=2)
        workers = server.wait_workers(2)
        self.assertEqual(len(set(workers)), 2)
        self.assertNotIn(server.pid, workers)
        # Each worker announces itself once: exactly two "Booting worker" lines naming them.
        server.wait_log(r"Booting worker with pid: \d+", count=2)
        time.sleep(0.3)  # a third (wrong) line would show up by now
        self.assertEqual(sorted(server.booted_pids()), sorted(workers), server.describe())
        # And still two a moment later (no crash loop).
        self.assertEqual(sorted(server.workers()), sorted(workers), server.describe())
        self.assertServesHello(server)

    def test_requests_served_by_workers_not_master(self):
        server = self.start_server("pid:app", workers=2)
        workers = set(server.workers())
        seen = set()
        for _ in range(10):
            _, _, body, _ = self.get(server, "/")
            seen.add(int(body))
        self.assertTrue(seen <= workers, "served by %r, workers are %r" % (seen, workers))


class WorkerReplacement(AlicornTestCase):
    def test_sigkilled_worker_is_replaced(self):
        server = self.start_server("pid:app", workers=2)
        old = server.wait_workers(2)
        victim = old[0]
        os.kill(victim, signal.SIGKILL)
        new = server.wait_workers(2, exclude=[victim])
        self.assertIn(old[1], new, "the surviving worker should not be touched")
        replacement = (set(new) - set(old)).pop()
        self.assertTrue(pid_alive(replacement))
        server.wait_log(r"Booting worker with pid: %d\b" % replacement)
        self.assertFalse(pid_alive(victim))
        for _ in range(6):
            status, _, body, _ = self.get(server, "/")
            self.assertEqual(status, 200)
            self.assertIn(int(body), new)
        self.assertIsNone(server.poll(), "master died\n" + server.describe())

    def test_all_workers_killed_are_replaced(self):
        server = self.start_server("hello:app", workers=2)
        old = server.wait_workers(2)
        for pid in old:
            os.kill(pid, signal.SIGKILL)
        server.wait_workers(2, exclude=old)
        self.assertServesHello(server)


class MaxRequests(AlicornTestCase):
    def test_worker_recycled_after_max_requests(self):
        server = self.start_server("pid:app", ["--max-requests", "2"], workers=1)
        pids = []
        for _ in range(6):
            status, _, body, _ = self.get(server, "/")
            self.assertEqual(status, 200, server.describe())
            pids.append(int(body))
        counts = {pid: pids.count(pid) for pid in pids}
        self.assertGreaterEqual(len(counts), 3, "pids seen: %r\n%s" % (pids, server.describe()))
        self.assertLessEqual(max(counts.values()), 2, "pids seen: %r" % pids)
        server.wait_workers(1)


class WorkerTimeout(AlicornTestCase):
    def test_stuck_worker_is_killed_and_replaced(self):
        server = self.start_server("slow:app", ["--timeout", "2"], workers=1)
        [stuck] = server.wait_workers(1)
        started = time.monotonic()
        try:
            status, _, body, _ = self.get(server, "/?s=30", timeout=20)
        except Exception:
            status, body = None, b""
        elapsed = time.monotonic() - started
        self.assertFalse(status == 200 and body.startswith(b"slept"),
                         "the request outlived --timeout 2\n" + server.describe())
        self.assertLess(elapsed, 15, "the stuck worker was not killed in time\n"
                        + server.describe())
        [fresh] = server.wait_workers(1, exclude=[stuck])
        status, _, body, _ = self.get(server, "/?s=0")
        self.assertEqual((status, body), (200, b"slept %d" % fresh))

    def test_busy_worker_below_timeout_is_not_killed(self):
        server = self.start_server("slow:app", ["--timeout", "5"], workers=1)
        [worker] = server.wait_workers(1)
        status, _, body, _ = self.get(server, "/?s=1")
        self.assertEqual((status, body), (200, b"slept %d" % worker), server.describe())
        self.assertEqual(server.workers(), [worker])


if __name__ == "__main__":
    unittest.main()
