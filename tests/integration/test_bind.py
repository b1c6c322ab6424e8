"""Listening addresses: unix sockets, several binds, IPv6, inherited fd://N, and an address
that cannot be bound."""

import os
import re
import signal
import socket
import time
import unittest

from harness import (HELLO, AlicornTestCase, curl, free_port, ipv6_loopback_available,
                     raw_exchange)

RUNTIME_ERROR = 1


class UnixSocket(AlicornTestCase):
    def start_unix(self):
        tmp = self.make_tmpdir()
        path = os.path.join(tmp, "alicorn.sock")
        server = self.spawn(["-b", "unix:%s" % path, "hello:app"])
        server.wait_listening(path)
        server.wait_workers(1)
        return server, path

    def test_unix_socket_served(self):
        server, path = self.start_unix()
        self.assertServesHello(path)
        data = raw_exchange(path, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.assertRegex(data, rb"^HTTP/1\.1 200 ")
        self.assertTrue(data.endswith(HELLO), data)

    def test_unix_socket_with_curl(self):
        server, path = self.start_unix()
        res = curl(["--unix-socket", path, "http://localhost/"])
        self.assertEqual(res.returncode, 0, (res.stderr, server.describe()))
        self.assertEqual(res.stdout, HELLO)

    def test_unix_socket_listening_log_line(self):
        server, path = self.start_unix()
        server.wait_log(r"Listening at: unix:%s \(%d\)" % (re.escape(path), server.pid))

    def test_unix_socket_removed_on_exit(self):
        server, path = self.start_unix()
        self.assertStopsCleanly(server, signal.SIGTERM)
        self.assertFalse(os.path.exists(path), "unix socket file left behind")


class SeveralBinds(AlicornTestCase):
    def test_two_tcp_binds(self):
        p1 = free_port()
        p2 = free_port()
        while p2 == p1:
            p2 = free_port()
        server = self.spawn(["-b", "127.0.0.1:%d" % p1, "--bind", "127.0.0.1:%d" % p2,
                             "-w", "2", "hello:app"])
        for port in (p1, p2):
            server.wait_listening(("127.0.0.1", port))
        server.wait_workers(2)
        for port in (p1, p2):
            for _ in range(3):
                self.assertServesHello(("127.0.0.1", port))
            # One line per address, or one line listing them all, as Gunicorn does.
            server.wait_log(r"Listening at: [^\n]*http://127\.0\.0\.1:%d\b[^\n]* \(%d\)"
                            % (port, server.pid))

    def test_tcp_and_unix_binds(self):
        tmp = self.make_tmpdir()
        path = os.path.join(tmp, "both.sock")
        port = free_port()
        server = self.spawn(["-b", "127.0.0.1:%d" % port, "-b", "unix:%s" % path, "hello:app"])
        server.wait_listening(("127.0.0.1", port))
        server.wait_listening(path)
        self.assertServesHello(("127.0.0.1", port))
        self.assertServesHello(path)

    @unittest.skipUnless(ipv6_loopback_available(), "no IPv6 loopback here")
    def test_ipv6_bind(self):
        server = self.start_server("hello:app", host="::1")
        port = server.address[1]
        self.assertServesHello(server)
        server.wait_log(r"Listening at: http://\[::1\]:%d \(%d\)" % (port, server.pid))

    def test_inherited_fd(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(sock.close)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        port = sock.getsockname()[1]
        fd = sock.fileno()
        server = self.spawn(["-b", "fd://%d" % fd, "hello:app"], pass_fds=[fd])
        # The test keeps its copy of the listener open, so poll with requests, not connects.
        server.address = ("127.0.0.1", port)
        server.wait_workers(1)
        self.assertServesHello(server)
        self.assertServesHello(server)


class CannotBind(AlicornTestCase):
    def test_address_in_use_exits_1(self):
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(holder.close)
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        started = time.monotonic()
        server = self.spawn(["-b", "127.0.0.1:%d" % port, "hello:app"])
        code = server.wait_exit(timeout=25)
        self.assertEqual(code, RUNTIME_ERROR, server.describe())
        self.assertIn(str(port), server.log(), server.describe())
        self.assertEqual(server.booted_pids(), [], server.describe())
        self.assertLess(time.monotonic() - started, 25)

    def test_unix_socket_in_missing_directory_exits_1(self):
        server = self.spawn(["-b", "unix:/nonexistent-dir-alicorn/x.sock", "hello:app"])
        code = server.wait_exit(timeout=25)
        self.assertEqual(code, RUNTIME_ERROR, server.describe())
        self.assertIn("/nonexistent-dir-alicorn/x.sock", server.log(), server.describe())


if __name__ == "__main__":
    unittest.main()
