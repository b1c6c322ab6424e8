"""Serving with the default sync worker: hello world over real clients, the sync worker's
connection handling, the startup log, the WSGI environ, and the app spec forms."""

import hashlib
import json
import os
import unittest

from harness import (HELLO, LOG_LINE_RE, AlicornTestCase, curl, project_version, raw_exchange)


class HelloWorld(AlicornTestCase):
    def test_http_client_gets_hello_world(self):
        server = self.start_server("hello:app", ["-k", "sync"])
        headers = self.assertServesHello(server)
        self.assertTrue(headers.get("content-type", "").startswith("text/plain"), headers)

    def test_curl_gets_hello_world(self):
        server = self.start_server("hello:app", ["-k", "sync"])
        host, port = server.address
        res = curl(["--include", "http://%s:%d/" % (host, port)])
        self.assertEqual(res.returncode, 0, (res.stderr, server.describe()))
        head, _, body = res.stdout.partition(b"\r\n\r\n")
        self.assertRegex(head.split(b"\r\n")[0], rb"^HTTP/1\.1 200\b")
        self.assertRegex(head, rb"(?im)^content-length:\s*13\s*$")
        self.assertEqual(body, HELLO)

    def test_many_sequential_requests(self):
        server = self.start_server("hello:app", workers=2)
        for _ in range(50):
            self.assertServesHello(server)

    def test_module_alone_means_application(self):
        # Gunicorn's spelling: `hello` is `hello:application`.
        server = self.start_server("hello")
        self.assertServesHello(server)


