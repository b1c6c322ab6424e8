"""ABI stability, end to end: a plugin compiled against the frozen ABI 1.0 header
(tests/plugins/frozen/v1_0, before alicorn_conn_info grew recv/send in 1.1) still loads AND
serves requests with today's host, and a plugin built for another ABI major is refused before
anything is forked, with a message naming both versions."""

import hashlib
import json
import os
import re
import socket
import unittest

from harness import (REQUEST_TIMEOUT, SOURCE_DIR, TEST_PLUGIN_DIR, AlicornTestCase,
                     free_port, run_alicorn)

RUNTIME_ERROR = 1


def sdk_abi():
    """(major, minor) from sdk/include/alicorn/worker.h."""
    with open(os.path.join(SOURCE_DIR, "sdk", "include", "alicorn", "worker.h")) as f:
        text = f.read()
    major = int(re.search(r"#define ALICORN_ABI_MAJOR (\d+)", text).group(1))
    minor = int(re.search(r"#define ALICORN_ABI_MINOR (\d+)", text).group(1))
    return major, minor


def test_plugin(name):
    path = os.path.join(TEST_PLUGIN_DIR, name)
    if not os.path.exists(path):
        raise AssertionError("test plugin %s not built (ALICORN_TEST_PLUGIN_DIR=%s)"
                             % (name, TEST_PLUGIN_DIR))
    return path


class FrozenV10Plugin(AlicornTestCase):
    """frozen_v1_0.so: a sync-style worker built only against the 1.0 header."""

    def test_frozen_header_is_older_than_the_sdk(self):
        # The proof only means something while the host has moved past 1.0.
        with open(os.path.join(SOURCE_DIR, "tests", "plugins", "frozen", "v1_0", "alicorn",
                               "worker.h")) as f:
            self.assertIn("#define ALICORN_ABI_MINOR 0", f.read())
        self.assertGreater(sdk_abi(), (1, 0))

    def test_serves_get_requests(self):
        server = self.start_server("hello:app", ["-k", test_plugin("frozen_v1_0.so")], workers=2)
        for _ in range(6):
            headers = self.assertServesHello(server)
            # No ALICORN_CAP_KEEPALIVE: the host closes every connection, as for sync.
            self.assertEqual(headers.get("connection"), "close", server.describe())
        server.wait_log(r"Using worker: frozen_v1_0")
        major, minor = sdk_abi()
        server.wait_log(r"frozen_v1_0: built against ABI 1\.0, serving with a host that speaks "
                        r"ABI %d\.%d" % (major, minor))
        self.assertStopsCleanly(server)

    def test_serves_request_bodies(self):
        # A 1.0 conn_info has no recv/send: the host must not read past its struct_size, and
        # buffers (or spools) the body itself before the app runs.
        server = self.start_server("echo:app", ["-k", test_plugin("frozen_v1_0.so")])
        for size in (0, 11, 300000):
            body = os.urandom(size)
            status, _, raw, _ = self.get(server, "/frozen?x=%d" % size, method="POST", body=body)
            self.assertEqual(status, 200, server.describe())
            doc = json.loads(raw)
            self.assertEqual((doc["PATH_INFO"], doc["QUERY_STRING"], doc["body_length"],
                              doc["body_sha256"]),
                             ("/frozen", "x=%d" % size, size, hashlib.sha256(body).hexdigest()))

    def test_expect_100_continue(self):
        # Interim output goes through session_feed -> ALICORN_FEED_SEND, which 1.0 had.
        server = self.start_server("echo:app", ["-k", test_plugin("frozen_v1_0.so")])
        body = b"continued-body"
        with socket.create_connection(server.address, timeout=REQUEST_TIMEOUT) as s:
            s.sendall(b"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                      b"Expect: 100-continue\r\n\r\n" % len(body))
            interim = s.recv(4096)
            self.assertTrue(interim.startswith(b"HTTP/1.1 100 Continue\r\n"),
                            "%r\n%s" % (interim, server.describe()))
            s.sendall(body)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        head, _, payload = data.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 OK"), data)
        self.assertEqual(json.loads(payload)["body"], body.decode())

    def test_listed_with_its_abi(self):
        res = run_alicorn(["--list-workers"], env={"ALICORN_PLUGIN_PATH": TEST_PLUGIN_DIR})
        self.assertEqual(res.returncode, 0, res)
        self.assertRegex(res.stdout, r"(?m)^frozen_v1_0\s+1\.0\.0\s+1\.0\s+\S*frozen_v1_0\.so$")


class NewerMajorRefused(AlicornTestCase):
    def test_wrong_major_refused_before_fork(self):
        tmp = self.make_tmpdir()
        marker = os.path.join(tmp, "imported")
        path = test_plugin("wrong_major.so")
        res = run_alicorn(["-b", "127.0.0.1:%d" % free_port(), "-k", path, "marker:app"],
                          env={"ALICORN_TEST_MARKER": marker})
        major, minor = sdk_abi()
        self.assertRefused(res, code=RUNTIME_ERROR, marker=marker, mentions=(
            re.escape(path),
            r"speaks ABI %d\.0, this alicorn speaks ABI %d\.%d" % (major + 1, major, minor)))
        self.assertNotIn("Segmentation", res.output)

    def test_wrong_major_listed_as_refused(self):
        res = run_alicorn(["--list-workers"], env={"ALICORN_PLUGIN_PATH": TEST_PLUGIN_DIR})
        self.assertEqual(res.returncode, 0, res)
        # The row, then its note on the next line.
        self.assertRegex(res.stdout, r"(?m)^wrong_major\s+-\s+-\s+\S*wrong_major\.so\n\s+refused: "
                                     r".*speaks ABI \d+\.0, this alicorn speaks ABI")


if __name__ == "__main__":
    unittest.main()
