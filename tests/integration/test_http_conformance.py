"""HTTP/1.1 conformance over raw sockets, written from RFC 9112 (message syntax) and RFC 9110
(semantics), against the conformance_echo app.

The same cases run once per worker class (a test class each): sync (one request per
connection, every answer carries Connection: close), gthread and uv (keep-alive). A worker class
whose plugin fails to boot fails its tests with the server log; it is never skipped.

Every request is fed three ways, each a subTest: whole (one send), bytewise (one byte per send,
TCP_NODELAY, small sleeps) and split (random cut points from a seeded generator, so a failure
replays). Valid requests are checked through the echo app's JSON view of the environ. Invalid
requests must get the status the RFC asks for (a set where the RFC allows a choice), then the
server must close the connection, log exactly one "Invalid request" line, and keep answering a
normal request on a new connection. Every final response must carry Date and Server.
"""

import json
import random
import re
import socket
import time
import unittest

from harness import START_TIMEOUT, AlicornTestCase, Server, free_port

APP = "conformance_echo:app"
MODES = ("whole", "bytewise", "split")
READ_TIMEOUT = 5.0      # one response, or the close that must follow an error response
CLOSE_TIMEOUT = 3.0     # the server closing after an error / Connection: close answer
BYTEWISE_SLEEP = 0.0005  # between single bytes (only for the first BYTEWISE_SLOW bytes)
BYTEWISE_SLOW = 300
SPLIT_SLEEP = 0.003
INVALID_LOG = "Invalid request"

STATUS_LINE_RE = re.compile(rb"^HTTP/1\.([01]) (\d{3}) ?([^\r\n]*)$")


# ----------------------------------------------------------------------------------------------
# A small HTTP/1.1 client over one socket: send in pieces, read framed responses.

class Response:
    def __init__(self, version, status, reason, headers, body, head_raw):
        self.version = version          # "HTTP/1.1"
        self.status = status            # int
        self.reason = reason
        self.header_list = headers      # [(lower-cased name, value str)]
        self.body = body                # bytes (de-chunked)
        self.head_raw = head_raw        # the status line and header block as received
        self.framing = None             # "length", "chunked", "close" or "none"

    def header(self, name, default=None):
        values = [v for n, v in self.header_list if n == name.lower()]
        return ",".join(values) if values else default

    def has(self, name):
        return any(n == name.lower() for n, _ in self.header_list)

    def connection_tokens(self):
        return {t.strip().lower() for t in (self.header("connection") or "").split(",") if t}

    def json(self):
        return json.loads(self.body.decode("latin-1"))

    def __repr__(self):
        return "<Response %d %r framing=%s headers=%r body=%r>" % (
            self.status, self.reason, self.framing, self.header_list, self.body[:300])


class Closed(Exception):
    """The server closed (or reset) the connection before a complete response."""


