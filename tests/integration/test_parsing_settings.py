"""Gunicorn's parsing settings through the real binary, on every worker class.

permit_unconventional_http_method lets any RFC 9110 token through as the method (lower case,
'#', 1-2 or more than 20 bytes), casefold_http_method upper-cases it before the app sees it, and
header_map decides what happens to a header name with an underscore: drop (the default: the
environ does not have it, so X_Forwarded_For cannot pose as X-Forwarded-For), refuse (400 and a
closed connection) or dangerous (passed through as HTTP_X_FORWARDED_FOR). The settings of
features not served yet (HTTP/2, dirty workers) are refused at startup, naming the setting,
while their tuning knobs start as documented no-ops.
"""

import json
import unittest

from harness import AlicornTestCase, raw_exchange, run_alicorn

APP = "conformance_echo:app"


def request(method=b"GET", target=b"/", headers=()):
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: example.com", b"Connection: close"]
    lines += list(headers)
    return b"\r\n".join(lines) + b"\r\n\r\n"


def parse(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.") else None
    return status, head, body


class ParsingSettingsMixin:
    WORKER_ARGS = ()

    def serve(self, *args):
        return self.start_server(APP, list(self.WORKER_ARGS) + list(args))

    def exchange(self, server, data):
        status, head, body = parse(raw_exchange(server.address, data))
        self.assertIsNotNone(status, server.describe())
        return status, head, body

    def echo(self, server, data):
        status, head, body = self.exchange(server, data)
        self.assertEqual(status, 200, (head, body, server.describe()))
        return json.loads(body)

    def test_lower_case_method_refused_by_default(self):
        server = self.serve()
        status, head, _ = self.exchange(server, request(b"get"))
        self.assertEqual(status, 400)
        self.assertIn(b"close", head.lower())
        server.wait_log(r"permit_unconventional_http_method")
        self.assertEqual(self.echo(server, request(b"PATCH"))["method"], "PATCH")

    def test_permit_unconventional_http_method(self):
        server = self.serve("--permit-unconventional-http-method")
        for method in (b"get", b"m#x", b"GO", b"A" * 25, b"Purge"):
            with self.subTest(method=method):
                self.assertEqual(self.echo(server, request(method))["method"], method.decode())
        # Still a token: a separator in the method is a 400 whatever the settings say.
        self.assertEqual(self.exchange(server, request(b"GE(T"))[0], 400)

    def test_casefold_http_method(self):
        server = self.serve("--permit-unconventional-http-method", "--casefold-http-method")
        self.assertEqual(self.echo(server, request(b"get"))["method"], "GET")
        self.assertEqual(self.echo(server, request(b"Propfind"))["method"], "PROPFIND")

    def test_header_map_drop_is_the_default(self):
        server = self.serve()
        headers = self.echo(server, request(headers=[b"X_Forwarded_For: 6.6.6.6",
                                                     b"X-Real: r"]))["headers"]
        self.assertEqual(headers.get("HTTP_X_REAL"), "r")
        self.assertNotIn("HTTP_X_FORWARDED_FOR", headers)

    def test_header_map_refuse(self):
        server = self.serve("--header-map", "refuse")
        status, head, body = self.exchange(server, request(headers=[b"X_Evil: 1"]))
        self.assertEqual(status, 400)
        self.assertIn(b"close", head.lower())
        server.wait_log(r"underscore: X_Evil \(header_map = refuse\)")
        self.assertEqual(self.echo(server, request(headers=[b"X-Fine: 1"]))["headers"]
                         ["HTTP_X_FINE"], "1")

    def test_header_map_dangerous(self):
        server = self.serve("--header-map", "dangerous")
        headers = self.echo(server, request(headers=[b"X_Custom_Thing: v"]))["headers"]
        self.assertEqual(headers.get("HTTP_X_CUSTOM_THING"), "v")


class SyncParsingSettings(ParsingSettingsMixin, AlicornTestCase):
    WORKER_ARGS = ("-k", "sync")


class GthreadParsingSettings(ParsingSettingsMixin, AlicornTestCase):
    WORKER_ARGS = ("-k", "gthread", "--threads", "2")


class UvParsingSettings(ParsingSettingsMixin, AlicornTestCase):
    WORKER_ARGS = ("-k", "uv")


class LaterFeatureSettings(AlicornTestCase):
    def refused(self, args, *needles):
        result = run_alicorn(list(args) + ["--check-config", "hello:app"])
        self.assertNotEqual(result.returncode, 0, result.output)
        for needle in needles:
            self.assertIn(needle, result.output)

    def test_http2_refused_naming_the_setting(self):
        self.refused(["--http-protocols", "h1,h2"], "http_protocols", "'h2'", "HTTP/2")

    def test_unknown_protocol_refused(self):
        self.refused(["--http-protocols", "h3"], "http_protocols", "'h3'")

    def test_dirty_workers_refused(self):
        self.refused(["--dirty-workers", "2"], "dirty_workers", "dirty workers")
        self.refused(["--dirty-app", "jobs:app"], "dirty_apps")

    def test_asgi_worker_refused(self):
        self.refused(["-k", "asgi"], "worker_class", "ASGI")

    def test_header_map_unknown_mode(self):
        self.refused(["--header-map", "keep"], "header_map", "'keep'", "drop, refuse or dangerous")

    def test_tuning_knobs_are_no_ops(self):
        tmp = self.make_tmpdir()
        conf = tmp + "/gunicorn.conf.py"
        with open(conf, "w") as f:
            f.write("http_protocols = ['h1']\nhttp2_max_concurrent_streams = 50\n"
                    "asgi_loop = 'uvloop'\ndirty_timeout = 10\ndirty_workers = 0\n")
        result = run_alicorn(["-c", conf, "--print-config", "hello:app"])
        self.assertEqual(result.returncode, 0, result.output)
        self.assertIn("http2_max_concurrent_streams: 50", result.stdout)
        self.assertIn("asgi_loop: uvloop", result.stdout)
        server = self.start_server("hello:app", ["-c", conf])
        self.assertServesHello(server)


if __name__ == "__main__":
    unittest.main()
