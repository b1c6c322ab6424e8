"""Worker classes as plugins: gthread and uv serve too, a .so can be named by path, and unknown
or ABI-refused plugins stop the master with a clear message (exit 1, never a crash)."""

import glob
import hashlib
import json
import os
import threading
import time
import unittest

from harness import (BUILD_DIR, HELLO, TEST_PLUGIN_DIR, AlicornTestCase, curl, free_port,
                     http_request, run_alicorn)

RUNTIME_ERROR = 1


class Gthread(AlicornTestCase):
    def test_gthread_serves_hello(self):
        server = self.start_server("hello:app", ["-k", "gthread", "--threads", "4"])
        for _ in range(5):
            self.assertServesHello(server)
        server.wait_log(r"Using worker: gthread")

    def test_gthread_with_curl(self):
        server = self.start_server("hello:app", ["-k", "gthread", "--threads", "2"], workers=2)
        res = curl(["http://127.0.0.1:%d/" % server.address[1]])
        self.assertEqual((res.returncode, res.stdout), (0, HELLO), res.stderr)

    def test_gthread_threads_serve_concurrently(self):
        # One process, four threads, four requests of 1.5 s each: done well before 6 s.
        server = self.start_server("slow:app", ["-k", "gthread", "--threads", "4"], workers=1)
        results = []

        def one():
            try:
                results.append(http_request(server.address, path="/?s=1.5", timeout=15)[0])
            except Exception as exc:
                results.append(exc)

        threads = [threading.Thread(target=one, daemon=True) for _ in range(4)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        elapsed = time.monotonic() - started
        self.assertEqual(results, [200] * 4, server.describe())
        self.assertLess(elapsed, 4.5, "gthread did not run requests concurrently (%.1fs)"
                        % elapsed)

    def test_gthread_post_body(self):
        server = self.start_server("echo:app", ["-k", "gthread", "--threads", "2"])
        doc = self.get_json(server, "/g?x=1", method="POST", body=b"payload-123")
        self.assertEqual((doc["REQUEST_METHOD"], doc["PATH_INFO"], doc["QUERY_STRING"],
                          doc["body"]), ("POST", "/g", "x=1", "payload-123"))


class Uv(AlicornTestCase):
    def test_uv_serves_hello(self):
        server = self.start_server("hello:app", ["-k", "uv"])
        for _ in range(5):
            self.assertServesHello(server)
        server.wait_log(r"Using worker: uv")

    def test_uv_two_workers_with_curl(self):
        server = self.start_server("hello:app", ["-k", "uv"], workers=2)
        res = curl(["http://127.0.0.1:%d/" % server.address[1]])
        self.assertEqual((res.returncode, res.stdout), (0, HELLO), res.stderr)

    def test_uv_post_body(self):
        server = self.start_server("echo:app", ["-k", "uv"])
        body = os.urandom(200000)
        status, _, raw, _ = self.get(server, "/u", method="POST", body=body)
        self.assertEqual(status, 200, server.describe())
        doc = json.loads(raw)
        self.assertEqual(doc["body_length"], len(body))
        self.assertEqual(doc["body_sha256"], hashlib.sha256(body).hexdigest())


class PluginByPath(AlicornTestCase):
    def test_sync_plugin_by_path(self):
        found = glob.glob(os.path.join(BUILD_DIR, "lib*", "alicorn", "workers", "sync.so"))
        self.assertTrue(found, "sync.so not found under %s" % BUILD_DIR)
        server = self.start_server("hello:app", ["-k", found[0]])
        self.assertServesHello(server)


class RefusedWorkerClasses(AlicornTestCase):
    def refuse(self, worker_class, *mentions):
        tmp = self.make_tmpdir()
        marker = os.path.join(tmp, "imported")
        res = run_alicorn(["-b", "127.0.0.1:%d" % free_port(), "-k", worker_class,
                           "marker:app"], env={"ALICORN_TEST_MARKER": marker})
        # returncode > 0: exited by itself (a signal would make it negative).
        self.assertRefused(res, code=RUNTIME_ERROR, mentions=mentions, marker=marker)
        return res

    def test_unknown_worker_class(self):
        self.refuse("nosuchclass", "nosuchclass")

    def test_missing_plugin_path(self):
        self.refuse("/nonexistent/alicorn/nothing.so", "/nonexistent/alicorn/nothing.so")

    def test_plugin_refusals(self):
        # Each refusal names the file; where the cause has an obvious word, that too.
        for name, why in (("wrong_major.so", r"major|ABI"),
                          ("null_entry.so", r"null"),
                          ("not_a_plugin.so", r"."),
                          ("missing_symbol.so", r"negotiate|symbol"),
                          ("short_table.so", r".")):
            with self.subTest(plugin=name):
                path = os.path.join(TEST_PLUGIN_DIR, name)
                self.assertTrue(os.path.exists(path),
                                "test plugin %s not built (ALICORN_TEST_PLUGIN_DIR=%s)"
                                % (name, TEST_PLUGIN_DIR))
                res = self.refuse(path, name.replace(".so", ""), why)
                self.assertNotIn("Segmentation", res.output)
                self.assertNotIn("core dumped", res.output)


if __name__ == "__main__":
    unittest.main()
