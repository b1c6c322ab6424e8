"""Resource limits: a worker out of file descriptors (accept() fails with EMFILE while clients
wait in the listen queue) must neither crash nor spin on the still-readable listener. It logs the
failure at most once a second, stops accepting for a moment, and serves again once descriptors
are free. Checked on each worker class (sync, gthread, uv).

The worker's RLIMIT_NOFILE is lowered with prlimit(2) to what it has open (plus a few for the
classes that hold many connections), then more idle connections than that are opened. "Does not
spin" is measured as the worker's CPU time from /proc/PID/stat over a couple of seconds, with a
generous bound (less than half of the elapsed time; a spinning worker uses all of it)."""

import os
import re
import resource
import socket
import time
import unittest

from harness import AlicornTestCase

CLK_TCK = os.sysconf("SC_CLK_TCK")
EMFILE_RE = r"accept\(\) failed: Too many open files"
IDLE_CLIENTS = 40
WINDOW = 2.0  # seconds of CPU measurement


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class OutOfDescriptors:
    worker_class = None
    # Descriptors left free under the limit: sync holds one connection at a time, so it is
    # given none (every accept fails); gthread and uv accept a few, then run out.
    slack = 0

    def test_emfile_no_spin_logged_then_serves_again(self):
        server = self.start_server("hello:app", ["-k", self.worker_class, "--timeout", "60"])
        self.assertServesHello(server)  # lazy set-up (imports, epoll, ...) done before the limit
        worker = server.workers()[0]
        soft, hard = resource.prlimit(worker, resource.RLIMIT_NOFILE)
        limit = open_fds(worker) + self.slack
        resource.prlimit(worker, resource.RLIMIT_NOFILE, (limit, hard))

        clients = []
        try:
            for _ in range(IDLE_CLIENTS):  # the kernel completes these; they wait in the backlog
                clients.append(socket.create_connection(server.address, timeout=5))
            server.wait_log(EMFILE_RE)
            lines_before = len(re.findall(EMFILE_RE, server.log()))
            wall0, cpu0 = time.monotonic(), cpu_seconds(worker)
            time.sleep(WINDOW)
            wall1, cpu1 = time.monotonic(), cpu_seconds(worker)
            elapsed = wall1 - wall0
            self.assertLess(cpu1 - cpu0, 0.5 * elapsed,
                            "worker used %.2f s of CPU in %.2f s out of descriptors (spinning?)\n%s"
                            % (cpu1 - cpu0, elapsed, server.describe()))
            # At most one line a second (plus one for the window's edges).
            lines = len(re.findall(EMFILE_RE, server.log())) - lines_before
            self.assertLessEqual(lines, int(elapsed) + 2, server.describe())
            self.assertIn(worker, server.workers(), "the worker died\n" + server.describe())
        finally:
            for c in clients:
                c.close()
        if self.slack == 0:
            # Nothing of the sync worker's own is left to close: give the descriptors back.
            resource.prlimit(worker, resource.RLIMIT_NOFILE, (soft, hard))
        # The load is gone: the queued (now closed) connections are drained and new requests
        # are answered, by the same worker.
        for _ in range(3):
            self.assertServesHello(server)
        self.assertEqual(server.workers(), [worker], server.describe())


class SyncOutOfDescriptors(OutOfDescriptors, AlicornTestCase):
    worker_class = "sync"


class GthreadOutOfDescriptors(OutOfDescriptors, AlicornTestCase):
    worker_class = "gthread"
    slack = 5


class UvOutOfDescriptors(OutOfDescriptors, AlicornTestCase):
    worker_class = "uv"
    slack = 5


if __name__ == "__main__":
    unittest.main()
