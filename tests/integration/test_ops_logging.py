"""syslog to a unix datagram socket the test opens, capture_output into the error log file,
and bad logging settings refused at startup (docs/operations.md)."""

import os
import re
import socket
import unittest

from harness import START_TIMEOUT, AlicornTestCase, run_alicorn, wait_for


def read(path):
    with open(path) as f:
        return f.read()


class Syslog(AlicornTestCase):
    def listen(self):
        path = os.path.join(self.make_tmpdir(), "log.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(0.2)
        self.addCleanup(sock.close)
        return path, sock

    def collect(self, sock, until):
        got = []
        def done():
            try:
                while True:
                    got.append(sock.recv(65536).decode())
            except socket.timeout:
                pass
            return until(got)
        self.assertTrue(wait_for(done, START_TIMEOUT), got)
        return got

    def test_error_and_access_log_to_unix_datagram_socket(self):
        path, sock = self.listen()
        server = self.start_server("hello:app", [
            "--log-syslog", "--log-syslog-to", "unix://" + path, "--log-syslog-prefix", "shop",
            "--log-syslog-facility", "local3", "--access-logfile", "-"])
        self.assertServesHello(server)
        worker = server.wait_workers(1)[0]
        msgs = self.collect(sock, lambda g: any("GET / HTTP/1.1" in m for m in g)
                            and any("Booting worker" in m for m in g))
        # local3 (19) * 8 + info (6) = 158; Python's SysLogHandler ends datagrams with NUL.
        boot = [m for m in msgs if "Booting worker" in m][0]
        self.assertRegex(boot, r"^<158>gunicorn\.shop\.error: \[%d\] Booting worker with pid: %d\x00$"
                         % (server.pid, worker))
        access = [m for m in msgs if "GET / HTTP/1.1" in m][0]
        self.assertTrue(access.startswith("<158>gunicorn.shop.access: [%d] 127.0.0.1" % worker),
                        access)
        # Still on stderr as well.
        self.assertIn("Booting worker", server.log())

    def test_logger_class_sends_to_syslog_once(self):
        # With logger_class the Python logger's SysLogHandler sends, alicorn's own sink stays
        # off: the same datagrams, none twice.
        path, sock = self.listen()
        tmp = self.make_tmpdir()
        with open(os.path.join(tmp, "sysloglog.py"), "w") as f:
            f.write("from alicorn.glogging import Logger\nclass L(Logger):\n    pass\n")
        server = self.start_server("hello:app", [
            "--pythonpath", tmp, "--logger-class", "sysloglog.L",
            "--log-syslog", "--log-syslog-to", "unix://" + path, "--log-syslog-prefix", "shop",
            "--log-syslog-facility", "local3", "--access-logfile", "-"])
        self.get(server, "/via-python")
        worker = server.wait_workers(1)[0]
        msgs = self.collect(sock, lambda g: any("/via-python" in m for m in g)
                            and any("Booting worker" in m for m in g))
        boot = [m for m in msgs if "Booting worker" in m]
        self.assertEqual(len(boot), 1, msgs)
        self.assertRegex(boot[0], r"^<158>gunicorn\.shop\.error: \[%d\] Booting worker with "
                         r"pid: %d\x00$" % (server.pid, worker))
        access = [m for m in msgs if "/via-python" in m]
        self.assertEqual(len(access), 1, msgs)
        self.assertTrue(access[0].startswith("<158>gunicorn.shop.access: [%d] 127.0.0.1"
                                             % worker), access)

    def test_disable_redirect_access(self):
        path, sock = self.listen()
        server = self.start_server("hello:app", [
            "--log-syslog", "--log-syslog-to", "unix://" + path,
            "--disable-redirect-access-to-syslog", "--access-logfile", "-"])
        self.assertServesHello(server)
        self.get(server, "/marker-path")
        msgs = self.collect(sock, lambda g: any("Booting worker" in m for m in g))
        server.wait_log(r"Booting worker")
        self.assertTrue(wait_for(lambda: "/marker-path" in server.stdout(), START_TIMEOUT))
        self.assertFalse(any("marker-path" in m for m in msgs), msgs)

    def test_unreachable_syslog_still_serves(self):
        missing = os.path.join(self.make_tmpdir(), "nobody.sock")
        server = self.start_server("hello:app", ["--log-syslog", "--log-syslog-to",
                                                 "unix://" + missing])
        self.assertServesHello(server)
        server.wait_log(r"syslog: connect\(\"unix://%s\"\) failed" % re.escape(missing))

    def test_bad_settings_refused(self):
        r = run_alicorn(["--log-syslog", "--log-syslog-to", "smtp://x", "hello:app"])
        self.assertRefused(r, code=2, mentions=["syslog_addr", "smtp://x"])
        r = run_alicorn(["--log-syslog", "--log-syslog-facility", "nope", "hello:app"])
        self.assertRefused(r, code=2, mentions=["syslog_facility", "nope"])


class CaptureOutput(AlicornTestCase):
    def test_print_goes_to_the_error_log(self):
        log = os.path.join(self.make_tmpdir(), "error.log")
        server = self.start_server("printer:app", ["--capture-output", "--error-logfile", log])
        self.assertEqual(self.get(server)[0], 200)
        worker = server.wait_workers(1)[0]
        self.assertTrue(wait_for(lambda: "printed by the app in %d" % worker in read(log)
                                 and "stderr of the app" in read(log), START_TIMEOUT), read(log))
        self.assertIn("Booting worker", read(log))

    def test_without_capture_output_print_stays_on_stdout(self):
        log = os.path.join(self.make_tmpdir(), "error.log")
        server = self.start_server("printer:app", ["--error-logfile", log])
        self.assertEqual(self.get(server)[0], 200)
        self.assertTrue(wait_for(lambda: "printed by the app" in server.stdout(), START_TIMEOUT))
        self.assertNotIn("printed by the app", read(log))


if __name__ == "__main__":
    unittest.main()
