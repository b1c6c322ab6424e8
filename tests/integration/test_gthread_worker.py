"""The gthread worker class (-k gthread --threads N): a thread pool per worker process with
keep-alive connections watched by one poller thread.

Real binary, real sockets, bounded waits. The app is apps/gthread_app.py.
"""

import hashlib
import http.client
import json
import os
import select
import signal
import socket
import threading
import time
import unittest

from harness import (EXIT_TIMEOUT, REQUEST_TIMEOUT, AlicornTestCase, can_connect, http_request,
                     pid_alive)

APP = "gthread_app:app"


class RawConn:
    """One client connection with its own read buffer, so that several responses (pipelined,
    or kept alive) can be parsed off the same socket in order."""

    def __init__(self, address, timeout=REQUEST_TIMEOUT):
        if isinstance(address, str):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(address)
        else:
            self.sock = socket.create_connection(address, timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        self.eof = False

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def request(self, method="GET", path="/info", headers=(), body=b""):
        head = "%s %s HTTP/1.1\r\nHost: test\r\n" % (method, path)
        for name, value in headers:
            head += "%s: %s\r\n" % (name, value)
        if body:
            head += "Content-Length: %d\r\n" % len(body)
        self.send(head.encode("latin-1") + b"\r\n" + body)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("no response within %ss" % self.timeout)
        self.sock.settimeout(left)
        data = self.sock.recv(65536)
        if not data:
            self.eof = True
            raise EOFError("the server closed the connection")
        self.buf += data

    def _line(self, deadline):
        while b"\n" not in self.buf:
            self._fill(deadline)
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def _exact(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, method="GET"):
        """(status, headers with lower-case names, body). A 1xx response has an empty body."""
        deadline = time.monotonic() + self.timeout
        parts = self._line(deadline).decode("latin-1").rstrip("\r\n").split(" ", 2)
        status = int(parts[1])
        headers = {}
        while True:
            line = self._line(deadline)
            if line in (b"\r\n", b"\n"):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if status < 200 or status in (204, 304) or method == "HEAD":
            return status, headers, b""
        if "content-length" in headers:
            return status, headers, self._exact(int(headers["content-length"]), deadline)
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self._line(deadline).split(b";")[0].strip(), 16)
                if size == 0:
                    while self._line(deadline) not in (b"\r\n", b"\n"):
                        pass
                    return status, headers, body
                body += self._exact(size, deadline)
                self._exact(2, deadline)
        try:
            while True:
                self._fill(deadline)
        except EOFError:
            body, self.buf = self.buf, b""
            return status, headers, body

    def readable(self, timeout):
        """True if bytes (or EOF) arrive within timeout."""
        if self.buf or self.eof:
            return True
        ready, _, _ = select.select([self.sock], [], [], timeout)
        return bool(ready)

    def wait_closed(self, timeout):
        """Seconds until the server closed the connection (EOF or reset), or None if it is
        still open after timeout."""
        started = time.monotonic()
        if self.buf:
            raise AssertionError("unexpected bytes while waiting for close: %r" % self.buf)
        if not self.eof:
            if not self.readable(timeout):
                return None
            try:
                data = self.sock.recv(1)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            if data:
                raise AssertionError("unexpected bytes while waiting for close: %r" % data)
            self.eof = True
        return time.monotonic() - started


def json_body(body):
    return json.loads(body)


class GthreadTestCase(AlicornTestCase):
    def start(self, args=(), threads=4, workers=1, **kw):
        return self.start_server(APP, ["-k", "gthread", "--threads", str(threads)] + list(args),
                                 workers=workers, **kw)

    def conn(self, server, timeout=REQUEST_TIMEOUT):
        c = RawConn(server.address, timeout)
        self.addCleanup(c.close)
        return c

    def get_info(self, server, path="/info", **kw):
        return self.get_json(server, path, **kw)


