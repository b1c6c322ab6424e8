"""The uv worker class (-k uv) under large and many transfers: 100 MB uploads (spooled by the
host) and downloads (a slow then fast reader of a generator, and a file sent with sendfile(2)
through wsgi.file_wrapper) with the worker's memory staying bounded, the iterable's close() when
the client goes away mid-response, 1,000 concurrent connections in one worker, and a client that
trickles its headers being dropped by the request timeout while others keep being served.

Memory is the worker's VmRSS, sampled every few milliseconds while the transfer runs and compared
with its RSS once it served one small request."""

import hashlib
import os
import resource
import select
import selectors
import socket
import sys
import threading
import time
import unittest

from harness import APPS_DIR, AlicornTestCase, wait_for

sys.path.insert(0, APPS_DIR)
import uv_large_app  # noqa: E402  (the app's block(i), to know what /download sends)

APP = "uv_large_app:app"
MB = 1024 * 1024
BIG = 100 * MB
RSS_BOUND_KB = 60 * 1024  # growth allowed above the idle worker's RSS
TRANSFER_TIMEOUT = 60.0   # one 100 MB transfer on a loaded machine


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def syscr(pid):
    """Read-type system calls made by pid so far (/proc/<pid>/io), or None if unreadable."""
    try:
        with open("/proc/%d/io" % pid) as f:
            for line in f:
                if line.startswith("syscr:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def worker_sockets(pid):
    """How many sockets pid has open."""
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n


class RssSampler:
    """Samples a process' VmRSS in a thread while the with-block runs; .peak is the maximum."""

    def __init__(self, pid, interval=0.01):
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_kb(self.pid))
                self.samples += 1
            except (OSError, AssertionError):
                return
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
        return False


