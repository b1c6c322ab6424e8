"""Signals sent to the master, Gunicorn's contract: TERM graceful stop, INT fast stop,
HUP replaces the workers, TTIN/TTOU change the worker count."""

import signal
import threading
import time
import unittest

from harness import AlicornTestCase, can_connect, http_request


class _Request(threading.Thread):
    """An HTTP request in flight in the background; result is (status, body) or the exception."""

    def __init__(self, address, path, timeout=40):
        super().__init__(daemon=True)
        self.address, self.path, self.timeout = address, path, timeout
        self.result = None

    def run(self):
        try:
            status, _, body, _ = http_request(self.address, path=self.path, timeout=self.timeout)
            self.result = (status, body)
        except Exception as exc:  # the test inspects it
            self.result = exc


class Term(AlicornTestCase):
    def test_term_stops_master_and_workers(self):
        server = self.start_server("hello:app", workers=2)
        self.assertServesHello(server)
        self.assertStopsCleanly(server, signal.SIGTERM)
        log = server.log()
        handling = log.find("Handling signal: term")
        shutting = log.find("Shutting down: Master")
        self.assertGreaterEqual(handling, 0, server.describe())
        self.assertGreater(shutting, handling, server.describe())

    def test_term_finishes_in_flight_request(self):
        server = self.start_server("slow:app", ["--graceful-timeout", "20"], workers=1)
        [worker] = server.workers()
        req = _Request(server.address, "/?s=2")
        req.start()
        time.sleep(0.7)  # the worker is now inside the app
        server.signal(signal.SIGTERM)
        req.join(15)
        self.assertEqual(req.result, (200, b"slept %d" % worker),
                         "in-flight request not finished on TERM\n" + server.describe())
        self.assertEqual(server.wait_exit(), 0, server.describe())
        self.assertTrue(server.workers_gone([worker], 5))

    def test_term_kills_workers_after_graceful_timeout(self):
        server = self.start_server("slow:app", ["--graceful-timeout", "2"], workers=1)
        [worker] = server.workers()
        req = _Request(server.address, "/?s=60")
        req.start()
        time.sleep(0.7)
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        server.wait_exit(timeout=15)
        self.assertLess(time.monotonic() - started, 12,
                        "TERM waited far past --graceful-timeout 2\n" + server.describe())
        self.assertTrue(server.workers_gone([worker], 5), server.describe())
        self.assertFalse(can_connect(server.address))


class Int(AlicornTestCase):
    def test_int_stops_cleanly(self):
        server = self.start_server("hello:app", workers=2)
        self.assertServesHello(server)
        self.assertStopsCleanly(server, signal.SIGINT)

    def test_int_is_a_fast_stop(self):
        # A request is stuck in the app for a minute and graceful_timeout is 30s: INT must not
        # wait for either.
        server = self.start_server("slow:app", ["--graceful-timeout", "30"], workers=1)
        [worker] = server.workers()
        req = _Request(server.address, "/?s=60")
        req.start()
        time.sleep(0.7)
        started = time.monotonic()
        server.signal(signal.SIGINT)
        code = server.wait_exit(timeout=15)
        self.assertLess(time.monotonic() - started, 5, "INT was not a fast stop\n"
                        + server.describe())
        self.assertEqual(code, 0, server.describe())
        self.assertTrue(server.workers_gone([worker], 5), server.describe())


class Quit(AlicornTestCase):
    def test_quit_stops_cleanly(self):
        server = self.start_server("hello:app", workers=1)
        self.assertStopsCleanly(server, signal.SIGQUIT)


class Hup(AlicornTestCase):
    def test_hup_replaces_workers_and_keeps_serving(self):
        server = self.start_server("pid:app", workers=2)
        old = server.wait_workers(2)
        server.signal(signal.SIGHUP)
        new = server.wait_workers(2, exclude=old)
        self.assertIsNone(server.poll())
        for _ in range(4):
            status, _, body, _ = self.get(server, "/")
            self.assertEqual(status, 200)
            self.assertIn(int(body), new)


class TtinTtou(AlicornTestCase):
    def test_ttin_adds_and_ttou_removes_a_worker(self):
        server = self.start_server("hello:app", workers=1)
        [first] = server.wait_workers(1)
        server.signal(signal.SIGTTIN)
        two = server.wait_workers(2)
        self.assertIn(first, two)
        server.signal(signal.SIGTTOU)
        server.wait_workers(1)
        self.assertServesHello(server)


if __name__ == "__main__":
    unittest.main()