class Concurrency(GthreadTestCase):
    def test_requests_run_concurrently_on_threads(self):
        # One process, 4 threads, 4 requests sleeping 0.5 s each: about 0.5 s, not 2 s.
        server = self.start(threads=4)
        results = []
        lock = threading.Lock()

        def one():
            try:
                status, _, body, _ = http_request(server.address, path="/sleep?s=0.5", timeout=10)
                with lock:
                    results.append((status, json_body(body)))
            except Exception as exc:  # reported below
                with lock:
                    results.append((exc, None))

        threads = [threading.Thread(target=one, daemon=True) for _ in range(4)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        elapsed = time.monotonic() - started
        self.assertEqual([r[0] for r in results], [200] * 4, server.describe())
        docs = [r[1] for r in results]
        self.assertEqual(len({d["pid"] for d in docs}), 1, docs)
        self.assertEqual(len({d["thread"] for d in docs}), 4, "not 4 distinct threads: %r" % docs)
        # Concurrency as a fact, not a timing: every request began before any of them ended.
        self.assertLess(max(d["began"] for d in docs), min(d["ended"] for d in docs),
                        "the 4 requests did not overlap (%.2fs in all): %r" % (elapsed, docs))

    def test_cpu_bound_request_does_not_hold_the_others(self):
        # A request computing for 3 s (the GIL held, its thread always running) must not keep
        # a quick request on another connection waiting until it ends: another thread takes it
        # and gets the GIL at Python's next switch.
        server = self.start(threads=2)
        spin = {}

        def long_one():
            try:
                status, _, body, _ = http_request(server.address, path="/spin?s=3", timeout=20)
                spin.update(status=status, doc=json_body(body))
            except Exception as exc:  # reported below
                spin.update(status=exc)

        t = threading.Thread(target=long_one, daemon=True)
        t.start()
        # The spin has begun once its connection is in; then ask for a quick answer.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not t.is_alive():
            time.sleep(0.01)
        time.sleep(0.3)
        status, _, body, _ = http_request(server.address, path="/info", timeout=20)
        answered = time.monotonic()
        t.join(30)
        self.assertEqual(status, 200, server.describe())
        self.assertEqual(spin.get("status"), 200, "%r\n%s" % (spin, server.describe()))
        self.assertLess(answered, spin["doc"]["ended"],
                        "the quick request waited for the 3 s computation to end")
        self.assertNotEqual(json_body(body)["thread"], spin["doc"]["thread"])

    def test_multithread_in_environ(self):
        server = self.start(threads=4)
        doc = self.get_info(server)
        self.assertIs(doc["multithread"], True, doc)
        self.assertIs(doc["multiprocess"], False, doc)

    def test_slow_client_does_not_hold_the_only_thread(self):
        # A client trickling its request waits in the poller, not in a thread: with one thread
        # another client is still served meanwhile.
        server = self.start(threads=1)
        slow = self.conn(server)
        slow.send(b"GET /info/slow HTTP/1.1\r\nHost: test\r\n")
        time.sleep(0.3)
        for _ in range(3):
            started = time.monotonic()
            doc = self.get_info(server, "/info/fast")
            self.assertEqual(doc["path"], "/info/fast")
            # Generous: the point is "served while the trickler waits", not a speed.
            self.assertLess(time.monotonic() - started, 10.0)
        slow.send(b"X-Late: yes\r\n\r\n")
        status, _, body = slow.read_response()
        self.assertEqual(status, 200, server.describe())
        self.assertEqual(json_body(body)["path"], "/info/slow")


class KeepAlive(GthreadTestCase):
    def test_keep_alive_reuses_one_connection(self):
        server = self.start(threads=2)
        conn = http.client.HTTPConnection(*server.address, timeout=REQUEST_TIMEOUT)
        self.addCleanup(conn.close)
        ports, pids = set(), set()
        for i in range(5):
            conn.request("GET", "/info/%d" % i)
            resp = conn.getresponse()
            doc = json_body(resp.read())
            self.assertEqual(resp.status, 200)
            self.assertIsNone(resp.getheader("Connection"), "response %d closes" % i)
            self.assertEqual(doc["path"], "/info/%d" % i)
            ports.add(doc["remote_port"])
            pids.add(doc["pid"])
        self.assertEqual(len(ports), 1, "the client reconnected: ports %r" % ports)
        self.assertEqual(len(pids), 1)

    def test_http10_keep_alive_on_request(self):
        server = self.start(threads=2)
        c = self.conn(server)
        for i in range(2):
            c.send(b"GET /info/%d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" % i)
            status, headers, body = c.read_response()
            self.assertEqual(status, 200)
            self.assertEqual(headers.get("connection", "").lower(), "keep-alive")
            self.assertEqual(json_body(body)["path"], "/info/%d" % i)
        c.send(b"GET /info/last HTTP/1.0\r\n\r\n")
        status, headers, _ = c.read_response()
        self.assertEqual(headers.get("connection", "").lower(), "close")
        self.assertIsNotNone(c.wait_closed(5))

    def test_pipelined_requests_answered_in_order(self):
        server = self.start(threads=4)
        c = self.conn(server)
        c.send(b"GET /info/a HTTP/1.1\r\nHost: t\r\n\r\n"
               b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
               b"GET /sleep?s=0.2 HTTP/1.1\r\nHost: t\r\n\r\n"
               b"GET /info/c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        status, headers, body = c.read_response()
        self.assertEqual((status, json_body(body)["path"]), (200, "/info/a"))
        self.assertNotIn("connection", headers)
        status, _, body = c.read_response()
        self.assertEqual((status, body), (200, b"hello"))
        status, _, body = c.read_response()
        self.assertEqual((status, json_body(body)["path"]), (200, "/sleep"))
        status, headers, body = c.read_response()
        self.assertEqual((status, json_body(body)["path"]), (200, "/info/c"))
        self.assertEqual(headers.get("connection"), "close")
        self.assertIsNotNone(c.wait_closed(5), "connection left open after Connection: close")

    def test_pipelined_request_split_across_writes(self):
        server = self.start(threads=2)
        c = self.conn(server)
        c.send(b"GET /info/1 HTTP/1.1\r\nHost: t\r\n\r\nGET /info/2 HT")
        status, _, body = c.read_response()
        self.assertEqual(json_body(body)["path"], "/info/1")
        time.sleep(0.2)
        c.send(b"TP/1.1\r\nHost: t\r\n\r\n")
        status, _, body = c.read_response()
        self.assertEqual((status, json_body(body)["path"]), (200, "/info/2"))

    def test_idle_keep_alive_connection_closed_after_timeout(self):
        server = self.start(["--keep-alive", "1"], threads=1)
        c = self.conn(server)
        c.request(path="/info")
        status, headers, _ = c.read_response()
        self.assertEqual(status, 200)
        self.assertNotIn("connection", headers)
        closed_after = c.wait_closed(6)
        self.assertIsNotNone(closed_after, "idle connection still open after 6s\n"
                             + server.describe())
        self.assertGreater(closed_after, 0.7, "closed before the keep-alive timeout")
        self.assertLess(closed_after, 2.6, "closed %.2fs after the response" % closed_after)
        # The poller closes it even while every thread is busy in the app.
        idle = self.conn(server)
        idle.request(path="/info")
        self.assertEqual(idle.read_response()[0], 200)
        busy = self.conn(server)
        busy.request(path="/sleep?s=3")
        closed_after = idle.wait_closed(6)
        self.assertIsNotNone(closed_after)
        self.assertLess(closed_after, 2.6, "closed only %.2fs after the response" % closed_after)
        self.assertEqual(busy.read_response()[0], 200)
        # A connection that keeps talking is not closed by the timer.
        c2 = self.conn(server)
        for i in range(4):
            c2.request(path="/info/%d" % i)
            self.assertEqual(c2.read_response()[0], 200)
            time.sleep(0.5)

    def test_keep_alive_zero_closes_every_connection(self):
        server = self.start(["--keep-alive", "0"], threads=2)
        c = self.conn(server)
        c.request(path="/info")
        status, headers, _ = c.read_response()
        self.assertEqual((status, headers.get("connection")), (200, "close"))
        self.assertIsNotNone(c.wait_closed(5))

    def test_streaming_response_then_next_request(self):
        server = self.start(threads=2)
        c = self.conn(server)
        c.request(path="/stream?n=50")
        status, headers, body = c.read_response()
        self.assertEqual(status, 200)
        self.assertEqual(headers.get("transfer-encoding"), "chunked")
        self.assertEqual(body, b"".join(b"chunk %d\n" % i for i in range(50)))
        c.request(path="/info/after")
        status, _, body = c.read_response()
        self.assertEqual((status, json_body(body)["path"]), (200, "/info/after"))


class Requests(GthreadTestCase):
    def test_post_body_echoed(self):
        server = self.start(threads=2)
        body = os.urandom(300000)
        status, _, data, _ = self.get(server, "/echo", method="POST", body=body)
        self.assertEqual(status, 200, server.describe())
        self.assertEqual(hashlib.sha256(data).hexdigest(), hashlib.sha256(body).hexdigest())
        status, _, data, _ = self.get(server, "/echo", method="POST", body=b"payload-123")
        self.assertEqual((status, data), (200, b"payload-123"))

    def test_file_wrapper_sent_with_sendfile_then_keep_alive(self):
        server = self.start(threads=2)
        path = os.path.join(self.make_tmpdir(), "blob.bin")
        data = os.urandom(3 * 1024 * 1024 + 123)
        with open(path, "wb") as f:
            f.write(data)
        c = self.conn(server)
        for _ in range(2):
            c.request(path="/file?path=" + path)
            status, headers, body = c.read_response()
            self.assertEqual(status, 200, server.describe())
            self.assertEqual(len(body), len(data))
            self.assertEqual(hashlib.sha256(body).digest(), hashlib.sha256(data).digest())
        c.request(path="/info/after")
        status, _, body = c.read_response()
        self.assertEqual((status, json_body(body)["path"]), (200, "/info/after"))

    def test_thread_local_state_survives_between_requests(self):
        # One thread: the app's threading.local data is still there on the next request.
        server = self.start(threads=1)
        docs = [self.get_info(server, "/local") for _ in range(3)]
        self.assertEqual([d["n"] for d in docs], [1, 2, 3], docs)
        self.assertEqual(len({d["thread"] for d in docs}), 1)

    def test_expect_100_continue(self):
        server = self.start(threads=2)
        c = self.conn(server)
        c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n"
               b"Expect: 100-continue\r\n\r\n")
        status, _, _ = c.read_response()
        self.assertEqual(status, 100)
        c.send(b"abcdef")
        status, _, body = c.read_response()
        self.assertEqual((status, body), (200, b"abcdef"))

    def test_expect_100_continue_unread_body(self):
        # The app answers without reading the body: no 100 Continue, and the connection closes
        # (the unread body cannot be skipped safely).
        server = self.start(threads=2)
        c = self.conn(server)
        c.send(b"POST /info/noread HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n"
               b"Expect: 100-continue\r\n\r\n")
        status, headers, body = c.read_response()
        self.assertEqual((status, json_body(body)["path"]), (200, "/info/noread"))
        self.assertEqual(headers.get("connection"), "close")
        self.assertIsNotNone(c.wait_closed(5))

    def test_malformed_request_gets_400_and_close(self):
        server = self.start(threads=2)
        pid = self.get_info(server)["pid"]
        c = self.conn(server)
        c.send(b"GET /info HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n")
        status, headers, _ = c.read_response()
        self.assertEqual(status, 400)
        self.assertEqual(headers.get("connection"), "close")
        self.assertIsNotNone(c.wait_closed(5))
        # After a good request on a kept-alive connection too.
        c2 = self.conn(server)
        c2.send(b"GET /info/ok HTTP/1.1\r\nHost: t\r\n\r\nGET /x HTTP/1.1\r\nHost : t\r\n\r\n")
        self.assertEqual(c2.read_response()[0], 200)
        status, headers, _ = c2.read_response()
        self.assertEqual((status, headers.get("connection")), (400, "close"))
        self.assertIsNotNone(c2.wait_closed(5))
        # The worker keeps serving.
        for _ in range(3):
            self.assertEqual(self.get_info(server)["pid"], pid)

    def test_unix_socket(self):
        path = os.path.join(self.make_tmpdir(), "gthread.sock")
        server = self.spawn(["-b", "unix:" + path, "-w", "1", "-k", "gthread", "--threads", "2",
                             APP])
        server.wait_listening(path)
        c = RawConn(path)
        self.addCleanup(c.close)
        for i in range(2):
            c.request(path="/info/%d" % i)
            status, _, body = c.read_response()
            self.assertEqual((status, json_body(body)["path"]), (200, "/info/%d" % i))


class Limits(GthreadTestCase):
    def test_worker_connections_cap(self):
        server = self.start(["--worker-connections", "2", "--keep-alive", "30"], threads=4)
        first, second = self.conn(server), self.conn(server)
        for c in (first, second):
            c.request(path="/info")
            self.assertEqual(c.read_response()[0], 200)
        # Two connections open: the worker stops accepting; a third waits in the backlog.
        third = self.conn(server)
        third.request(path="/info/third")
        self.assertFalse(third.readable(1.0), "a third connection was served at cap 2")
        # One closes: the third is accepted and answered.
        first.close()
        status, _, body = third.read_response()
        self.assertEqual((status, json_body(body)["path"]), (200, "/info/third"))
        second.request(path="/info/second")
        self.assertEqual(second.read_response()[0], 200)

    def test_request_read_timeout_and_heartbeat(self):
        # --timeout 2: a client that never finishes its request (or never sends a byte) is
        # dropped after about 2 s, while the idle worker keeps beating and is not killed.
        server = self.start(["--timeout", "2"], threads=1)
        pids = server.workers()
        partial, silent = self.conn(server), self.conn(server)
        partial.send(b"GET /info HTTP/1.1\r\nHost: t\r\n")
        for c in (partial, silent):
            closed_after = c.wait_closed(8)
            self.assertIsNotNone(closed_after, "stalled client still connected after 8s")
        # The same budget applies while the app reads the body from the socket: the only
        # thread is not held for ever by a client that stalls mid-body.
        body_staller = self.conn(server)
        body_staller.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n"
                          b"0123456789")
        started = time.monotonic()
        try:
            status = body_staller.read_response()[0]
        except EOFError:
            status = None
        self.assertIn(status, (None, 400, 408, 500), server.describe())
        self.assertLess(time.monotonic() - started, 8)
        time.sleep(1.5)
        self.assertEqual(server.workers(), pids, "worker replaced: heartbeat missing?\n"
                         + server.describe())
        self.assertNotIn("WORKER TIMEOUT", server.log())
        self.assertEqual(self.get_info(server)["pid"], pids[0])

    def test_max_requests_restarts_the_worker(self):
        server = self.start(["--max-requests", "3"], threads=2)
        old = server.workers()
        c = self.conn(server)
        for i in range(3):
            c.request(path="/info/%d" % i)
            status, headers, _ = c.read_response()
            self.assertEqual(status, 200)
        self.assertEqual(headers.get("connection"), "close", "last request before restart")
        self.assertIsNotNone(c.wait_closed(5))
        self.assertTrue(server.workers_gone(old, 10), server.describe())
        new = server.wait_workers(1, exclude=old)
        self.assertEqual(self.get_info(server)["pid"], new[0])


