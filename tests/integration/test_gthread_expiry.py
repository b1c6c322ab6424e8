"""gthread: idle keep-alive connections expiring while another connection is busy.

At its --keep-alive deadline an idle connection is shut down by the poller and freed by a pool
thread. A shut-down socket raises EPOLLHUP whatever its epoll mask, so the poller must take it
out of the epoll set, not just disarm it: it once kept it in, got a HUP event naming the
connection while a pool thread freed it, and read freed memory (a worker crash, "double free or
corruption", under load; every time under ASan). This test makes many such expiries happen
while a client trickles a request byte by byte, and checks the worker survives them all."""

import socket
import time
import unittest

from harness import AlicornTestCase

IDLE = 24
ROUNDS = 3


def one_request(sock):
    sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    data = b""
    while b"Hello, World!" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError("closed before the response: %r" % data)
        data += chunk
    return data


class GthreadKeepAliveExpiry(AlicornTestCase):
    def test_idle_expiries_beside_a_trickling_request(self):
        server = self.start_server(
            "hello:app", ["-k", "gthread", "--threads", "2", "--keep-alive", "1"])
        worker = server.workers()
        for _ in range(ROUNDS):
            idle = []
            for _ in range(IDLE):
                s = socket.create_connection(server.address, timeout=5)
                self.assertTrue(one_request(s).startswith(b"HTTP/1.1 200"))
                idle.append(s)
            # A request trickled over ~1.6 s: the idle ones expire (1 s) meanwhile.
            trickle = socket.create_connection(server.address, timeout=5)
            request = b"GET / HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"p" * 150 + b"\r\n\r\n"
            for i in range(len(request)):
                trickle.sendall(request[i:i + 1])
                time.sleep(0.008)
            data = b""
            while b"Hello, World!" not in data:
                chunk = trickle.recv(4096)
                self.assertTrue(chunk, "trickled request not answered\n%s" % server.describe())
                data += chunk
            self.assertTrue(data.startswith(b"HTTP/1.1 200"), data)
            trickle.close()
            for s in idle:  # every idle connection was closed by the server at its deadline
                self.assertEqual(s.recv(16), b"", server.describe())
                s.close()
        self.assertEqual(server.workers(), worker, "the worker died\n%s" % server.describe())
        self.assertNotIn("corruption", server.log())
        self.assertServesHello(server)
        self.assertStopsCleanly(server)


if __name__ == "__main__":
    unittest.main()
