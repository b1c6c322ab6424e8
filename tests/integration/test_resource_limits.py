"""Resource limits.

Out of descriptors: a worker out of file descriptors (accept() fails with EMFILE while clients
wait in the listen queue) must neither crash nor spin on the still-readable listener. It logs the
failure at most once a second, stops accepting for a moment, and serves again once descriptors
are free. Checked on each worker class (sync, gthread, uv).

The worker's RLIMIT_NOFILE is lowered with prlimit(2) to what it has open (plus a few for the
classes that hold many connections), then more idle connections than that are opened. "Does not
spin" is measured as the worker's CPU time from /proc/PID/stat over a couple of seconds, with a
generous bound (less than half of the elapsed time; a spinning worker uses all of it).

Disk full: a request body over the spool threshold (1 MiB) that a worker class keeps whole before
the app runs (uv) goes to an unlinked file in $TMPDIR. When that folder is full (a 1 MiB tmpfs,
mounted here when the test runs as root) or missing, the client gets a 500, the log says why, and
the worker goes on serving. The blocking classes (sync, gthread) hand the body to the app as it
arrives and never write it to disk, so a full $TMPDIR does not concern them.

Run one: /usr/bin/python3 -m unittest test_resource_limits.UvDiskFull"""

import hashlib
import json
import os
import re
import resource
import socket
import subprocess
import time
import unittest

from harness import AlicornTestCase, http_request, wait_for

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
        # What the worker holds at rest (the last request's socket may still be closing).
        held = []
        for _ in range(6):
            held.append(open_fds(worker))
            time.sleep(0.05)
        limit = min(held) + self.slack
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


BIG = 3 * 1024 * 1024  # over the 1 MiB spool threshold and the 1 MiB tmpfs
SPOOL_FAIL_RE = r"\[ERROR\] Request \"POST /up HTTP/1.1\" from ip=\S+ failed: cannot store the request body in %s: %s \(500\)"


def chunked(data, piece=64 * 1024):
    out = b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + piece]), data[i:i + piece])
                   for i in range(0, len(data), piece))
    return out + b"0\r\n\r\n"


class SpoolFailure:
    worker_class = None
    spools = False  # whether this class stores a big body before the app runs

    def tiny_tmpfs(self):
        """A 1 MiB tmpfs, unmounted at cleanup; skips the test when it cannot be mounted."""
        path = self.make_tmpdir()
        if os.geteuid() != 0:
            self.skipTest("mounting a 1 MiB tmpfs needs root")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", path],
                           capture_output=True, text=True)
        if r.returncode != 0:
            self.skipTest("cannot mount a tmpfs: %s" % (r.stderr.strip() or r.returncode))
        self.addCleanup(subprocess.run, ["umount", "-l", path], capture_output=True)
        return path

    def post(self, server, body, headers=None):
        return http_request(server.address, method="POST", path="/up", body=body,
                            headers=headers or {}, timeout=30)

    def check(self, tmpdir, why):
        server = self.start_server("echo:app", ["-k", self.worker_class],
                                   env={"TMPDIR": tmpdir})
        worker = server.workers()[0]
        data = os.urandom(BIG)
        for headers, body in (({}, data), ({"Transfer-Encoding": "chunked"}, chunked(data))):
            status, _, reply, _ = self.post(server, body, headers)
            if self.spools:
                self.assertEqual(status, 500, server.describe())
                self.assertNotIn(why.encode(), reply)  # the reason is for the log, not the client
            else:
                self.assertEqual(status, 200, server.describe())
                self.assertEqual(json.loads(reply)["body_sha256"], hashlib.sha256(data).hexdigest())
        if self.spools:
            server.wait_log(SPOOL_FAIL_RE % (re.escape(tmpdir), why), count=2)
        # The worker goes on: small bodies (kept in memory) and plain requests are served.
        status, _, reply, _ = self.post(server, b"x" * 1000)
        self.assertEqual(status, 200, server.describe())
        self.assertEqual(json.loads(reply)["body_length"], 1000)
        status, _, reply, _ = self.get(server, "/after")
        self.assertEqual((status, json.loads(reply)["PATH_INFO"]), (200, "/after"))
        self.assertEqual(server.workers(), [worker], server.describe())
        return server

    def test_disk_full(self):
        tmpdir = self.tiny_tmpfs()
        self.check(tmpdir, "No space left on device")
        # The spooled part was an unlinked file, freed with the request (the worker closes it
        # just after the response, which the client may see first): the tmpfs empties.
        def empty():
            st = os.statvfs(tmpdir)
            return st.f_bfree == st.f_blocks
        self.assertTrue(wait_for(empty, 10), "the spool file was not freed: %r"
                        % (os.statvfs(tmpdir),))

    def test_spool_folder_missing(self):
        tmpdir = os.path.join(self.make_tmpdir(), "gone")
        self.check(tmpdir, "No such file or directory")


class SyncSpoolFailure(SpoolFailure, AlicornTestCase):
    worker_class = "sync"


class GthreadSpoolFailure(SpoolFailure, AlicornTestCase):
    worker_class = "gthread"


class UvSpoolFailure(SpoolFailure, AlicornTestCase):
    worker_class = "uv"
    spools = True


if __name__ == "__main__":
    unittest.main()
