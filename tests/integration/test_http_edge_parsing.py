"""Request parsing at the edges of RFC 9112, over raw sockets, on every worker class.

Valid requests that a strict parser used to refuse (a well-formed method the server does not
know, bytes >= 0x80 in the target, chunk extensions with optional whitespace) must reach the
app; invalid ones that slipped through (two spaces in the request line, two Content-Type
fields, framing or routing fields in a chunked trailer, an asterisk-form target on GET,
Transfer-Encoding codings other than one final chunked) must get their error status, a close and
one "Invalid request" log line. Each request is sent whole, byte by byte and in random pieces
(the machinery of test_http_conformance.py, whose own cases are not run again here).
"""

import unittest

from harness import AlicornTestCase
from test_http_conformance import MODES, ConformanceMixin, h11


def chunked_post(body, headers=(), te=b"chunked"):
    return h11("/chunked", [b"Transfer-Encoding: " + te] + list(headers), method="POST",
               body=body)


VALID = [
    # RFC 9110 9.1: any token is a method; Gunicorn hands it to the app, and so do we.
    ("unknown_method_FOO", h11("/m", method="FOO"), dict(method="FOO", path="/m")),
    ("unknown_method_M-SEARCH", h11("/ssdp", method="M-SEARCH"), dict(method="M-SEARCH")),
    ("webdav_PROPFIND", h11("/dav", method="PROPFIND"), dict(method="PROPFIND", path="/dav")),
    # Bytes >= 0x80 in the target (nginx and Gunicorn pass them through): PEP 3333 gives the
    # app latin-1 strs, so 0xE9 is U+00E9 in PATH_INFO, QUERY_STRING and RAW_URI.
    ("obs_text_in_target", h11(b"/caf\xe9/\xff%41?q=\xe9"),
     dict(path="/caf\u00e9/\u00ffA", query="q=\u00e9", raw_uri="/caf\u00e9/\u00ff%41?q=\u00e9")),
    # RFC 9112 7.1.1: BWS around ';' and '=' in chunk extensions.
    ("chunk_ext_space_before_semicolon", chunked_post(b"5 ;a=b\r\nhello\r\n0\r\n\r\n"),
     dict(body="hello")),
    ("chunk_ext_space_after_semicolon", chunked_post(b"5; a=b\r\nhello\r\n0\r\n\r\n"),
     dict(body="hello")),
    ("chunk_ext_spaces_everywhere",
     chunked_post(b"5 ; a = b ;c\t;d=\"x y\"\r\nhello\r\n1;e\r\n!\r\n0 ; end\r\n\r\n"),
     dict(body="hello!")),
    # Trailer fields are accepted and dropped: the environ is the header section alone.
    ("trailer_fields_not_in_environ",
     chunked_post(b"3\r\nabc\r\n0\r\nX-Trailer: t\r\nContent-Type: text/evil\r\n\r\n",
                  [b"Content-Type: text/plain"]),
     dict(body="abc", headers={"CONTENT_TYPE": "text/plain"}, absent=["HTTP_X_TRAILER"])),
    # RFC 9112 2.3: a higher minor version is served as the highest we implement.
    ("http_1_2_served_as_1_1", b"GET /v HTTP/1.2\r\nHost: example.com\r\n\r\n",
     dict(path="/v", protocol="HTTP/1.1")),
]

INVALID = [
    ("two_spaces_after_method", b"GET  / HTTP/1.1\r\nHost: example.com\r\n\r\n", {400}),
    ("two_spaces_before_version", b"GET /  HTTP/1.1\r\nHost: example.com\r\n\r\n", {400}),
    ("space_after_version", b"GET / HTTP/1.1 \r\nHost: example.com\r\n\r\n", {400}),
    ("tab_between_method_and_target", b"GET\t/ HTTP/1.1\r\nHost: example.com\r\n\r\n", {400}),
    ("lower_case_method", b"get / HTTP/1.1\r\nHost: example.com\r\n\r\n", {400}),
    ("asterisk_form_on_GET", h11("*"), {400}),
    ("asterisk_form_on_M-SEARCH", h11("*", method="M-SEARCH"), {400}),
    ("asterisk_form_on_POST", h11("*", [b"Content-Length: 0"], method="POST"), {400}),
    ("relative_target", h11("foo/bar"), {400}),
    ("two_content_types", h11("/", [b"Content-Type: text/plain", b"Content-Type: text/html"]),
     {400}),
    ("trailer_content_length",
     chunked_post(b"3\r\nabc\r\n0\r\nContent-Length: 10\r\n\r\n"), {400}),
    ("trailer_transfer_encoding",
     chunked_post(b"3\r\nabc\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n"), {400}),
    ("trailer_host", chunked_post(b"3\r\nabc\r\n0\r\nHost: evil.example\r\n\r\n"), {400}),
    # RFC 9112 6.1 / 6.3: a coding we cannot decode before chunked -> 501; chunked not last or
    # twice -> 400. The body is never read as anything but chunked or Content-Length.
    ("te_gzip_chunked", chunked_post(b"0\r\n\r\n", te=b"gzip, chunked"), {501}),
    ("te_gzip_alone", h11("/", [b"Transfer-Encoding: gzip"], method="POST", body=b"abc"), {400}),
    ("te_chunked_twice",
     chunked_post(b"0\r\n\r\n", te=b"chunked, chunked"), {400}),
    ("te_chunked_in_two_fields_twice",
     chunked_post(b"0\r\n\r\n", [b"Transfer-Encoding: chunked"]), {400}),
    ("chunk_ext_whitespace_not_before_semicolon", chunked_post(b"5 \r\nhello\r\n0\r\n\r\n"),
     {400}),
    ("missing_host_http11", b"GET / HTTP/1.1\r\n\r\n", {400}),
]


class EdgeParsingMixin(ConformanceMixin):
    def test_valid_requests(self):
        for name, data, expect in VALID:
            for mode in MODES:
                with self.subTest(case=name, mode=mode):
                    self.check_valid(name, data, expect, mode)

    def test_invalid_requests(self):
        for name, data, codes in INVALID:
            for mode in MODES:
                with self.subTest(case=name, mode=mode):
                    self.check_invalid(name, data, codes, mode)


# Only the tests above: test_http_conformance.py runs the inherited ones.
for _name in [n for n in vars(ConformanceMixin) if n.startswith("test_")]:
    if _name not in vars(EdgeParsingMixin):
        setattr(EdgeParsingMixin, _name, None)


class SyncEdgeParsing(EdgeParsingMixin, AlicornTestCase):
    WORKER_ARGS = ("-k", "sync")
    KEEPALIVE = False


class GthreadEdgeParsing(EdgeParsingMixin, AlicornTestCase):
    WORKER_ARGS = ("-k", "gthread", "--threads", "2")
    KEEPALIVE = True


class UvEdgeParsing(EdgeParsingMixin, AlicornTestCase):
    WORKER_ARGS = ("-k", "uv")
    KEEPALIVE = True


if __name__ == "__main__":
    unittest.main()