class Signals(GthreadTestCase):
    def test_graceful_term_finishes_in_flight_request(self):
        server = self.start(threads=2)
        idle = self.conn(server)
        idle.request(path="/info")
        self.assertEqual(idle.read_response()[0], 200)
        racer = self.conn(server)
        racer.request(path="/info")
        self.assertEqual(racer.read_response()[0], 200)
        busy = self.conn(server)
        busy.request(path="/sleep?s=1.5")
        time.sleep(0.5)  # the slow request is in the app now
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        # A request racing the stop on a kept-alive connection is answered, not reset.
        racer.request(path="/info/racer")
        status, headers, body = racer.read_response()
        self.assertEqual((status, json_body(body)["path"]), (200, "/info/racer"))
        if headers.get("connection") != "close":
            # The request reached the worker before the TERM did (the master forwards it): it
            # was served as usual, and the connection still closes with the stop.
            self.assertIsNotNone(racer.wait_closed(5), "racer connection kept open during stop")
        # The idle keep-alive connection is closed at once, not after the keep-alive timeout.
        self.assertIsNotNone(idle.wait_closed(1.5), "idle connection kept open during stop")
        status, headers, body = busy.read_response()
        self.assertEqual(status, 200, server.describe())
        self.assertEqual(headers.get("connection"), "close")
        self.assertGreater(json_body(body)["slept"], 1.4)
        code = server.wait_exit(EXIT_TIMEOUT)
        self.assertEqual(code, 0, server.describe())
        self.assertLess(time.monotonic() - started, 6.0, "graceful stop waited too long")
        self.assertFalse(can_connect(server.address))

    def test_graceful_timeout_bounds_a_stuck_request(self):
        server = self.start(["--graceful-timeout", "2"], threads=2)
        workers = server.workers()
        busy = self.conn(server)
        busy.request(path="/sleep?s=30")
        time.sleep(0.5)
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        server.wait_exit(EXIT_TIMEOUT)
        self.assertLess(time.monotonic() - started, 6.0, server.describe())
        self.assertTrue(server.workers_gone(workers, 5))

    def test_fast_stop_with_idle_connections(self):
        server = self.start(threads=2, workers=2)
        conns = []
        for _ in range(4):
            c = self.conn(server)
            c.request(path="/info")
            self.assertEqual(c.read_response()[0], 200)
            conns.append(c)
        workers = server.workers()
        started = time.monotonic()
        server.signal(signal.SIGINT)
        code = server.wait_exit(EXIT_TIMEOUT)
        self.assertEqual(code, 0, server.describe())
        self.assertLess(time.monotonic() - started, 5.0)
        self.assertFalse(any(pid_alive(p) for p in workers))
        for c in conns:
            self.assertIsNotNone(c.wait_closed(2))


if __name__ == "__main__":
    unittest.main()