class SyncConnectionHandling(AlicornTestCase):
    def test_sync_answers_connection_close(self):
        server = self.start_server("hello:app", ["-k", "sync"])
        _, headers, body, _ = self.get(server, "/")
        self.assertEqual(body, HELLO)
        self.assertEqual(headers.get("connection", "").lower(), "close", headers)

    def test_sync_serves_one_request_per_connection(self):
        # Two pipelined requests on one connection: the sync worker answers the first and
        # closes (raw_exchange fails with a timeout if the connection stays open).
        server = self.start_server("hello:app", ["-k", "sync"])
        req = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
        data = raw_exchange(server.address, req + req)
        self.assertEqual(data.count(b"HTTP/1.1 200"), 1, data)
        self.assertTrue(data.endswith(HELLO), data)

    def test_http10_request(self):
        server = self.start_server("hello:app")
        data = raw_exchange(server.address, b"GET / HTTP/1.0\r\n\r\n")
        self.assertRegex(data, rb"^HTTP/1\.[01] 200 ")
        self.assertTrue(data.endswith(b"\r\n\r\n" + HELLO), data)

    def test_head_has_no_body(self):
        server = self.start_server("hello:app")
        data = raw_exchange(server.address, b"HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.assertRegex(data, rb"^HTTP/1\.1 200 ")
        self.assertRegex(data, rb"(?im)^content-length:\s*13\r$")
        self.assertTrue(data.endswith(b"\r\n\r\n"), "HEAD answer carries a body: %r" % data)


class StartupLog(AlicornTestCase):
    def test_startup_lines(self):
        server = self.start_server("hello:app", ["-k", "sync"])
        host, port = server.address
        master = server.pid
        [worker] = server.workers()
        server.wait_log(r"Booting worker with pid: %d\b" % worker)
        lines = server.log().splitlines()
        parsed = [LOG_LINE_RE.match(line) for line in lines]

        def find(text):
            for m in parsed:
                if m and text in m.group(3):
                    return m
            self.fail("no log line containing %r in the Gunicorn format\n%s"
                      % (text, server.describe()))

        version = project_version()
        starting = find("Starting alicorn")
        self.assertEqual(starting.group(3).strip(), "Starting alicorn %s" % version)
        self.assertEqual(int(starting.group(1)), master)
        self.assertEqual(starting.group(2), "INFO")

        listening = find("Listening at:")
        self.assertEqual(listening.group(3).strip(),
                         "Listening at: http://%s:%d (%d)" % (host, port, master))
        self.assertEqual(listening.group(2), "INFO")

        using = find("Using worker:")
        self.assertEqual(using.group(3).strip(), "Using worker: sync")

        booting = find("Booting worker with pid:")
        self.assertEqual(booting.group(3).strip(), "Booting worker with pid: %d" % worker)
        self.assertEqual(booting.group(2), "INFO")


class WsgiEnviron(AlicornTestCase):
    def setUp(self):
        self.server = self.start_server("echo:app")

    def test_get_with_query(self):
        doc = self.get_json(self.server, "/a/b?x=1&y=two")
        self.assertEqual(doc["REQUEST_METHOD"], "GET")
        self.assertEqual(doc["PATH_INFO"], "/a/b")
        self.assertEqual(doc["QUERY_STRING"], "x=1&y=two")
        self.assertEqual(doc["SCRIPT_NAME"], "")
        self.assertEqual(doc["SERVER_PROTOCOL"], "HTTP/1.1")
        self.assertEqual(doc["wsgi.url_scheme"], "http")
        self.assertEqual(doc["body"], "")
        self.assertEqual(doc["SERVER_PORT"], str(self.server.address[1]))
        self.assertEqual(doc["REMOTE_ADDR"], "127.0.0.1")

    def test_path_info_is_percent_decoded(self):
        doc = self.get_json(self.server, "/a%20b/c?q=%20")
        self.assertEqual(doc["PATH_INFO"], "/a b/c")
        self.assertEqual(doc["QUERY_STRING"], "q=%20")

    def test_post_body(self):
        body = b"name=alicorn&kind=unicorn"
        doc = self.get_json(self.server, "/submit", method="POST", body=body,
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(doc["REQUEST_METHOD"], "POST")
        self.assertEqual(doc["PATH_INFO"], "/submit")
        self.assertEqual(doc["body"], body.decode())
        self.assertEqual(doc["CONTENT_LENGTH"], str(len(body)))
        self.assertEqual(doc["CONTENT_TYPE"], "application/x-www-form-urlencoded")

    def test_large_post_body(self):
        body = os.urandom(1 << 20)
        status, _, raw, _ = self.get(self.server, "/big", method="PUT", body=body,
                                     headers={"Content-Type": "application/octet-stream"})
        self.assertEqual(status, 200)
        doc = json.loads(raw)
        self.assertEqual(doc["REQUEST_METHOD"], "PUT")
        self.assertEqual(doc["body_length"], len(body))
        self.assertEqual(doc["body_sha256"], hashlib.sha256(body).hexdigest())

    def test_request_headers_become_http_variables(self):
        doc = self.get_json(self.server, "/", headers={"X-Custom-Thing": "value 1"})
        self.assertEqual(doc["headers"].get("HTTP_X_CUSTOM_THING"), "value 1", doc["headers"])
        self.assertIn("HTTP_HOST", doc["headers"])


class AppSpecs(AlicornTestCase):
    def test_factory_call(self):
        server = self.start_server("factory:create_app()")
        status, _, body, _ = self.get(server, "/")
        self.assertEqual((status, body), (200, b"Hello from the factory!"), server.describe())

    def test_factory_call_with_literal_arguments(self):
        server = self.start_server("factory:make_app('Howdy', punctuation='?')")
        status, _, body, _ = self.get(server, "/")
        self.assertEqual((status, body), (200, b"Howdy from the factory?"), server.describe())


class Preload(AlicornTestCase):
    def test_preload_serves_and_imports_in_master(self):
        server = self.start_server("envinfo:app", ["--preload"], workers=2)
        workers = server.workers()
        for _ in range(4):
            doc = self.get_json(server, "/")
            self.assertEqual(doc["import_pid"], server.pid,
                             "with --preload the master imports the app\n" + server.describe())
            self.assertIn(doc["pid"], workers)
            self.assertEqual(doc["ppid"], server.pid)

    def test_preload_hello(self):
        server = self.start_server("hello:app", ["--preload"], workers=2)
        for _ in range(4):
            self.assertServesHello(server)

    def test_without_preload_each_worker_imports(self):
        server = self.start_server("envinfo:app", workers=1)
        doc = self.get_json(server, "/")
        self.assertEqual(doc["import_pid"], doc["pid"])
        self.assertNotEqual(doc["pid"], server.pid)


if __name__ == "__main__":
    unittest.main()
