"""Forking while the master's other thread works.

The master runs one thread besides its own: the ops thread answering the control socket and the
metrics endpoint. A worker forked while that thread held a lock (malloc's, the sanitizer
allocator's, a logger's) would inherit the lock held by nobody and hang at its first use of it:
seen under ASan, a fresh worker stuck in the allocator during Py_Initialize, answering nothing.
The master now forks only while that thread waits in poll() (the fork gate in
core/src/control/ops_server.cpp).

Here the endpoints are scraped without pause from two client threads while the single worker is
killed again and again; every replacement, forked in the middle of that, must serve. This is
the regression test for the sanitizer build above all (the normal build's glibc malloc has fork
handlers of its own), where it hung without the gate."""

import os
import signal
import socket
import threading
import unittest

from harness import AlicornTestCase, free_port

ROUNDS = 25


class ForkWhileOpsThreadBusy(AlicornTestCase):
    def test_workers_forked_during_scrapes_serve(self):
        ctl = os.path.join(self.make_tmpdir(), "alicorn.ctl")
        maddr = ("127.0.0.1", free_port())
        server = self.start_server("hello:app", ["--control-socket", ctl,
                                                 "--metrics-bind", "%s:%d" % maddr])
        stop = threading.Event()
        answered = [0, 0]

        def scrape_metrics():
            while not stop.is_set():
                try:
                    with socket.create_connection(maddr, timeout=5) as s:
                        s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
                        while s.recv(65536):
                            pass
                    answered[0] += 1
                except OSError:
                    pass

        def ask_control():
            while not stop.is_set():
                try:
                    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                        s.settimeout(5)
                        s.connect(ctl)
                        s.sendall(b"show workers\n")
                        while s.recv(65536):
                            pass
                    answered[1] += 1
                except OSError:
                    pass

        threads = [threading.Thread(target=f, daemon=True) for f in (scrape_metrics, ask_control)]
        for t in threads:
            t.start()
        try:
            for _ in range(ROUNDS):
                old = server.wait_workers(1)
                os.kill(old[0], signal.SIGKILL)
                server.wait_workers(1, exclude=old)
                self.assertServesHello(server)
        finally:
            stop.set()
            for t in threads:
                t.join(10)
        self.assertGreater(answered[0], 0, "no metrics scrape answered\n" + server.describe())
        self.assertGreater(answered[1], 0, "no control command answered\n" + server.describe())


if __name__ == "__main__":
    unittest.main()
