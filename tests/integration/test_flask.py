"""A real Flask app (Debian's python3-flask, unchanged) served by each worker class: routing with
variables, JSON in and out, a form POST, a multipart upload of several MB, a streamed response,
send_file (with its conditional 304), a 404 and an abort(403)."""

import json
import os
import unittest
from urllib.parse import quote

from harness import APPS_DIR, AlicornTestCase, multipart, sha256

SITE_DIR = os.path.join(APPS_DIR, "flask_site")



class FlaskTests:
    WORKER_ARGS = ()

    def setUp(self):
        super().setUp()
        self.server = self.start_server("app:app", list(self.WORKER_ARGS), cwd=SITE_DIR)

    def fetch(self, path, **kw):
        kw.setdefault("timeout", 30)
        return self.get(self.server, path, **kw)

    def test_index(self):
        status, headers, body, _ = self.fetch("/")
        self.assertEqual((status, body), (200, b"Flask on alicorn"), self.server.describe())
        self.assertTrue(headers.get("content-type", "").startswith("text/html"), headers)

    def test_routing_with_variables(self):
        status, _, body, _ = self.fetch("/hello/World")
        self.assertEqual((status, body), (200, b"Hello, World!"), self.server.describe())
        status, _, body, _ = self.fetch("/items/42/a/b?x=1&x=2")
        self.assertEqual(status, 200, self.server.describe())
        self.assertEqual(json.loads(body), {"id": 42, "id_type": "int", "rest": "a/b",
                                            "args": {"x": ["1", "2"]}})

    def test_percent_encoded_utf8_route_variable(self):
        status, _, body, _ = self.fetch("/hello/" + quote("caf\u00e9 \u2603"))
        self.assertEqual((status, body.decode("utf-8")), (200, "Hello, caf\u00e9 \u2603!"),
                         self.server.describe())

    def test_converter_mismatch_is_404(self):
        status, _, _, _ = self.fetch("/items/notanint/x")
        self.assertEqual(status, 404, self.server.describe())

    def test_json_request_and_response(self):
        doc = {"numbers": [1, 2, 3, 4.5], "name": "caf\u00e9", "nested": {"ok": True}}
        status, headers, body, _ = self.fetch("/json", method="POST",
                                              body=json.dumps(doc).encode(),
                                              headers={"Content-Type": "application/json"})
        self.assertEqual(status, 200, self.server.describe())
        self.assertEqual(headers.get("content-type"), "application/json")
        self.assertEqual(json.loads(body), {"received": doc, "sum": 10.5,
                                            "content_type": "application/json"})

    def test_form_post(self):
        status, _, body, _ = self.fetch(
            "/form", method="POST", body=b"a=1&b=two&b=three&c=caf%C3%A9&d=x+y",
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 200, self.server.describe())
        self.assertEqual(json.loads(body), {"method": "POST", "form": {
            "a": ["1"], "b": ["two", "three"], "c": ["caf\u00e9"], "d": ["x y"]}})

    def test_multipart_upload_of_several_megabytes(self):
        big = os.urandom(6 * 1024 * 1024 + 11)
        small = os.urandom(1000)
        body, ctype = multipart([("title", "two files \u2603")],
                                [("upload", "big.bin", big), ("upload", "small.bin", small)])
        status, _, raw, _ = self.fetch("/upload", method="POST", body=body,
                                       headers={"Content-Type": ctype})
        self.assertEqual(status, 200, self.server.describe())
        self.assertEqual(json.loads(raw), {
            "form": {"title": ["two files \u2603"]},
            "files": {"upload": [
                {"filename": "big.bin", "size": len(big), "sha256": sha256(big)},
                {"filename": "small.bin", "size": len(small), "sha256": sha256(small)}]}})

    def test_streaming_response(self):
        status, headers, body, _ = self.fetch("/stream?count=200&who=tester")
        self.assertEqual(status, 200, self.server.describe())
        expected = "".join("line %d for tester\n" % i for i in range(200)).encode()
        self.assertEqual(body, expected)
        # a generator without a length: chunked on HTTP/1.1
        self.assertEqual(headers.get("transfer-encoding"), "chunked", headers)
        self.assertNotIn("content-length", headers)

    def test_send_file(self):
        path = os.path.join(self.make_tmpdir(), "download.bin")
        data = os.urandom(2 * 1024 * 1024 + 3)
        with open(path, "wb") as f:
            f.write(data)
        status, headers, body, _ = self.fetch("/file?path=" + quote(path))
        self.assertEqual(status, 200, self.server.describe())
        self.assertEqual(headers.get("content-length"), str(len(data)))
        self.assertEqual((len(body), sha256(body)), (len(data), sha256(data)))
        # send_file is conditional: the ETag it gave makes the same request a 304, no body
        etag = headers.get("etag")
        self.assertTrue(etag, headers)
        status, headers, body, _ = self.fetch("/file?path=" + quote(path),
                                              headers={"If-None-Match": etag})
        self.assertEqual((status, body), (304, b""), self.server.describe())

    def test_head_of_send_file(self):
        path = os.path.join(self.make_tmpdir(), "head.bin")
        with open(path, "wb") as f:
            f.write(b"x" * 54321)
        status, headers, body, _ = self.fetch("/file?path=" + quote(path), method="HEAD")
        self.assertEqual((status, headers.get("content-length"), body), (200, "54321", b""),
                         self.server.describe())

    def test_404(self):
        status, _, body, _ = self.fetch("/no/such/page")
        self.assertEqual(status, 404, self.server.describe())
        self.assertIn(b"Not Found", body)

    def test_abort_403(self):
        status, _, body, _ = self.fetch("/forbidden")
        self.assertEqual(status, 403, self.server.describe())
        self.assertIn(b"Forbidden", body)

    def test_keeps_serving_after_errors(self):
        for path, expected in (("/forbidden", 403), ("/nope", 404), ("/hello/again", 200)):
            self.assertEqual(self.fetch(path)[0], expected, self.server.describe())


class Sync(FlaskTests, AlicornTestCase):
    WORKER_ARGS = ("-k", "sync")


class Gthread(FlaskTests, AlicornTestCase):
    WORKER_ARGS = ("-k", "gthread", "--threads", "4")


class Uv(FlaskTests, AlicornTestCase):
    WORKER_ARGS = ("-k", "uv")


if __name__ == "__main__":
    unittest.main()