class Conn:
    def __init__(self, address, timeout=READ_TIMEOUT):
        self.sock = socket.create_connection(address, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False
        self.send_error = None   # set when the server closed while we were still sending

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # -- sending -----------------------------------------------------------------------------
    def send(self, data, mode="whole", rng=None):
        """Send data as one piece, one byte at a time, or in random pieces. Stops quietly if
        the server closes early (it may answer an invalid request before the end of it)."""
        try:
            if mode == "whole":
                self.sock.sendall(data)
            elif mode == "bytewise":
                for i in range(len(data)):
                    self.sock.sendall(data[i:i + 1])
                    if i < BYTEWISE_SLOW or i % 256 == 0:
                        time.sleep(BYTEWISE_SLEEP)
            elif mode == "split":
                for piece in random_pieces(data, rng):
                    self.sock.sendall(piece)
                    time.sleep(SPLIT_SLEEP)
            else:
                raise ValueError(mode)
        except (BrokenPipeError, ConnectionResetError) as exc:
            self.send_error = exc

    # -- receiving ---------------------------------------------------------------------------
    def _fill(self, deadline):
        if self.eof:
            raise Closed("connection closed by the server")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("timed out waiting for the server")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            raise Closed("connection closed by the server")
        self.buf += chunk

    def _read_until(self, marker, deadline):
        while marker not in self.buf:
            self._fill(deadline)
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _read_exact(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_head(self, timeout=READ_TIMEOUT):
        """The next status line + header block, parsed (body not read)."""
        deadline = time.monotonic() + timeout
        head = self._read_until(b"\r\n\r\n", deadline)
        lines = head[:-4].split(b"\r\n")
        m = STATUS_LINE_RE.match(lines[0])
        if not m:
            raise AssertionError("malformed status line %r" % lines[0])
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                raise AssertionError("malformed response header line %r" % line)
            headers.append((name.decode("latin-1").lower(), value.strip(b" \t").decode("latin-1")))
        return Response("HTTP/1." + m.group(1).decode(), int(m.group(2)),
                        m.group(3).decode("latin-1"), headers, b"", head)

    def read_response(self, method="GET", timeout=READ_TIMEOUT):
        """The next final response (1xx interim responses are returned too; the caller decides)
        with its body read according to RFC 9112 section 6.3."""
        deadline = time.monotonic() + timeout
        resp = self.read_head(timeout)
        te = resp.header("transfer-encoding")
        if method == "HEAD" or resp.status < 200 or resp.status in (204, 304):
            resp.framing = "none"
        elif te is not None:
            if te.split(",")[-1].strip().lower() != "chunked":
                raise AssertionError("response Transfer-Encoding %r does not end in chunked" % te)
            resp.framing = "chunked"
            body = []
            while True:
                size_line = self._read_until(b"\r\n", deadline)[:-2]
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self._read_until(b"\r\n", deadline) != b"\r\n":
                        pass  # trailer fields
                    break
                body.append(self._read_exact(size, deadline))
                if self._read_exact(2, deadline) != b"\r\n":
                    raise AssertionError("chunk data not followed by CRLF")
            resp.body = b"".join(body)
        elif resp.has("content-length"):
            resp.framing = "length"
            resp.body = self._read_exact(int(resp.header("content-length")), deadline)
        else:
            resp.framing = "close"
            while True:
                try:
                    self._fill(deadline)
                except Closed:
                    break
            resp.body, self.buf = self.buf, b""
        return resp

    def wait_closed(self, timeout=CLOSE_TIMEOUT):
        """True when the server closes the connection (EOF or reset) with no further bytes;
        raises AssertionError if bytes arrive, False on timeout."""
        if self.buf:
            raise AssertionError("unexpected bytes after the response: %r" % self.buf[:200])
        if self.eof:
            return True
        deadline = time.monotonic() + timeout
        try:
            self._fill(deadline)
        except Closed:
            return True
        except socket.timeout:
            return False
        raise AssertionError("unexpected bytes after the response: %r" % self.buf[:200])


def random_pieces(data, rng):
    """data cut at 1..12 random points (sorted, distinct)."""
    if len(data) < 2:
        return [data]
    k = rng.randint(1, min(12, len(data) - 1))
    cuts = sorted(rng.sample(range(1, len(data)), k))
    bounds = [0] + cuts + [len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


def h11(target="/", headers=(), method="GET", body=b"", host="example.com"):
    """An HTTP/1.1 request with Host first, then `headers` (bytes lines without CRLF)."""
    lines = [b"%s %s HTTP/1.1" % (method.encode(), target.encode() if isinstance(target, str)
                                  else target)]
    if host is not None:
        lines.append(b"Host: " + host.encode())
    lines += list(headers)
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


NORMAL_REQUEST = h11("/after-error?ok=1")


# ----------------------------------------------------------------------------------------------
# Valid requests: (name, bytes, expectations). Expectations name fields of the echo app's JSON;
# "headers" must be a subset of its headers, "absent" lists environ keys that must be missing.

LARGE_VALUE = "v" * 8000

VALID_CASES = [
    ("get_with_query",
     h11("/search?q=alicorn&lang=en&empty="),
     dict(method="GET", path="/search", query="q=alicorn&lang=en&empty=",
          raw_uri="/search?q=alicorn&lang=en&empty=", protocol="HTTP/1.1",
          headers={"HTTP_HOST": "example.com"}, body="")),
    # RFC 9112 3.2.2: a server MUST accept the absolute-form in requests.
    ("absolute_form_target",
     h11("http://example.com:8080/abs/path?x=1", host="example.com:8080"),
     dict(method="GET", path="/abs/path", query="x=1",
          raw_uri="http://example.com:8080/abs/path?x=1")),
    # PATH_INFO is the percent-decoded path as a latin-1 str (PEP 3333); RAW_URI the raw target;
    # QUERY_STRING stays encoded.
    ("percent_encoded_path",
     h11("/caf%C3%A9/a%20b/%41%2fz%e9?k=%20v&u=%C3%A9"),
     dict(path="/caf\u00c3\u00a9/a b/A/z\u00e9", query="k=%20v&u=%C3%A9",
          raw_uri="/caf%C3%A9/a%20b/%41%2fz%e9?k=%20v&u=%C3%A9")),
    ("post_content_length",
     h11("/submit", [b"Content-Type: application/x-www-form-urlencoded",
                     b"Content-Length: 20"], method="POST", body=b"a=1&b=hello+world%21"),
     dict(method="POST", path="/submit", body="a=1&b=hello+world%21",
          headers={"CONTENT_TYPE": "application/x-www-form-urlencoded",
                   "CONTENT_LENGTH": "20"})),
    ("post_binary_body_latin1",
     h11("/bin", [b"Content-Length: 6"], method="POST", body=b"\x00\xff\r\n\xe9x"),
     dict(body="\x00\xff\r\n\xe9x")),
    # RFC 9112 7.1: chunk extensions are ignored when not understood; 7.1.2: trailer fields.
    ("chunked_with_extensions_and_trailers",
     h11("/chunked", [b"Transfer-Encoding: chunked", b"Content-Type: text/plain"],
         method="POST",
         body=(b"5;name=value\r\nhello\r\n"
               b"7;quoted=\"a b;c\";flag\r\n, world\r\n"
               b"A\r\n0123456789\r\n"
               b"0;last=1\r\nX-Trailer: trailer-value\r\nX-Other: 2\r\n\r\n")),
     dict(method="POST", body="hello, world0123456789",
          headers={"HTTP_HOST": "example.com", "CONTENT_TYPE": "text/plain"})),
    # Many trailer bytes after the headers: the header values the app sees must be intact.
    ("chunked_with_large_trailers",
     h11("/chunked-big", [b"Transfer-Encoding: chunked", b"X-Before: before-trailers"],
         method="POST",
         body=(b"3\r\nabc\r\n0\r\n"
               + b"".join(b"X-T%d: %s\r\n" % (i, b"t" * 3000) for i in range(3)) + b"\r\n")),
     dict(body="abc", headers={"HTTP_HOST": "example.com",
                               "HTTP_X_BEFORE": "before-trailers"})),
    ("http10_request",
     b"GET /old?x=1 HTTP/1.0\r\nUser-Agent: ancient/1.0\r\n\r\n",
     dict(method="GET", path="/old", query="x=1", protocol="HTTP/1.0",
          headers={"HTTP_USER_AGENT": "ancient/1.0"}, absent=["HTTP_HOST"])),
    ("http10_post_with_length",
     b"POST /old-post HTTP/1.0\r\nContent-Length: 4\r\n\r\nbody",
     dict(method="POST", protocol="HTTP/1.0", body="body")),
    # RFC 9110 5.5 / RFC 9112 5.1: only SP and HTAB around a value are whitespace; NBSP (0xA0)
    # is obs-text and part of the value.
    ("value_whitespace_trimmed",
     h11("/trim", [b"X-Trim: \t  value  with \t inner \t \t",
                   b"X-Nbsp: \xa0nb\xa0",
                   b"X-Tight:tight"]),
     dict(headers={"HTTP_X_TRIM": "value  with \t inner", "HTTP_X_NBSP": "\u00a0nb\u00a0",
                   "HTTP_X_TIGHT": "tight"})),
    # RFC 9110 5.3: a repeated field is the comma-joined list of its values, in order.
    ("repeated_header_joined",
     h11("/rep", [b"X-Rep: a", b"X-Other: o", b"X-Rep: b", b"x-rep: c d"]),
     dict(headers={"HTTP_X_REP": "a,b,c d", "HTTP_X_OTHER": "o"})),
    ("header_names_case_insensitive",
     h11("/case", [b"hOsT: example.com", b"x-MiXeD-CaSe: v1", b"CONTENT-TYPE: text/x-mixed",
                   b"content-LENGTH: 2"], method="PUT", body=b"ok", host=None),
     dict(method="PUT", body="ok",
          headers={"HTTP_HOST": "example.com", "HTTP_X_MIXED_CASE": "v1",
                   "CONTENT_TYPE": "text/x-mixed", "CONTENT_LENGTH": "2"})),
    ("empty_valued_header",
     h11("/empty", [b"X-Empty:", b"X-After: after", b"X-Spaces:   ", b"X-Last: last"]),
     dict(headers={"HTTP_X_EMPTY": "", "HTTP_X_AFTER": "after", "HTTP_X_SPACES": "",
                   "HTTP_X_LAST": "last"})),
    # A name with '_' must not reach the environ, where it would collide with the '-' spelling.
    ("underscore_header_dropped",
     h11("/us", [b"X_Forwarded_For: 6.6.6.6", b"X-Forwarded-For: 1.2.3.4",
                 b"X_Only_Underscore: 1"]),
     dict(headers={"HTTP_X_FORWARDED_FOR": "1.2.3.4"}, absent=["HTTP_X_ONLY_UNDERSCORE"])),
    ("large_header_value_8000",
     h11("/large", [b"X-Large: " + LARGE_VALUE.encode(), b"X-Small: s"]),
     dict(headers={"HTTP_X_LARGE": LARGE_VALUE, "HTTP_X_SMALL": "s"})),
    # Exactly at the default limits: a 4094-byte request line, 100 header fields.
    ("request_line_at_limit_4094",
     h11("/" + "a" * (4094 - len("GET / HTTP/1.1"))),
     dict(path="/" + "a" * (4094 - len("GET / HTTP/1.1")))),
    ("header_fields_at_limit_100",
     h11("/fields", [b"X-F%02d: %d" % (i, i) for i in range(99)]),
     dict(headers={"HTTP_X_F00": "0", "HTTP_X_F98": "98"})),
]


# ----------------------------------------------------------------------------------------------
# Invalid requests: (name, bytes, acceptable statuses). A single code where the RFC (or the
# design notes, docs/architecture.md) names it; a set where the RFC leaves a choice.

def bad_header(line):
    return h11("/bad", [line])


INVALID_CASES = [
    # RFC 9112 6.1: CL with TE ought to be handled as an error; alicorn refuses it (400).
    ("content_length_with_transfer_encoding",
     h11("/", [b"Content-Length: 5", b"Transfer-Encoding: chunked"], method="POST",
         body=b"0\r\n\r\n"), {400}),
    # RFC 9112 6.3 (5): differing Content-Length values are unrecoverable (400); alicorn also
    # refuses the same value twice (design notes).
    ("two_different_content_lengths",
     h11("/", [b"Content-Length: 3", b"Content-Length: 4"], method="POST", body=b"abcd"), {400}),
    ("same_content_length_twice",
     h11("/", [b"Content-Length: 4", b"Content-Length: 4"], method="POST", body=b"abcd"), {400}),
    ("content_length_12a",
     h11("/", [b"Content-Length: 12a"], method="POST", body=b"x" * 12), {400}),
    ("content_length_negative",
     h11("/", [b"Content-Length: -1"], method="POST", body=b"x"), {400}),
    ("content_length_plus_sign",
     h11("/", [b"Content-Length: +5"], method="POST", body=b"x" * 5), {400}),
    ("content_length_empty",
     h11("/", [b"Content-Length: "], method="POST", body=b""), {400}),
    # RFC 9112 6.3 (4): chunked not last in a request -> 400 and close; 6.1: a coding the server
    # does not understand SHOULD get 501.
    ("transfer_encoding_gzip",
     h11("/", [b"Transfer-Encoding: gzip"], method="POST", body=b"abc"), {400, 501}),
    ("transfer_encoding_chunked_then_gzip",
     h11("/", [b"Transfer-Encoding: chunked, gzip"], method="POST", body=b"0\r\n\r\n"),
     {400, 501}),
    # RFC 9112 6.1: TE in an HTTP/1.0 message means faulty framing.
    ("chunked_on_http10",
     b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", {400}),
    ("bad_chunk_size",
     h11("/", [b"Transfer-Encoding: chunked"], method="POST", body=b"zz\r\nhello\r\n0\r\n\r\n"),
     {400}),
    ("chunk_size_overflow",
     h11("/", [b"Transfer-Encoding: chunked"], method="POST",
         body=b"1ffffffffffffffff\r\nhello\r\n0\r\n\r\n"), {400}),
    ("missing_crlf_after_chunk_data",
     h11("/", [b"Transfer-Encoding: chunked"], method="POST",
         body=b"5\r\nhelloXX0\r\n\r\n"), {400}),
    # RFC 9112 5.2: obs-fold is rejected with 400 (or replaced by SP; alicorn rejects).
    ("obsolete_line_folding",
     h11("/", [b"X-Folded: first", b" second"]), {400}),
    ("obsolete_line_folding_tab",
     h11("/", [b"X-Folded: first", b"\tsecond"]), {400}),
    # RFC 9112 5.1: whitespace between field name and colon MUST be rejected with 400.
    ("space_before_colon", bad_header(b"X-Space : value"), {400}),
    ("tab_before_colon", bad_header(b"X-Tab\t: value"), {400}),
    # RFC 9110 5.5: field values are VCHAR / obs-text / SP / HTAB; RFC 9112 2.2: bare CR invalid.
    ("nul_in_header_value", bad_header(b"X-Bad: a\x00b"), {400}),
    ("del_in_header_value", bad_header(b"X-Bad: a\x7fb"), {400}),
    ("bare_cr_in_header_value", bad_header(b"X-Bad: a\rb"), {400}),
    ("bare_lf_in_header_value", bad_header(b"X-Bad: a\nb"), {400}),
    ("control_0x01_in_header_value", bad_header(b"X-Bad: a\x01b"), {400}),
    ("escape_in_header_value", bad_header(b"X-Bad: a\x1b[31mb"), {400}),
    # RFC 9110 5.1: field names are tokens.
    ("control_in_header_name", bad_header(b"X-B\x01ad: v"), {400}),
    ("nul_in_header_name", bad_header(b"X-B\x00ad: v"), {400}),
    ("tab_in_header_name", bad_header(b"X-B\tad: v"), {400}),
    ("empty_header_name", bad_header(b": no-name"), {400}),
    ("header_line_without_colon", bad_header(b"X-No-Colon"), {400}),
    # RFC 9110 9.1: methods are tokens (an unknown well-formed one goes to the app, as in
    # Gunicorn: see test_http_edge_parsing.py).
    ("bad_method_G@T", b"G@T / HTTP/1.1\r\nHost: example.com\r\n\r\n", {400}),
    ("bad_method_X@Y", b"X@Y / HTTP/1.1\r\nHost: example.com\r\n\r\n", {400}),
    ("bad_method_GE(T", b"GE(T / HTTP/1.1\r\nHost: example.com\r\n\r\n", {400}),
    # RFC 9112 3.2: the target has no whitespace or control bytes.
    ("space_in_target", b"GET /a b HTTP/1.1\r\nHost: example.com\r\n\r\n", {400}),
    ("control_in_target", b"GET /a\x01b HTTP/1.1\r\nHost: example.com\r\n\r\n", {400}),
    ("del_in_target", b"GET /a\x7fb HTTP/1.1\r\nHost: example.com\r\n\r\n", {400}),
    ("nul_in_target", b"GET /a\x00b HTTP/1.1\r\nHost: example.com\r\n\r\n", {400}),
    # RFC 9112 2.3 / RFC 9110 15.6.6: malformed version 400, unsupported major 505.
    ("bad_version_HTTP/1.x", b"GET / HTTP/1.x\r\nHost: example.com\r\n\r\n", {400, 505}),
    # A broken line end after a good version is a syntax error, not an unsupported version.
    ("bad_line_end_after_version", b"GET / HTTP/1.1\r\x01\r\nHost: example.com\r\n\r\n",
     {400}),
    ("bad_version_http_lowercase", b"GET / http/1.1\r\nHost: example.com\r\n\r\n", {400}),
    ("version_HTTP/2.0", b"GET / HTTP/2.0\r\nHost: example.com\r\n\r\n", {505, 400}),
    ("version_HTTP/3.0", b"GET / HTTP/3.0\r\nHost: example.com\r\n\r\n", {505, 400}),
    # RFC 9112 3.2: a 1.1 request without Host, or with more than one, MUST get 400.
    ("missing_host_http11", b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n", {400}),
    ("two_host_headers", h11("/", [b"Host: other.example"]), {400}),
    # Gunicorn's limits (request line 4094 -> 414; 100 fields, 8190 bytes a field -> 431).
    ("request_line_4095",
     h11("/" + "a" * (4095 - len("GET / HTTP/1.1"))), {414}),
    ("request_line_10000", h11("/" + "a" * 10000), {414}),
    ("header_fields_101", h11("/", [b"X-F%03d: %d" % (i, i) for i in range(100)]), {431, 400}),
    ("header_fields_200", h11("/", [b"X-F%03d: %d" % (i, i) for i in range(199)]), {431, 400}),
    ("header_field_8191_bytes",
     h11("/", [b"X-Big: " + b"b" * (8191 - len("X-Big: "))]), {431, 400}),
    ("header_field_20000_bytes", h11("/", [b"X-Big: " + b"b" * 20000]), {431, 400}),
]


# ----------------------------------------------------------------------------------------------

class ConformanceMixin:
    """The cases; a concrete class sets WORKER_ARGS and KEEPALIVE and derives AlicornTestCase."""

    WORKER_ARGS = ()
    KEEPALIVE = False
    server = None
    boot_error = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = None
        cls.boot_error = None
        port = free_port()
        server = Server(["-b", "127.0.0.1:%d" % port, "-w", "1"] + list(cls.WORKER_ARGS) + [APP])
        server.address = ("127.0.0.1", port)
        try:
            server.start()
            server.wait_listening(server.address, START_TIMEOUT)
            server.wait_workers(1, START_TIMEOUT)
            # A worker class that fails to boot makes the master exit soon after forking.
            time.sleep(0.3)
            if server.poll() is not None:
                raise AssertionError("alicorn exited after start\n%s" % server.describe())
            cls.server = server
        except AssertionError as exc:
            cls.boot_error = "server with %s failed to start:\n%s" % (
                " ".join(cls.WORKER_ARGS), exc)
            server.cleanup()

    @classmethod
    def tearDownClass(cls):
        if cls.server is not None:
            cls.server.cleanup()
            cls.server = None
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        if self.boot_error:
            self.fail(self.boot_error)
        if self.server.poll() is not None:
            self.fail("the server exited during the suite\n%s" % self.server.describe())

    # -- helpers -----------------------------------------------------------------------------
    def ctx(self, what, resp=None):
        return "%s [%s]\nresponse: %r\n%s" % (what, " ".join(self.WORKER_ARGS), resp,
                                               self.server.describe()[-1500:])

    def open(self, server=None):
        return Conn((server or self.server).address)

    def assertFinalHeaders(self, resp, what):
        self.assertTrue(resp.has("date"), self.ctx("%s: no Date header" % what, resp))
        self.assertTrue(resp.has("server"), self.ctx("%s: no Server header" % what, resp))
        self.assertRegex(resp.header("date"),
                         r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug"
                         r"|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$",
                         self.ctx("%s: Date is not an IMF-fixdate" % what, resp))

    def exchange(self, data, mode, rng, method="GET", server=None):
        """One request on a fresh connection; returns (final response, conn). Interim 1xx
        responses are not expected here."""
        conn = self.open(server)
        self.addCleanup(conn.close)
        conn.send(data, mode, rng)
        try:
            resp = conn.read_response(method)
        except (Closed, socket.timeout) as exc:
            raise AssertionError(self.ctx("no complete response (%r; send error %r)"
                                          % (exc, conn.send_error)))
        return resp, conn

    def assertNormalRequestServed(self, server=None):
        resp, conn = self.exchange(NORMAL_REQUEST, "whole", None, server=server)
        self.assertEqual(resp.status, 200, self.ctx("normal request after an error", resp))
        self.assertEqual(resp.json()["path"], "/after-error")
        conn.close()

    def assertClosedAfter(self, conn, resp, what):
        closed = conn.wait_closed()
        self.assertTrue(closed, self.ctx("%s: server kept the connection open" % what, resp))

    def invalid_log_count(self, server=None):
        return (server or self.server).log().count(INVALID_LOG)

    def check_valid(self, name, data, expect, mode, server=None):
        rng = random.Random("%s/%s" % (name, mode))
        resp, conn = self.exchange(data, mode, rng, server=server)
        what = "%s (%s)" % (name, mode)
        self.assertEqual(resp.status, 200, self.ctx(what, resp))
        self.assertFinalHeaders(resp, what)
        doc = resp.json()
        for key, value in expect.items():
            if key == "headers":
                for hk, hv in value.items():
                    self.assertEqual(doc["headers"].get(hk), hv,
                                     self.ctx("%s: environ[%s]" % (what, hk), resp))
            elif key == "absent":
                for hk in value:
                    self.assertNotIn(hk, doc["headers"], self.ctx(what, resp))
            else:
                self.assertEqual(doc[key], value, self.ctx("%s: %s" % (what, key), resp))
        if not self.KEEPALIVE:
            # sync: one request per connection, said in every answer.
            self.assertIn("close", resp.connection_tokens(),
                          self.ctx("%s: no Connection: close" % what, resp))
            self.assertClosedAfter(conn, resp, what)
        elif data.split(b"\r\n", 1)[0].endswith(b"HTTP/1.0"):
            # RFC 9112 9.3: HTTP/1.0 without keep-alive does not persist.
            self.assertNotIn("keep-alive", resp.connection_tokens(), self.ctx(what, resp))
            self.assertClosedAfter(conn, resp, what)
        return doc

    def check_invalid(self, name, data, codes, mode, server=None):
        server = server or self.server
        rng = random.Random("%s/%s" % (name, mode))
        what = "%s (%s)" % (name, mode)
        before = self.invalid_log_count(server)
        resp, conn = self.exchange(data, mode, rng, server=server)
        self.assertIn(resp.status, codes,
                      self.ctx("%s: status %d not in %s" % (what, resp.status, sorted(codes)),
                               resp))
        self.assertFinalHeaders(resp, what)
        self.assertIn("close", resp.connection_tokens(),
                      self.ctx("%s: error response without Connection: close" % what, resp))
        self.assertClosedAfter(conn, resp, what)
        conn.close()
        self.assertNormalRequestServed(server)
        # One "Invalid request" line for this request (the normal one after it adds none).
        counted = lambda: self.invalid_log_count(server) >= before + 1  # noqa: E731
        deadline = time.monotonic() + 3
        while not counted() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(self.invalid_log_count(server), before + 1,
                         "%s: expected one %r log line\n%s"
                         % (what, INVALID_LOG, server.log()[-3000:]))
        return resp.status

    # -- valid requests ----------------------------------------------------------------------
    def test_valid_requests(self):
        for name, data, expect in VALID_CASES:
            for mode in MODES:
                with self.subTest(case=name, mode=mode):
                    self.check_valid(name, data, expect, mode)

    # -- invalid requests --------------------------------------------------------------------
    def test_invalid_requests(self):
        got = {}
        for name, data, codes in INVALID_CASES:
            for mode in MODES:
                with self.subTest(case=name, mode=mode):
                    got[(name, mode)] = self.check_invalid(name, data, codes, mode)
        # The statuses seen, for the record (python -m unittest -v shows them).
        print("\n[%s] statuses: %s" % (" ".join(self.WORKER_ARGS), ", ".join(
            "%s=%s" % (n, got.get((n, "whole"), "-")) for n, _, _ in INVALID_CASES)))

    def test_limit_request_line_option(self):
        # --limit-request-line 100: a 200-byte target gets 414; a short one still works.
        server = self.start_server(APP, list(self.WORKER_ARGS) + ["--limit-request-line", "100"])
        data = h11("/" + "x" * 199)
        for mode in MODES:
            with self.subTest(mode=mode):
                self.check_invalid("limit_request_line_100", data, {414}, mode, server=server)
        self.check_valid("short_target_under_limit_100", h11("/short?x=1"),
                         dict(path="/short", query="x=1"), "whole", server=server)

    def test_limit_request_fields_options(self):
        server = self.start_server(APP, list(self.WORKER_ARGS)
                                   + ["--limit-request-fields", "5",
                                      "--limit-request-field_size", "100"])
        self.check_valid("five_fields", h11("/", [b"X-%d: v" % i for i in range(4)]),
                         dict(path="/"), "whole", server=server)
        for mode in MODES:
            with self.subTest(case="six_fields", mode=mode):
                self.check_invalid("six_fields", h11("/", [b"X-%d: v" % i for i in range(5)]),
                                   {431, 400}, mode, server=server)
            with self.subTest(case="field_over_100", mode=mode):
                self.check_invalid("field_over_100", h11("/", [b"X-Big: " + b"b" * 100]),
                                   {431, 400}, mode, server=server)

    # -- response framing --------------------------------------------------------------------
    def test_head_has_no_body(self):
        for mode in MODES:
            with self.subTest(mode=mode):
                rng = random.Random("head/" + mode)
                req = h11("/head?x=1", method="HEAD")
                resp, conn = self.exchange(req, mode, rng, method="HEAD")
                self.assertEqual(resp.status, 200, self.ctx("HEAD", resp))
                self.assertFinalHeaders(resp, "HEAD")
                if self.KEEPALIVE:
                    # The next response on the connection must start right after the head.
                    conn.send(h11("/after-head"))
                    nxt = conn.read_response()
                    self.assertEqual(nxt.status, 200, self.ctx("GET after HEAD", nxt))
                    self.assertEqual(nxt.json()["path"], "/after-head")
                else:
                    self.assertClosedAfter(conn, resp, "HEAD")  # fails on any body byte

    def test_http10_response_without_length_is_close_delimited(self):
        for mode in MODES:
            with self.subTest(mode=mode):
                rng = random.Random("stream10/" + mode)
                resp, conn = self.exchange(b"GET /stream HTTP/1.0\r\n\r\n", mode, rng)
                self.assertEqual(resp.status, 200, self.ctx("stream 1.0", resp))
                self.assertFinalHeaders(resp, "stream 1.0")
                self.assertFalse(resp.has("transfer-encoding"),
                                 self.ctx("chunked answer to HTTP/1.0", resp))
                self.assertFalse(resp.has("content-length"), self.ctx("stream 1.0", resp))
                self.assertEqual(resp.framing, "close")
                self.assertEqual(resp.body, b"part-one;part-two;part-three",
                                 self.ctx("stream 1.0", resp))

    def test_http11_response_without_length(self):
        resp, conn = self.exchange(h11("/stream"), "whole", None)
        self.assertEqual(resp.status, 200, self.ctx("stream 1.1", resp))
        self.assertFinalHeaders(resp, "stream 1.1")
        self.assertEqual(resp.body, b"part-one;part-two;part-three", self.ctx("stream 1.1", resp))
        if resp.framing == "close":
            self.assertIn("close", resp.connection_tokens(), self.ctx("stream 1.1", resp))
        if self.KEEPALIVE:
            self.assertEqual(resp.framing, "chunked", self.ctx("stream 1.1 keep-alive", resp))

    def test_expect_100_continue(self):
        for mode in MODES:
            with self.subTest(mode=mode):
                rng = random.Random("expect/" + mode)
                head = h11("/expect", [b"Expect: 100-continue", b"Content-Length: 11"],
                           method="POST")
                conn = self.open()
                self.addCleanup(conn.close)
                conn.send(head, mode, rng)
                try:
                    interim = conn.read_head(timeout=2.0)
                except (Closed, socket.timeout) as exc:
                    raise AssertionError(self.ctx("no 100 Continue within 2 s (%r)" % exc))
                self.assertEqual(interim.status, 100, self.ctx("interim", interim))
                self.assertEqual(interim.version, "HTTP/1.1")
                conn.send(b"hello world", mode, rng)
                resp = conn.read_response()
                self.assertEqual(resp.status, 200, self.ctx("after 100 Continue", resp))
                self.assertFinalHeaders(resp, "expect")
                doc = resp.json()
                self.assertEqual((doc["method"], doc["body"]), ("POST", "hello world"))

    def test_expect_100_continue_ignored_on_http10(self):
        # RFC 9110 10.1.1: a server that receives 100-continue in an HTTP/1.0 request MUST
        # ignore that expectation, so the first thing back is the final response.
        conn = self.open()
        self.addCleanup(conn.close)
        conn.send(b"POST /expect10 HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        time.sleep(0.3)
        conn.send(b"body")
        resp = conn.read_response()
        self.assertEqual(resp.status, 200, self.ctx("Expect on HTTP/1.0", resp))
        self.assertEqual(resp.json()["body"], "body")

    def test_pipelined_requests(self):
        reqs = h11("/first?n=1") + h11("/second", [b"Content-Length: 3"], method="POST",
                                       body=b"two") + h11("/third")
        conn = self.open()
        self.addCleanup(conn.close)
        conn.send(reqs)
        first = conn.read_response()
        self.assertEqual(first.status, 200, self.ctx("pipelined 1", first))
        self.assertEqual(first.json()["path"], "/first")
        if not self.KEEPALIVE:
            # sync answers one request per connection and closes.
            self.assertIn("close", first.connection_tokens())
            self.assertClosedAfter(conn, first, "pipelined on sync")
            return
        second = conn.read_response()
        third = conn.read_response()
        self.assertEqual((second.json()["path"], second.json()["body"]), ("/second", "two"),
                         self.ctx("pipelined 2", second))
        self.assertEqual(third.json()["path"], "/third", self.ctx("pipelined 3", third))

    def test_keepalive_then_invalid_request_closes(self):
        # On a persistent connection a broken request still gets its error and a close.
        conn = self.open()
        self.addCleanup(conn.close)
        conn.send(h11("/ok"))
        first = conn.read_response()
        self.assertEqual(first.status, 200, self.ctx("first", first))
        if not self.KEEPALIVE:
            self.assertClosedAfter(conn, first, "sync")
            return
        conn.send(bad_header(b"X-Bad: nul\x00byte"))
        second = conn.read_response()
        self.assertEqual(second.status, 400, self.ctx("invalid after keep-alive", second))
        self.assertClosedAfter(conn, second, "invalid after keep-alive")


class SyncConformance(ConformanceMixin, AlicornTestCase):
    WORKER_ARGS = ("-k", "sync")
    KEEPALIVE = False


class GthreadConformance(ConformanceMixin, AlicornTestCase):
    WORKER_ARGS = ("-k", "gthread", "--threads", "2")
    KEEPALIVE = True


class UvConformance(ConformanceMixin, AlicornTestCase):
    WORKER_ARGS = ("-k", "uv")
    KEEPALIVE = True


if __name__ == "__main__":
    unittest.main()
