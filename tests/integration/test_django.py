"""A minimal Django project (Debian's python3-django, unchanged; no database) served by each
worker class with `--chdir apps/django_site wsgi:application`, as an operator would run it:
a template view, a csrf_exempt POST (form and multipart), the CSRF middleware refusing a POST,
StreamingHttpResponse, FileResponse (wsgi.file_wrapper), 404, APPEND_SLASH and SCRIPT_NAME."""

import json
import os
import unittest
from urllib.parse import quote

from harness import APPS_DIR, AlicornTestCase, multipart, sha256

SITE_DIR = os.path.join(APPS_DIR, "django_site")



class DjangoTests:
    WORKER_ARGS = ()

    def serve(self, args=()):
        # Started from an unrelated directory: --chdir alone must make the project importable.
        return self.start_server("wsgi:application",
                                 list(self.WORKER_ARGS) + ["--chdir", SITE_DIR] + list(args),
                                 cwd=self.make_tmpdir())

    def setUp(self):
        super().setUp()
        self.server = self.serve()

    def fetch(self, path, server=None, **kw):
        kw.setdefault("timeout", 30)
        return self.get(server or self.server, path, **kw)

    def test_plain_view_and_head(self):
        status, headers, body, _ = self.fetch("/")
        self.assertEqual((status, body), (200, b"Django on alicorn"), self.server.describe())
        status, headers, body, _ = self.fetch("/", method="HEAD")
        self.assertEqual((status, headers.get("content-length"), body), (200, "17", b""),
                         self.server.describe())

    def test_template_view_renders_and_escapes(self):
        status, headers, body, _ = self.fetch("/hello/World/?item=a&item=%3Cb%3E")
        self.assertEqual(status, 200, self.server.describe())
        self.assertEqual(headers.get("content-type"), "text/html; charset=utf-8")
        text = body.decode("utf-8")
        self.assertIn('<p id="greeting">Hello, World!</p>', text)
        self.assertIn("<ul><li>a</li><li>&lt;b&gt;</li></ul>", text)

    def test_template_view_with_utf8_path(self):
        status, _, body, _ = self.fetch("/hello/%s/" % quote("caf\u00e9"))
        self.assertEqual(status, 200, self.server.describe())
        self.assertIn("Hello, caf\u00e9!", body.decode("utf-8"))

    def test_post_form_echo(self):
        form = b"a=1&b=two&b=three&c=caf%C3%A9"
        status, _, raw, _ = self.fetch(
            "/echo/", method="POST", body=form,
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 200, self.server.describe())
        doc = json.loads(raw)
        self.assertEqual((doc["method"], doc["post"], doc["content_type"], doc["body_length"]),
                         ("POST", {"a": ["1"], "b": ["two", "three"], "c": ["caf\u00e9"]},
                          "application/x-www-form-urlencoded", len(form)))

    def test_post_multipart_upload(self):
        data = os.urandom(3 * 1024 * 1024 + 1)
        body, ctype = multipart([("note", "upload \u2603")], [("doc", "data.bin", data)])
        status, _, raw, _ = self.fetch("/echo/", method="POST", body=body,
                                       headers={"Content-Type": ctype})
        self.assertEqual(status, 200, self.server.describe())
        doc = json.loads(raw)
        self.assertEqual((doc["post"], doc["files"]),
                         ({"note": ["upload \u2603"]},
                          {"doc": {"name": "data.bin", "size": len(data),
                                   "sha256": sha256(data)}}))

    def test_csrf_middleware_refuses_a_post_without_token(self):
        status, _, _, _ = self.fetch("/csrf-protected/", method="POST", body=b"x=1",
                                     headers={"Content-Type":
                                              "application/x-www-form-urlencoded"})
        self.assertEqual(status, 403, self.server.describe())
        status, _, body, _ = self.fetch("/csrf-protected/")
        self.assertEqual((status, body), (200, b"accepted"), self.server.describe())

    def test_streaming_http_response(self):
        status, headers, body, _ = self.fetch("/stream/?count=300")
        self.assertEqual(status, 200, self.server.describe())
        self.assertEqual(body, "".join("row %d\n" % i for i in range(300)).encode())
        self.assertEqual(headers.get("transfer-encoding"), "chunked", headers)

    def test_file_response(self):
        path = os.path.join(self.make_tmpdir(), "report.bin")
        data = os.urandom(2 * 1024 * 1024 + 99)
        with open(path, "wb") as f:
            f.write(data)
        status, headers, body, _ = self.fetch("/file/?path=" + quote(path))
        self.assertEqual(status, 200, self.server.describe())
        self.assertEqual(headers.get("content-length"), str(len(data)))
        self.assertEqual((len(body), sha256(body)), (len(data), sha256(data)))

    def test_404_with_debug_off(self):
        status, _, body, _ = self.fetch("/no/such/page/")
        self.assertEqual(status, 404, self.server.describe())
        self.assertIn(b"Not Found", body)
        self.assertNotIn(b"Traceback", body)

    def test_append_slash_redirect(self):
        status, headers, _, _ = self.fetch("/stream")
        self.assertEqual((status, headers.get("location")), (301, "/stream/"),
                         self.server.describe())

    def test_script_name_prefix(self):
        server = self.serve(["-e", "SCRIPT_NAME=/site"])
        status, _, raw, _ = self.fetch("/site/echo/", server=server, method="POST", body=b"k=v",
                                       headers={"Content-Type":
                                                "application/x-www-form-urlencoded"})
        self.assertEqual(status, 200, server.describe())
        doc = json.loads(raw)
        self.assertEqual((doc["script_name"], doc["path"], doc["path_info"], doc["post"]),
                         ("/site", "/site/echo/", "/echo/", {"k": ["v"]}))
        # APPEND_SLASH redirects keep the prefix
        status, headers, _, _ = self.fetch("/site/stream", server=server)
        self.assertEqual((status, headers.get("location")), (301, "/site/stream/"))


class Sync(DjangoTests, AlicornTestCase):
    WORKER_ARGS = ("-k", "sync")


class Gthread(DjangoTests, AlicornTestCase):
    WORKER_ARGS = ("-k", "gthread", "--threads", "4")


class Uv(DjangoTests, AlicornTestCase):
    WORKER_ARGS = ("-k", "uv")


if __name__ == "__main__":
    unittest.main()
