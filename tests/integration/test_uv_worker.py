"""The uv worker class (-k uv): one libuv event loop per worker, many connections at once,
keep-alive and pipelining, timeouts, the worker_connections cap, backpressure on streamed
responses, and Gunicorn's signal contract (TERM lets in-flight requests finish)."""

import http.client
import os
import signal
import socket
import threading
import time
import unittest

from harness import (EXIT_TIMEOUT, REQUEST_TIMEOUT, AlicornTestCase, http_request,
                     raw_exchange, wait_for)

APP = "uv_app:app"


class RawConn:
    """A client socket that can send raw bytes and read back several HTTP/1.1 responses in
    order (Content-Length, chunked, or close-delimited bodies), for pipelining tests."""

    def __init__(self, address, timeout=REQUEST_TIMEOUT):
        if isinstance(address, str):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(address)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("server closed the connection")
        self.buf += chunk

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    def read_response(self, head_request=False):
        """(status, headers, body) of the next response."""
        status, headers = self.read_head()
        if head_request or status in (204, 304) or status < 200:
            return status, headers, b""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():  # trailers, then the empty line
                        pass
                    return status, headers, b"".join(parts)
                parts.append(self._take(size))
                self._take(2)
        if "content-length" in headers:
            return status, headers, self._take(int(headers["content-length"]))
        while True:
            try:
                self._fill()
            except EOFError:
                body, self.buf = self.buf, b""
                return status, headers, body

    def wait_closed(self, timeout):
        """True if the server closes the connection (EOF or reset) within timeout; any bytes
        received meanwhile are kept in self.buf."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    chunk = self.sock.recv(65536)
                except socket.timeout:
                    return False
                if not chunk:
                    return True
                self.buf += chunk
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        finally:
            self.sock.settimeout(REQUEST_TIMEOUT)


def get_request(path, extra=""):
    return ("GET %s HTTP/1.1\r\nHost: test\r\n%s\r\n" % (path, extra)).encode()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class UvWorker(AlicornTestCase):
    def start_uv(self, args=(), workers=1, app=APP):
        return self.start_server(app, ["-k", "uv"] + list(args), workers=workers)

    def raw(self, server, timeout=REQUEST_TIMEOUT):
        conn = RawConn(server.address, timeout)
        self.addCleanup(conn.close)
        return conn

    # -- keep-alive and pipelining --------------------------------------------------------------
    def test_keep_alive_reuses_the_connection(self):
        server = self.start_uv()
        conn = http.client.HTTPConnection(*server.address, timeout=REQUEST_TIMEOUT)
        self.addCleanup(conn.close)
        answers = set()
        for _ in range(5):
            conn.request("GET", "/peer")
            resp = conn.getresponse()
            body = resp.read()
            self.assertEqual(resp.status, 200, server.describe())
            self.assertFalse(resp.will_close, resp.getheaders())
            self.assertIsNone(resp.getheader("Connection"))
            answers.add(body)
        # One process, one client port: the same connection carried all five requests.
        self.assertEqual(len(answers), 1, answers)
        self.assertEqual(answers.pop().split()[1], str(conn.sock.getsockname()[1]).encode())

    def test_pipelined_requests_answered_in_order(self):
        server = self.start_uv()
        conn = self.raw(server)
        conn.send(get_request("/path/a") + get_request("/path/b") + get_request("/path/c"))
        bodies = [conn.read_response() for _ in range(3)]
        self.assertEqual([(s, b) for s, _, b in bodies],
                         [(200, b"/path/a"), (200, b"/path/b"), (200, b"/path/c")])
        # The connection still works afterwards.
        conn.send(get_request("/path/d", "Connection: close\r\n"))
        status, headers, body = conn.read_response()
        self.assertEqual((status, body, headers.get("connection")), (200, b"/path/d", "close"))
        self.assertTrue(conn.wait_closed(5), "no close after Connection: close")

    def test_many_pipelined_requests_with_bodies(self):
        # More than one loop turn's worth (the worker yields every 32 writes), with POST bodies
        # in between, in one write.
        server = self.start_uv()
        conn = self.raw(server)
        data = b""
        expected = []
        for i in range(100):
            if i % 10 == 5:
                body = ("body-%d" % i).encode() * 50
                data += (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n"
                         % len(body)) + body
                expected.append(body)
            else:
                data += get_request("/path/%d" % i)
                expected.append(("/path/%d" % i).encode())
        conn.send(data)
        got = [conn.read_response()[2] for _ in range(100)]
        self.assertEqual(got, expected)

    def test_pipelined_answers_survive_a_client_that_reads_late(self):
        # Small responses of one read are coalesced into one write; when the client does not
        # read, what the socket does not take waits on the heap: everything arrives, in order.
        server = self.start_uv()
        conn = self.raw(server)
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        data = b""
        expected = []
        for i in range(400):
            body = (b"%04d" % i) * 700  # 2,800 bytes: small enough to be coalesced
            data += (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n"
                     % len(body)) + body
            expected.append(body)
        sender = threading.Thread(target=conn.send, args=(data,), daemon=True)
        sender.start()
        time.sleep(0.5)  # the server fills the socket and waits
        got = [conn.read_response() for _ in range(400)]
        sender.join(REQUEST_TIMEOUT)
        self.assertEqual([s for s, _, _ in got], [200] * 400)
        self.assertEqual([b for _, _, b in got], expected)

    def test_pipelined_answers_come_before_the_error_of_a_later_request(self):
        server = self.start_uv()
        conn = self.raw(server)
        conn.send(get_request("/path/a") + get_request("/path/b") + b"NOT HTTP AT ALL\r\n\r\n")
        first = [conn.read_response() for _ in range(2)]
        self.assertEqual([(s, b) for s, _, b in first], [(200, b"/path/a"), (200, b"/path/b")])
        status, headers, _ = conn.read_response()  # the error page (501: no such method)
        self.assertGreaterEqual(status, 400)
        self.assertEqual(headers.get("connection"), "close")
        self.assertTrue(conn.wait_closed(5), "no close after the error page")

    def test_pipelined_answers_then_close(self):
        server = self.start_uv()
        conn = self.raw(server)
        conn.send(get_request("/path/a") + get_request("/path/b", "Connection: close\r\n"))
        got = [conn.read_response() for _ in range(2)]
        self.assertEqual([(s, b) for s, _, b in got], [(200, b"/path/a"), (200, b"/path/b")])
        self.assertTrue(conn.wait_closed(5), "no close after Connection: close")

    def test_idle_keep_alive_connection_is_closed(self):
        server = self.start_uv(["--keep-alive", "1"])
        conn = self.raw(server)
        conn.send(get_request("/"))
        status, _, body = conn.read_response()
        self.assertEqual((status, body), (200, b"Hello, World!"))
        started = time.monotonic()
        self.assertTrue(conn.wait_closed(6), "idle connection still open after 6 s")
        elapsed = time.monotonic() - started
        self.assertGreater(elapsed, 0.7, "closed too early (%.2fs)" % elapsed)
        self.assertEqual(conn.buf, b"")
        # A connection in use is not closed by the idle timeout.
        conn2 = self.raw(server)
        for _ in range(4):
            conn2.send(get_request("/"))
            self.assertEqual(conn2.read_response()[0], 200)
            time.sleep(0.5)

    def test_trickled_request_times_out(self):
        # The request timeout (--timeout) runs from a request's first byte: trickling bytes
        # does not extend it.
        server = self.start_uv(["--timeout", "2", "--keep-alive", "1"])
        conn = self.raw(server)
        started = time.monotonic()
        closed = False
        for ch in b"GET / HTTP/1.1\r\nHost: trickle\r\nX-Slow: " + b"a" * 40:
            try:
                conn.send(bytes([ch]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if conn.wait_closed(0.25):
                closed = True
                break
        elapsed = time.monotonic() - started
        self.assertTrue(closed, "a trickling client kept its connection for %.1fs" % elapsed)
        self.assertLess(elapsed, 6)
        self.assertServesHello(server)

    # -- bodies ---------------------------------------------------------------------------------
    def test_post_body_echoed(self):
        server = self.start_uv()
        for size in (0, 1, 5000, 300000, 3 * 1024 * 1024):
            body = os.urandom(size)
            status, _, got, _ = self.get(server, "/echo", method="POST", body=body)
            self.assertEqual(status, 200, server.describe())
            self.assertEqual(len(got), size)
            self.assertEqual(got, body)

    def test_chunked_request_body_echoed(self):
        server = self.start_uv()
        conn = http.client.HTTPConnection(*server.address, timeout=REQUEST_TIMEOUT)
        self.addCleanup(conn.close)
        parts = [b"x" * 1000, b"y" * 70000, b"z"]
        conn.request("POST", "/echo", body=iter(parts), encode_chunked=True,
                     headers={"Transfer-Encoding": "chunked"})
        resp = conn.getresponse()
        self.assertEqual((resp.status, resp.read()), (200, b"".join(parts)))

    def test_expect_100_continue(self):
        server = self.start_uv()
        conn = self.raw(server)
        body = b"q" * 100000
        conn.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body))
        status, _ = conn.read_head()
        self.assertEqual(status, 100)
        conn.send(body)
        status, _, got = conn.read_response()
        self.assertEqual((status, got), (200, body))
        conn.send(get_request("/path/after"))
        self.assertEqual(conn.read_response()[2], b"/path/after")

    # -- errors ---------------------------------------------------------------------------------
    def test_malformed_request_gets_400_and_close(self):
        server = self.start_uv()
        other = self.raw(server)  # a keep-alive client that must not be disturbed
        other.send(get_request("/path/before"))
        self.assertEqual(other.read_response()[2], b"/path/before")
        reply = raw_exchange(server.address,
                             b"GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n"
                             + get_request("/path/never"))
        self.assertTrue(reply.startswith(b"HTTP/1.1 400 "), reply)
        self.assertIn(b"Connection: close", reply)
        self.assertNotIn(b"/path/never", reply)
        reply = raw_exchange(server.address, b"\x16\x03\x01garbage\r\n\r\n")
        self.assertTrue(reply.startswith(b"HTTP/1.1 400 "), reply)
        other.send(get_request("/path/after"))
        self.assertEqual(other.read_response()[2], b"/path/after")
        self.assertServesHello(server)

    def test_response_survives_unread_client_data_on_close(self):
        # The client keeps sending after a request that ends the connection: the worker must
        # not reset the connection (which can destroy the response) but drain and close.
        server = self.start_uv()
        conn = self.raw(server)
        sent = {}

        def flood():
            try:
                conn.sock.sendall(get_request("/path/last", "Connection: close\r\n")
                                  + b"X" * (4 * 1024 * 1024))
                sent["ok"] = True
            except OSError as exc:
                sent["error"] = exc

        t = threading.Thread(target=flood, daemon=True)
        t.start()
        status, headers, body = conn.read_response()
        self.assertEqual((status, body, headers.get("connection")), (200, b"/path/last", "close"))
        t.join(REQUEST_TIMEOUT)
        self.assertEqual(sent, {"ok": True})
        self.assertTrue(conn.wait_closed(5))
        self.assertServesHello(server)

    def test_client_gone_mid_request_and_mid_response(self):
        server = self.start_uv()
        # Half a request, then gone.
        s = socket.create_connection(server.address, timeout=REQUEST_TIMEOUT)
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\nabc")
        s.close()
        # A reset in the middle of a big response.
        s = socket.create_connection(server.address, timeout=REQUEST_TIMEOUT)
        s.sendall(get_request("/stream?n=2000&size=65536"))
        s.recv(1000)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
        for _ in range(3):
            self.assertServesHello(server)
        self.assertEqual(server.workers(), server.workers())
        self.assertIsNone(server.poll())

    # -- concurrency ----------------------------------------------------------------------------
    def test_200_concurrent_connections(self):
        server = self.start_uv(workers=2)
        conns = []
        for _ in range(200):
            c = RawConn(server.address)
            self.addCleanup(c.close)
            conns.append(c)
        for c in conns:
            c.send(get_request("/peer"))
        pids = set()
        for c in conns:
            status, _, body = c.read_response()
            self.assertEqual(status, 200)
            pid, port = body.split()
            self.assertEqual(int(port), c.sock.getsockname()[1])
            pids.add(pid)
        # Every connection is still usable (keep-alive), and one asks to close.
        for i, c in enumerate(conns):
            c.send(get_request("/path/%d" % i, "Connection: close\r\n" if i % 2 else ""))
        for i, c in enumerate(conns):
            status, headers, body = c.read_response()
            self.assertEqual((status, body), (200, ("/path/%d" % i).encode()))
            if i % 2:
                self.assertEqual(headers.get("connection"), "close")
                self.assertTrue(c.wait_closed(5))

    def test_new_connections_go_round_the_workers(self):
        # Idle workers take turns (EPOLLEXCLUSIVE plus re-registering after an accept): one
        # worker does not collect every connection just because it registered first.
        server = self.start_uv(workers=2)
        pids = []
        for _ in range(20):
            status, _, body, _ = http_request(server.address, path="/peer",
                                              headers={"Connection": "close"})
            self.assertEqual(status, 200)
            pids.append(body.split()[0])
            time.sleep(0.02)
        self.assertEqual(len(set(pids)), 2, pids)

    def test_worker_connections_cap(self):
        server = self.start_uv(["--worker-connections", "2", "--keep-alive", "30"])
        c1, c2 = self.raw(server), self.raw(server)
        for c in (c1, c2):
            c.send(get_request("/"))
            self.assertEqual(c.read_response()[0], 200)
        c3 = self.raw(server)
        c3.send(get_request("/path/third"))
        c3.sock.settimeout(1.0)
        with self.assertRaises(socket.timeout, msg="a third connection was served"):
            c3.sock.recv(100)
        c3.sock.settimeout(REQUEST_TIMEOUT)
        # Still serving the two it has.
        c2.send(get_request("/path/second"))
        self.assertEqual(c2.read_response()[2], b"/path/second")
        c1.close()
        status, _, body = c3.read_response()
        self.assertEqual((status, body), (200, b"/path/third"))

    # -- streaming and backpressure -------------------------------------------------------------
    def test_streamed_response_arrives_complete(self):
        server = self.start_uv()
        conn = http.client.HTTPConnection(*server.address, timeout=REQUEST_TIMEOUT)
        self.addCleanup(conn.close)
        conn.request("GET", "/stream?n=5000&size=300")
        resp = conn.getresponse()
        self.assertEqual(resp.getheader("Transfer-Encoding"), "chunked")
        self.assertIsNone(resp.getheader("Content-Length"))
        body = resp.read()
        self.assertEqual(len(body), 5000 * 300)
        expected = b"".join(bytes([65 + i % 26]) * 300 for i in range(5000))
        self.assertEqual(body, expected)
        # Big chunks too, and the connection is reusable afterwards.
        conn.request("GET", "/stream?n=40&size=1000000")
        body = conn.getresponse().read()
        self.assertEqual(len(body), 40 * 1000000)
        conn.request("GET", "/")
        self.assertEqual(conn.getresponse().read(), b"Hello, World!")

    def test_endless_generator_is_pulled_only_as_fast_as_the_client_reads(self):
        server = self.start_uv()
        pid = server.workers()[0]
        marker = os.path.join(self.make_tmpdir(), "closed")
        before = rss_kb(pid)
        s = socket.create_connection(server.address, timeout=REQUEST_TIMEOUT)
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.sendall(get_request("/endless?size=65536&marker=" + marker))
        got = 0
        while got < 2 * 1024 * 1024:
            got += len(s.recv(65536))
        time.sleep(1.0)  # stop reading: the worker must stop pulling, not buffer the stream
        # The worker still serves others while that response is stalled.
        self.assertServesHello(server)
        growth_mb = (rss_kb(pid) - before) / 1024
        self.assertLess(growth_mb, 64, "the worker buffered a stalled stream (%d MB)" % growth_mb)
        s.close()
        self.assertTrue(wait_for(lambda: os.path.exists(marker), 5),
                        "the iterable was not closed after the client left\n" + server.describe())
        self.assertServesHello(server)

    # -- signals and lifecycle ------------------------------------------------------------------
    def test_term_lets_a_slow_request_finish(self):
        server = self.start_uv(["--graceful-timeout", "20"])
        result = {}

        def slow():
            try:
                result["r"] = http_request(server.address, path="/slow?s=2", timeout=20)
            except Exception as exc:  # reported below
                result["r"] = exc

        t = threading.Thread(target=slow, daemon=True)
        t.start()
        time.sleep(0.7)
        server.signal(signal.SIGTERM)
        t.join(20)
        r = result.get("r")
        self.assertIsInstance(r, tuple, "%r\n%s" % (r, server.describe()))
        status, headers, body, _ = r
        self.assertEqual((status, body), (200, b"slept"))
        self.assertEqual(headers.get("connection"), "close")
        self.assertEqual(server.wait_exit(EXIT_TIMEOUT), 0, server.describe())

    def test_term_closes_idle_keep_alive_connections_at_once(self):
        server = self.start_uv(["--keep-alive", "60", "--graceful-timeout", "30"])
        conns = [self.raw(server) for _ in range(3)]
        for c in conns:
            c.send(get_request("/"))
            self.assertEqual(c.read_response()[0], 200)
        idle_fresh = self.raw(server)  # connected, nothing sent
        time.sleep(0.2)
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        for c in conns + [idle_fresh]:
            self.assertTrue(c.wait_closed(5), "an idle connection was kept open on TERM")
        self.assertEqual(server.wait_exit(EXIT_TIMEOUT), 0, server.describe())
        self.assertLess(time.monotonic() - started, 10)

    def test_graceful_timeout_bounds_a_stalled_response(self):
        # A client that stops reading an endless response cannot hold the stop past
        # --graceful-timeout.
        server = self.start_uv(["--graceful-timeout", "1"])
        s = socket.create_connection(server.address, timeout=REQUEST_TIMEOUT)
        self.addCleanup(s.close)
        s.sendall(get_request("/endless?size=65536"))
        s.recv(65536)
        time.sleep(0.5)
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        self.assertEqual(server.wait_exit(EXIT_TIMEOUT), 0, server.describe())
        self.assertLess(time.monotonic() - started, 8)

    def test_quit_is_a_fast_stop(self):
        server = self.start_uv(["--graceful-timeout", "30"])
        c = self.raw(server)
        c.send(get_request("/"))
        self.assertEqual(c.read_response()[0], 200)
        self.assertStopsCleanly(server, signal.SIGQUIT, timeout=10)

    def test_max_requests_restarts_the_worker(self):
        server = self.start_uv(["--max-requests", "3", "--keep-alive", "30"])
        first = server.workers()
        conn = self.raw(server)
        pids = set()
        for i in range(3):
            conn.send(get_request("/peer"))
            status, headers, body = conn.read_response()
            self.assertEqual(status, 200)
            pids.add(body.split()[0])
        self.assertEqual(headers.get("connection"), "close")  # the last one before the restart
        self.assertTrue(conn.wait_closed(5))
        self.assertEqual(len(pids), 1)
        self.assertTrue(server.workers_gone(first, EXIT_TIMEOUT), server.describe())
        server.wait_workers(1, exclude=first)
        self.assertServesHello(server)

    def test_unix_socket(self):
        path = os.path.join(self.make_tmpdir(), "uv.sock")
        server = self.spawn(["-b", "unix:" + path, "-w", "1", "-k", "uv", APP])
        server.wait_listening(path)
        server.wait_workers(1)
        for _ in range(3):
            status, _, body, _ = http_request(path, path="/path/unix")
            self.assertEqual((status, body), (200, b"/path/unix"))
        conn = RawConn(path)
        self.addCleanup(conn.close)
        conn.send(get_request("/path/1") + get_request("/path/2"))
        self.assertEqual([conn.read_response()[2] for _ in range(2)], [b"/path/1", b"/path/2"])

    def test_tcp_nodelay_small_writes_are_not_delayed(self):
        # Keep-alive request/response ping-pong must not hit the 40 ms Nagle/delayed-ACK stall.
        server = self.start_uv()
        conn = http.client.HTTPConnection(*server.address, timeout=REQUEST_TIMEOUT)
        self.addCleanup(conn.close)
        conn.request("GET", "/")
        conn.getresponse().read()
        started = time.monotonic()
        for _ in range(50):
            conn.request("GET", "/stream?n=3&size=10")
            conn.getresponse().read()
        per_request = (time.monotonic() - started) / 50
        self.assertLess(per_request, 0.03, "%.1f ms per request" % (per_request * 1000))


if __name__ == "__main__":
    unittest.main()