class Client:
    """A blocking HTTP/1.1 client socket that reads a response head, then its body into a sink
    without keeping it."""

    def __init__(self, address, timeout=TRANSFER_TIMEOUT):
        self.sock = socket.create_connection(address, timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("the server closed the connection before the head: %r" % self.buf)
            self.buf += data
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(lines[0].split(" ", 2)[1]), headers

    def read_body(self, length, sink, recv_size=MB):
        """Feed exactly `length` body bytes to sink."""
        left = length
        if self.buf:
            take, self.buf = self.buf[:left], self.buf[left:]
            sink(take)
            left -= len(take)
        while left > 0:
            data = self.sock.recv(min(recv_size, left))
            if not data:
                raise EOFError("the server closed the connection after %d of %d body bytes"
                               % (length - left, length))
            sink(data)
            left -= len(data)


def stamped_blocks(count, size=MB):
    """count pseudo-random blocks of `size` bytes, each stamped with its index (so a lost,
    repeated or reordered block changes the hash)."""
    base = os.urandom(size)
    for i in range(count):
        yield i.to_bytes(8, "big") + base[8:]


class UvLargeTransferTest(AlicornTestCase):

    def start_uv(self, args=(), **kw):
        server = self.start_server(APP, ["-k", "uv"] + list(args), **kw)
        (worker,) = server.workers()
        status, _, body, _ = self.get(server)  # the app is warm: this is the idle RSS
        self.assertEqual((status, body), (200, b"Hello, World!"))
        return server, worker, rss_kb(worker)

    def assertBoundedRss(self, server, sampler, idle_kb, what):
        self.assertGreater(sampler.samples, 0, "RSS never sampled during " + what)
        growth = sampler.peak - idle_kb
        self.assertLess(growth, RSS_BOUND_KB,
                        "%s: worker RSS grew by %d KB (idle %d KB, peak %d KB)\n%s"
                        % (what, growth, idle_kb, sampler.peak, server.describe()))

    # -- uploads -------------------------------------------------------------------------------
    def test_upload_100mb_streamed_in_chunks(self):
        server, worker, idle = self.start_uv()
        client = Client(server.address)
        self.addCleanup(client.close)
        expected = hashlib.sha256()
        with RssSampler(worker) as sampler:
            client.sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\n"
                                b"Content-Type: application/octet-stream\r\n"
                                b"Content-Length: %d\r\n\r\n" % BIG)
            for block in stamped_blocks(BIG // MB):
                expected.update(block)
                client.sock.sendall(block)
            status, headers = client.read_head()
            body = []
            client.read_body(int(headers["content-length"]), body.append)
        self.assertEqual(status, 200, server.describe())
        self.assertEqual(b"".join(body).decode(), "%s %d" % (expected.hexdigest(), BIG))
        self.assertBoundedRss(server, sampler, idle, "a 100 MB upload")

    # -- downloads -----------------------------------------------------------------------------
    def test_download_100mb_generator_slow_then_fast_reader(self):
        n = BIG // uv_large_app.CHUNK
        expected = hashlib.sha256()
        for i in range(n):
            expected.update(uv_large_app.block(i))
        server, worker, idle = self.start_uv()
        client = Client(server.address)
        self.addCleanup(client.close)
        got = hashlib.sha256()
        received = 0

        def sink(data):
            nonlocal received
            got.update(data)
            received += len(data)

        with RssSampler(worker) as slow:
            client.sock.sendall(b"GET /download?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % n)
            status, headers = client.read_head()
            self.assertEqual(status, 200, server.describe())
            self.assertEqual(headers.get("content-length"), str(BIG))
            # A slow reader first: 16 KB every 50 ms for 2 s. The worker must not run ahead
            # of it by more than its socket buffers.
            deadline = time.monotonic() + 2.0
            sink(client.buf)
            client.buf = b""
            while time.monotonic() < deadline:
                data = client.sock.recv(16384)
                self.assertTrue(data, "the server closed the connection early")
                sink(data)
                time.sleep(0.05)
        self.assertLess(received, BIG // 2, "the slow phase read most of the body")
        self.assertBoundedRss(server, slow, idle, "a slowly read 100 MB stream")
        with RssSampler(worker) as fast:
            client.read_body(BIG - received, sink)
        self.assertEqual(received, BIG)
        self.assertEqual(got.hexdigest(), expected.hexdigest(), "the streamed body differs")
        self.assertBoundedRss(server, fast, idle, "a 100 MB stream read at full speed")
        # The connection is still usable (keep-alive after a complete response).
        client.sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers = client.read_head()
        body = []
        client.read_body(int(headers["content-length"]), body.append)
        self.assertEqual((status, b"".join(body)), (200, b"Hello, World!"))

    def test_file_wrapper_100mb_sent_with_sendfile(self):
        path = os.path.join(self.make_tmpdir(), "big.bin")
        expected = hashlib.sha256()
        with open(path, "wb") as f:
            for block in stamped_blocks(BIG // MB):
                expected.update(block)
                f.write(block)
        server, worker, idle = self.start_uv()
        reads_before = syscr(worker)
        for attempt in ("fast", "slow start"):
            client = Client(server.address)
            self.addCleanup(client.close)
            got = hashlib.sha256()
            received = 0

            def sink(data):
                nonlocal received
                got.update(data)
                received += len(data)

            with RssSampler(worker) as sampler:
                client.sock.sendall(b"GET /file?path=%s HTTP/1.1\r\nHost: x\r\n\r\n"
                                    % path.encode())
                status, headers = client.read_head()
                self.assertEqual(status, 200, server.describe())
                self.assertEqual(headers.get("content-length"), str(BIG))
                if attempt == "slow start":  # the socket fills up: sendfile meets EAGAIN
                    sink(client.buf)
                    client.buf = b""
                    for _ in range(10):
                        time.sleep(0.05)
                        sink(client.sock.recv(65536))
                client.read_body(BIG - received, sink)
            self.assertEqual(received, BIG)
            self.assertEqual(got.hexdigest(), expected.hexdigest(),
                             "the file arrived changed (%s reader)" % attempt)
            self.assertBoundedRss(server, sampler, idle, "a 100 MB file (%s reader)" % attempt)
            client.close()
        reads_after = syscr(worker)
        if reads_before is not None and reads_after is not None:
            # Reading the file in 64 KB blocks would take 1,600 reads per response; sendfile
            # takes a few hundred calls (each counted as a read) plus the odd 64 KB pread when
            # the socket is full.
            self.assertLess(reads_after - reads_before, BIG // uv_large_app.CHUNK,
                            "the worker read the file instead of sending it with sendfile")

    # -- clients going away --------------------------------------------------------------------
    def test_client_gone_mid_response_closes_the_iterable(self):
        tmp = self.make_tmpdir()
        marker = os.path.join(tmp, "marker")
        path = os.path.join(tmp, "sparse.bin")
        with open(path, "wb") as f:
            f.truncate(64 * MB)  # bigger than every socket buffer on the way
        server, worker, _ = self.start_uv(["-e", "MARKER=" + marker])

        def marks():
            try:
                with open(marker) as f:
                    return f.read().split()
            except FileNotFoundError:
                return []

        for target, mark in (("/endless", "endless"), ("/file-marked?path=" + path, "file")):
            client = Client(server.address, timeout=10)
            self.addCleanup(client.close)
            client.sock.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target.encode())
            status, _ = client.read_head()
            self.assertEqual(status, 200, server.describe())
            got = len(client.buf)
            while got < MB:
                data = client.sock.recv(65536)
                self.assertTrue(data, "the server closed the connection early")
                got += len(data)
            self.assertNotIn(mark, marks(), "close() ran before the client went away")
            client.close()  # unread data: the kernel sends a reset
            self.assertTrue(wait_for(lambda: mark in marks(), 10),
                            "%s: the iterable's close() was not called after the client went "
                            "away\n%s" % (target, server.describe()))
        self.assertEqual(sorted(marks()), ["endless", "file"], "close() called more than once")
        self.assertEqual(server.workers(), [worker], "the worker did not survive\n"
                         + server.describe())
        status, _, body, _ = self.get(server)
        self.assertEqual((status, body), (200, b"Hello, World!"))

    def test_stalled_reader_of_a_file_dropped_by_write_timeout(self):
        tmp = self.make_tmpdir()
        marker = os.path.join(tmp, "marker")
        path = os.path.join(tmp, "sparse.bin")
        with open(path, "wb") as f:
            f.truncate(64 * MB)
        server, worker, _ = self.start_uv(["--timeout", "2", "-e", "MARKER=" + marker])
        client = Client(server.address, timeout=10)
        self.addCleanup(client.close)
        client.sock.sendall(b"GET /file-marked?path=%s HTTP/1.1\r\nHost: x\r\n\r\n"
                            % path.encode())
        status, _ = client.read_head()
        self.assertEqual(status, 200, server.describe())
        start = time.monotonic()  # the client reads nothing more: the socket fills up
        self.assertTrue(wait_for(lambda: os.path.exists(marker), 10),
                        "the stalled reader was never dropped\n" + server.describe())
        waited = time.monotonic() - start
        self.assertGreaterEqual(waited, 1.5, "dropped before the write timeout")
        self.assertLess(waited, 6.0, "dropped long after the write timeout")
        # What reached the client's buffer is there, then the connection ends short of 64 MB.
        received = len(client.buf)
        try:
            while True:
                data = client.sock.recv(MB)
                if not data:
                    break
                received += len(data)
        except ConnectionResetError:
            pass
        self.assertLess(received, 64 * MB)
        self.assertEqual(server.workers(), [worker], "the worker was replaced\n"
                         + server.describe())
        status, _, body, _ = self.get(server)
        self.assertEqual((status, body), (200, b"Hello, World!"))

    # -- many connections ----------------------------------------------------------------------
    def test_1000_concurrent_connections(self):
        count = 1000
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 4096
        if hard != resource.RLIM_INFINITY and hard < 2 * count + 200:
            self.skipTest("RLIMIT_NOFILE hard limit %d is too low for %d connections"
                          % (hard, count))
        if soft == resource.RLIM_INFINITY or soft < want:
            new_soft = want if hard == resource.RLIM_INFINITY else min(want, hard)
            # The server started below inherits it (fork + exec keep rlimits).
            resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        server, worker, _ = self.start_uv(["--worker-connections", "1200", "--keep-alive", "60",
                                           "--backlog", "2048"])
        request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        sel = selectors.DefaultSelector()
        socks = []
        self.addCleanup(lambda: [s.close() for s in socks])
        self.addCleanup(sel.close)
        states = []
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            socks.append(s)
            err = s.connect_ex(server.address)
            self.assertIn(err, (0, 115), os.strerror(err))  # EINPROGRESS
            st = {"sock": s, "out": request, "in": b"", "error": None, "done": False}
            states.append(st)
            sel.register(s, selectors.EVENT_WRITE, st)
        pending = count
        deadline = time.monotonic() + 40
        while pending and time.monotonic() < deadline:
            for key, events in sel.select(timeout=0.5):
                st, s = key.data, key.fileobj
                try:
                    if events & selectors.EVENT_WRITE:
                        n = s.send(st["out"])
                        st["out"] = st["out"][n:]
                        if not st["out"]:
                            sel.modify(s, selectors.EVENT_READ, st)
                        continue
                    data = s.recv(65536)
                except BlockingIOError:
                    continue
                except OSError as e:
                    st["error"] = repr(e)
                    data = None
                if data:
                    st["in"] += data
                    head, sep, body = st["in"].partition(b"\r\n\r\n")
                    if not sep or len(body) < len(b"Hello, World!"):
                        continue
                    st["done"] = True
                elif st["error"] is None:
                    st["error"] = "closed by the server after %r" % st["in"]
                sel.unregister(s)
                pending -= 1
        answered = [st for st in states if st["done"]]
        errors = [st["error"] for st in states if st["error"]]
        self.assertEqual(len(answered), count,
                         "%d of %d answered, %d pending, errors: %r\n%s"
                         % (len(answered), count, pending, errors[:5], server.describe()))
        for st in answered:
            self.assertTrue(st["in"].startswith(b"HTTP/1.1 200 "), st["in"][:200])
            self.assertTrue(st["in"].endswith(b"\r\n\r\nHello, World!"), st["in"][-200:])
        # Every connection is still open on both sides: the worker holds all of them at once
        # (beside its listener), and none of ours saw an end of stream.
        sockets = worker_sockets(worker)
        self.assertGreaterEqual(sockets, count + 1, "the worker holds %d sockets" % sockets)
        for s in socks:
            with self.assertRaises(BlockingIOError, msg="a connection was closed"):
                s.recv(1)

    # -- slow clients --------------------------------------------------------------------------
    def test_trickling_headers_dropped_by_timeout_while_others_served(self):
        server, worker, _ = self.start_uv(["--timeout", "2"])
        result = {}

        def trickle():
            payload = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 100
            with socket.create_connection(server.address, timeout=5) as s:
                start = time.monotonic()
                result["start"] = start
                for i, byte in enumerate(payload):
                    try:
                        s.sendall(bytes([byte]))
                        # Wait half a second, or less if the server closes meanwhile.
                        readable, _, _ = select.select([s], [], [], 0.5)
                        if readable and not s.recv(4096):
                            raise ConnectionResetError("EOF")
                    except OSError:
                        result["dropped"] = time.monotonic() - start
                        result["sent"] = i
                        return
                    if time.monotonic() - start > 15:
                        return

        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        latencies = []
        while t.is_alive() and (not latencies or time.monotonic() - result["start"] < 15):
            t0 = time.monotonic()
            status, _, body, _ = self.get(server, timeout=5)
            latencies.append(time.monotonic() - t0)
            self.assertEqual((status, body), (200, b"Hello, World!"))
            time.sleep(0.1)
        t.join(20)
        self.assertIn("dropped", result, "the trickling client was never dropped\n"
                      + server.describe())
        self.assertGreaterEqual(result["dropped"], 1.5, "dropped before the timeout: %r" % result)
        self.assertLess(result["dropped"], 6.0, "dropped too late: %r" % result)
        self.assertGreaterEqual(len(latencies), 5, "too few requests served meanwhile")
        self.assertLess(max(latencies), 1.5, "others waited: %r" % latencies)
        self.assertEqual(server.workers(), [worker], "the worker was replaced\n"
                         + server.describe())


if __name__ == "__main__":
    unittest.main()
