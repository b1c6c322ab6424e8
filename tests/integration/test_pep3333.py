"""PEP 3333 over real HTTP: one tiny app per behaviour in apps/pep3333/ (NGINX Unit style), each
wrapped in wsgiref.validate.validator where the behaviour allows, served by each worker class
(sync, gthread with 4 threads, uv). Requests go through http.client or raw sockets, so the
tests see the exact bytes on the wire: framing, truncation, and whether a connection was cut."""

import hashlib
import json
import os
import re
import socket
import time
import unittest
import uuid

from harness import (APPS_DIR, REQUEST_TIMEOUT, AlicornTestCase, raw_exchange, wait_for)

PEP_DIR = os.path.join(APPS_DIR, "pep3333")

LINES_BODY = b"line one\nline two\n\nthe last line has no newline"


# ---------------------------------------------------------------------------------------------
# Wire helpers

class Resp:
    def __init__(self, status, reason, headers, body, complete, rest, head):
        self.status = status
        self.reason = reason
        self.headers = headers    # lower-cased name -> value (repeats joined with ", ")
        self.body = body          # de-chunked body
        self.complete = complete  # the framing said the body is all there
        self.rest = rest          # bytes after this response (a pipelined answer, or junk)
        self.head = head          # the raw head, without the blank line

    def __repr__(self):
        return "<%d %s %r body=%r%s complete=%s rest=%r>" % (
            self.status, self.reason, self.headers, self.body[:200],
            "..." if len(self.body) > 200 else "", self.complete, self.rest[:200])


def dechunk(data):
    """(body, complete, rest) of a chunked body at the start of data."""
    body = []
    pos = 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return b"".join(body), False, b""
        size_text = data[pos:eol].split(b";")[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return b"".join(body), False, b""
        pos = eol + 2
        if size == 0:
            # trailers until an empty line
            while True:
                eol = data.find(b"\r\n", pos)
                if eol < 0:
                    return b"".join(body), False, b""
                line = data[pos:eol]
                pos = eol + 2
                if not line:
                    return b"".join(body), True, data[pos:]
        if len(data) < pos + size + 2:
            body.append(data[pos:pos + size])
            return b"".join(body), False, b""
        body.append(data[pos:pos + size])
        pos += size + 2


def parse_response(raw, method="GET"):
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        raise AssertionError("no complete response head in %r" % raw[:500])
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise AssertionError("bad status line %r" % lines[0])
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        headers[key] = headers[key] + ", " + value.strip() if key in headers else value.strip()
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return Resp(status, reason, headers, b"", True, rest, head)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body, complete, after = dechunk(rest)
        return Resp(status, reason, headers, body, complete, after, head)
    if "content-length" in headers:
        n = int(headers["content-length"])
        return Resp(status, reason, headers, rest[:n], len(rest) >= n, rest[n:], head)
    return Resp(status, reason, headers, rest, True, b"", head)  # close-delimited


def request_bytes(method, path, headers=(), body=b"", host="127.0.0.1", close=True,
                  version="HTTP/1.1"):
    lines = ["%s %s %s" % (method, path, version)]
    if host is not None:
        lines.append("Host: %s" % host)
    lines.extend("%s: %s" % h for h in headers)
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked_body(body, size):
    out = []
    for i in range(0, len(body), size):
        piece = body[i:i + size]
        out.append(b"%x\r\n" % len(piece) + piece + b"\r\n")
    out.append(b"0\r\n\r\n")
    return b"".join(out)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------
# The tests, run once per worker class

class Pep3333Tests:
    WORKER_ARGS = ()
    MULTITHREAD = False
    KEEPALIVE = True  # the worker keeps connections after a response (not sync)

    # -- helpers -------------------------------------------------------------------------------
    def serve(self, case, args=(), workers=1):
        return self.start_server(case + ":application", list(self.WORKER_ARGS) + list(args),
                                 workers=workers, cwd=PEP_DIR)

    def raw(self, server, data, method="GET", timeout=REQUEST_TIMEOUT):
        """Send data, read until the server closes, parse the first response."""
        try:
            raw = raw_exchange(server.address, data, timeout=timeout)
        except Exception as exc:
            raise AssertionError("raw exchange failed: %r\n%s" % (exc, server.describe())) from exc
        try:
            return parse_response(raw, method)
        except AssertionError as exc:
            raise AssertionError("%s\n%s" % (exc, server.describe())) from None

    def env_of(self, server, path="/", **kw):
        status, _, body, _ = self.get(server, path, **kw)
        self.assertEqual(status, 200, server.describe())
        return json.loads(body)

    def pid_of(self, server):
        status, _, body, _ = self.get(server, "/pid")
        self.assertEqual(status, 200, server.describe())
        return int(body)

    def marker(self):
        return os.path.join(self.make_tmpdir(), "marker")

    def assertMarker(self, server, path, line, timeout=5.0):
        def seen():
            try:
                with open(path) as f:
                    return line in f.read().splitlines()
            except FileNotFoundError:
                return False
        if not wait_for(seen, timeout):
            content = open(path).read() if os.path.exists(path) else "<no marker file>"
            self.fail("close() not called: %r not in the marker within %ss (marker: %r)\n%s"
                      % (line, timeout, content, server.describe()))

    def make_file(self, size):
        path = os.path.join(self.make_tmpdir(), "payload.bin")
        data = os.urandom(size)
        with open(path, "wb") as f:
            f.write(data)
        return path, data

    # -- environ -------------------------------------------------------------------------------
    def test_environ_cgi_variables(self):
        server = self.serve("environ_dump")
        port = server.address[1]
        with socket.create_connection(server.address, timeout=REQUEST_TIMEOUT) as sock:
            client_port = sock.getsockname()[1]
            sock.sendall(request_bytes("GET", "/some/path?x=%20y&z", host="127.0.0.1:%d" % port,
                                       headers=[("X-Custom-Header", "v1"),
                                                ("Accept", "text/plain")]))
            raw = b""
            deadline = time.monotonic() + REQUEST_TIMEOUT
            while time.monotonic() < deadline:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                raw += chunk
        resp = parse_response(raw)
        self.assertEqual(resp.status, 200, server.describe())
        env = json.loads(resp.body)
        expected = {
            "REQUEST_METHOD": "GET",
            "SCRIPT_NAME": "",
            "PATH_INFO": "/some/path",
            "QUERY_STRING": "x=%20y&z",
            "RAW_URI": "/some/path?x=%20y&z",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_PORT": str(client_port),
            "HTTP_HOST": "127.0.0.1:%d" % port,
            "HTTP_X_CUSTOM_HEADER": "v1",
            "HTTP_ACCEPT": "text/plain",
        }
        self.assertEqual({k: env.get(k) for k in expected}, expected)

    def test_environ_wsgi_entries(self):
        server = self.serve("environ_dump")
        env = self.env_of(server)
        expected = {
            "wsgi.version": "(1, 0)",
            "wsgi.version.type": "tuple",
            "wsgi.url_scheme": "http",
            "wsgi.multithread": self.MULTITHREAD,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
            "wsgi.input.has_read": True,
            "wsgi.errors.has_write": True,
            "wsgi.file_wrapper.present": True,
            "wsgi.file_wrapper.callable": True,
        }
        self.assertEqual({k: env.get(k) for k in expected}, expected)

    def test_environ_multiprocess_with_two_workers(self):
        server = self.serve("environ_dump", workers=2)
        env = self.env_of(server)
        self.assertIs(env["wsgi.multiprocess"], True)
        self.assertEqual(env["wsgi.multithread"], self.MULTITHREAD)

    def test_environ_post_content_type_and_length(self):
        server = self.serve("environ_dump")
        env = self.env_of(server, "/form", method="POST", body=b"a=1&b=2",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual((env.get("REQUEST_METHOD"), env.get("CONTENT_TYPE"),
                          env.get("CONTENT_LENGTH")),
                         ("POST", "application/x-www-form-urlencoded", "7"))
        self.assertNotIn("HTTP_CONTENT_TYPE", env)
        self.assertNotIn("HTTP_CONTENT_LENGTH", env)

    def test_environ_path_info_percent_decoded_as_latin1(self):
        server = self.serve("environ_dump")
        env = self.env_of(server, "/caf%C3%A9/a%20b?q=%C3%A9")
        # The UTF-8 bytes of "é" decoded one byte per character (PEP 3333's latin-1 rule).
        self.assertEqual(env["PATH_INFO"], "/caf\u00c3\u00a9/a b")
        self.assertEqual(env["RAW_URI"], "/caf%C3%A9/a%20b?q=%C3%A9")
        self.assertEqual(env["QUERY_STRING"], "q=%C3%A9")
        self.assertEqual(env["PATH_INFO"].encode("latin-1").decode("utf-8"), "/caf\u00e9/a b")

    def test_environ_script_name_from_process_environment(self):
        server = self.serve("environ_dump", ["-e", "SCRIPT_NAME=/app"])
        env = self.env_of(server, "/app/x/y?q=1")
        self.assertEqual((env.get("SCRIPT_NAME"), env.get("PATH_INFO"), env.get("QUERY_STRING"),
                          env.get("RAW_URI")), ("/app", "/x/y", "q=1", "/app/x/y?q=1"))

    def test_environ_http10_without_host(self):
        server = self.serve("environ_dump")
        resp = self.raw(server, b"GET /old HTTP/1.0\r\n\r\n")
        self.assertEqual(resp.status, 200, server.describe())
        env = json.loads(resp.body)
        self.assertEqual((env.get("SERVER_PROTOCOL"), env.get("PATH_INFO"),
                          env.get("SERVER_NAME"), env.get("SERVER_PORT")),
                         ("HTTP/1.0", "/old", "127.0.0.1", str(server.address[1])))

    def test_wsgi_errors_reaches_the_error_log(self):
        server = self.serve("environ_dump")
        probe = "wsgi-errors-probe-%s" % uuid.uuid4().hex
        self.env_of(server, "/?errors=" + probe)
        server.wait_log(re.escape(probe), timeout=5)

    # -- start_response ------------------------------------------------------------------------
    def test_exc_info_replaces_status_and_headers_before_sending(self):
        server = self.serve("exc_info_replace")
        status, headers, body, _ = self.get(server, "/")
        self.assertEqual((status, headers.get("x-which"), body),
                         (503, "second", b"second response"), server.describe())

    def test_exc_info_after_headers_reraises_and_cuts_the_connection(self):
        server = self.serve("exc_info_late")
        pid = self.pid_of(server)
        resp = self.raw(server, request_bytes("GET", "/late", close=False), timeout=8)
        self.assertEqual(resp.status, 200, server.describe())
        self.assertIn(b"first chunk;", resp.body)
        self.assertNotIn(b"must never be sent", resp.body)
        self.assertFalse(resp.complete, "the response was completed instead of cut: %r\n%s"
                         % (resp, server.describe()))
        # start_response re-raised the app's exception, which ended the generator
        server.wait_log(r"ValueError: late failure after the headers were sent", timeout=5)
        self.assertEqual(self.pid_of(server), pid, server.describe())

    def test_start_response_twice_without_exc_info_is_500(self):
        server = self.serve("start_response_twice")
        status, _, body, _ = self.get(server, "/")
        self.assertEqual(status, 500, server.describe())
        self.assertNotIn(b"should not be sent", body)

    def test_write_callable_comes_before_the_iterable(self):
        server = self.serve("write_callable")
        status, _, body, _ = self.get(server, "/")
        self.assertEqual((status, body),
                         (200, b"from-write-1;from-write-2;from-iterable-1;from-iterable-2"),
                         server.describe())

    def test_generator_result_http11_is_chunked(self):
        server = self.serve("generator_body")
        resp = self.raw(server, request_bytes("GET", "/?n=20"))
        expected = b"".join((b"%d:" % i) + b"g" * (i * 100) + b";" for i in range(20))
        self.assertEqual(resp.status, 200, server.describe())
        self.assertIn("chunked", resp.headers.get("transfer-encoding", ""), resp)
        self.assertTrue(resp.complete, resp)
        self.assertEqual(resp.body, expected)

    def test_generator_result_http10_is_close_delimited(self):
        server = self.serve("generator_body")
        resp = self.raw(server, b"GET /?n=20 HTTP/1.0\r\n\r\n")
        expected = b"".join((b"%d:" % i) + b"g" * (i * 100) + b";" for i in range(20))
        self.assertEqual(resp.status, 200, server.describe())
        self.assertNotIn("transfer-encoding", resp.headers)
        self.assertEqual(resp.body, expected)

    def test_close_called_after_a_normal_response(self):
        marker = self.marker()
        server = self.serve("close_called", ["-e", "MARKER=" + marker])
        status, _, body, _ = self.get(server, "/ok?tag=normal")
        self.assertEqual((status, body), (200, b"chunk1;chunk2;chunk3;"), server.describe())
        self.assertMarker(server, marker, "closed normal")

    def test_close_called_on_head(self):
        marker = self.marker()
        server = self.serve("close_called", ["-e", "MARKER=" + marker])
        resp = self.raw(server, request_bytes("HEAD", "/ok?tag=head"), method="HEAD")
        self.assertEqual((resp.status, resp.rest), (200, b""), server.describe())
        self.assertMarker(server, marker, "closed head")

    def test_close_called_when_iteration_raises_before_the_first_chunk(self):
        marker = self.marker()
        server = self.serve("close_called", ["-e", "MARKER=" + marker])
        status, _, _, _ = self.get(server, "/raise-first?tag=raise-first")
        self.assertEqual(status, 500, server.describe())
        self.assertMarker(server, marker, "closed raise-first")

    def test_close_called_when_iteration_raises_after_the_first_chunk(self):
        marker = self.marker()
        server = self.serve("close_called", ["-e", "MARKER=" + marker])
        resp = self.raw(server, request_bytes("GET", "/raise-later?tag=raise-later", close=False),
                        timeout=8)
        self.assertEqual(resp.status, 200, server.describe())
        self.assertFalse(resp.complete, resp)
        self.assertMarker(server, marker, "closed raise-later")

    def test_close_called_when_the_client_disconnects(self):
        marker = self.marker()
        server = self.serve("close_called", ["-e", "MARKER=" + marker])
        with socket.create_connection(server.address, timeout=REQUEST_TIMEOUT) as sock:
            sock.sendall(request_bytes("GET", "/forever?tag=gone", close=False))
            got = b""
            deadline = time.monotonic() + REQUEST_TIMEOUT
            while len(got) < 4096 and time.monotonic() < deadline:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                got += chunk
            self.assertTrue(got.startswith(b"HTTP/1.1 200"), "%r\n%s" % (got[:300],
                                                                         server.describe()))
        # The generator keeps yielding; the server must notice the closed socket and close().
        self.assertMarker(server, marker, "closed gone", timeout=5)
        self.assertTrue(server.workers(), server.describe())

    def test_header_value_with_crlf_is_refused(self):
        server = self.serve("header_crlf")
        resp = self.raw(server, request_bytes("GET", "/"))
        self.assertEqual(resp.status, 500, server.describe())
        self.assertNotIn(b"X-Injected", resp.head)
        self.assertNotIn(b"should not be sent", resp.body)

    def test_non_latin1_header_value_is_refused(self):
        server = self.serve("header_nonlatin1")
        status, headers, body, _ = self.get(server, "/")
        self.assertEqual(status, 500, server.describe())
        self.assertNotIn("x-snowman", headers)

    def test_status_without_reason_phrase_is_refused(self):
        server = self.serve("status_no_reason")
        status, _, body, _ = self.get(server, "/")
        self.assertEqual(status, 500, server.describe())
        self.assertNotIn(b"should not be sent", body)

    def test_iterable_advanced_in_the_thread_state_of_the_app_call(self):
        # Not PEP 3333 text, but what Gunicorn does and what Flask's stream_with_context and
        # thread-local / contextvar state in apps rely on.
        server = self.serve("thread_affinity")
        status, _, body, _ = self.get(server, "/?tok")
        self.assertEqual(status, 200, server.describe())
        seen = json.loads(body.strip())
        expected = [{"same_thread": True, "local": True, "contextvar": True}] * 5
        self.assertEqual(seen, expected, "per-step view of the generator: same OS thread, "
                         "threading.local and ContextVar set by the app still visible")

    # -- application errors --------------------------------------------------------------------
    def test_exception_before_the_response_is_500_and_worker_survives(self):
        server = self.serve("error_before_start")
        workers = server.workers()
        pid = self.pid_of(server)
        status, _, body, _ = self.get(server, "/boom")
        self.assertEqual(status, 500, server.describe())
        self.assertNotIn(b"Traceback", body)  # no traceback for the client
        server.wait_log(r"Traceback \(most recent call last\)", timeout=5)
        server.wait_log(r"RuntimeError: error_before_start: boom before the response started",
                        timeout=5)
        self.assertEqual(self.pid_of(server), pid, server.describe())
        self.assertEqual(server.workers(), workers, server.describe())

    def test_exception_after_the_headers_cuts_the_connection_and_worker_survives(self):
        server = self.serve("error_after_start")
        workers = server.workers()
        pid = self.pid_of(server)
        resp = self.raw(server, request_bytes("GET", "/boom", close=False), timeout=8)
        self.assertEqual(resp.status, 200, server.describe())
        self.assertIn(b"partial body;", resp.body)
        self.assertFalse(resp.complete, "the response was completed instead of cut: %r\n%s"
                         % (resp, server.describe()))
        server.wait_log(r"RuntimeError: error_after_start: boom after the headers went out",
                        timeout=5)
        self.assertEqual(self.pid_of(server), pid, server.describe())
        self.assertEqual(server.workers(), workers, server.describe())

    # -- wsgi.input ----------------------------------------------------------------------------
    def input_both_ways(self, server, app_path, body=LINES_BODY):
        """The app's JSON answer for body sent with Content-Length, then sent chunked (in
        7-byte chunks, which split lines)."""
        docs = {}
        status, _, raw, _ = self.get(server, app_path, method="POST", body=body,
                                     headers={"Content-Type": "text/plain"})
        self.assertEqual(status, 200, server.describe())
        docs["content-length"] = json.loads(raw)
        resp = self.raw(server, request_bytes("POST", app_path,
                                              headers=[("Transfer-Encoding", "chunked"),
                                                       ("Content-Type", "text/plain")],
                                              body=chunked_body(body, 7)))
        self.assertEqual(resp.status, 200, "%r\n%s" % (resp, server.describe()))
        docs["chunked"] = json.loads(resp.body)
        return docs

    def check_parts(self, docs, expected_parts=None, max_len=None, lines=False,
                    body=LINES_BODY):
        for framing, doc in docs.items():
            with self.subTest(framing=framing):
                parts = [p.encode("latin-1") for p in doc["parts"]]
                self.assertEqual(b"".join(parts), body, doc)
                self.assertEqual(doc["types"], ["bytes"], doc)
                self.assertEqual(doc["after"], ["", ""], "reading past the end: %r" % doc)
                if expected_parts is not None:
                    self.assertEqual(parts, expected_parts)
                if max_len is not None:
                    self.assertTrue(all(0 < len(p) <= max_len for p in parts), parts)
                if lines:
                    # each piece ends at a newline, or is max_len long, or is the tail
                    for p in parts[:-1]:
                        self.assertTrue(p.endswith(b"\n") or len(p) == max_len, parts)

    def test_input_read_n(self):
        server = self.serve("input_methods")
        self.check_parts(self.input_both_ways(server, "/read-n?n=4"), max_len=4)

    def test_input_read_all_and_read_minus_one(self):
        server = self.serve("input_read_all")
        for path in ("/read", "/read-m1"):
            for framing, doc in self.input_both_ways(server, path).items():
                with self.subTest(path=path, framing=framing):
                    self.assertEqual((doc["body"].encode("latin-1"), doc["type"], doc["after"]),
                                     (LINES_BODY, "bytes", ["", ""]))
        # No body at all: read() gives b"" at once.
        status, _, raw, _ = self.get(server, "/read")
        self.assertEqual(status, 200, server.describe())
        self.assertEqual(json.loads(raw), {"body": "", "type": "bytes", "after": ["", ""]})

    def test_input_readline(self):
        server = self.serve("input_methods")
        self.check_parts(self.input_both_ways(server, "/readline"),
                         expected_parts=LINES_BODY.splitlines(keepends=True))

    def test_input_readline_with_size(self):
        server = self.serve("input_methods")
        docs = self.input_both_ways(server, "/readline-n?n=5")
        expected = []
        for line in LINES_BODY.splitlines(keepends=True):
            expected.extend(line[i:i + 5] for i in range(0, len(line), 5))
        self.check_parts(docs, expected_parts=expected, max_len=5, lines=True)

    def test_input_readlines(self):
        server = self.serve("input_methods")
        self.check_parts(self.input_both_ways(server, "/readlines"),
                         expected_parts=LINES_BODY.splitlines(keepends=True))

    def test_input_iteration(self):
        server = self.serve("input_methods")
        self.check_parts(self.input_both_ways(server, "/iter"),
                         expected_parts=LINES_BODY.splitlines(keepends=True))

    def test_input_read_past_the_end(self):
        server = self.serve("input_methods")
        self.check_parts(self.input_both_ways(server, "/read-past"),
                         expected_parts=[LINES_BODY])

    def test_input_5mb_content_length_body_intact(self):
        server = self.serve("input_hash")
        body = os.urandom(5 * 1024 * 1024)
        status, _, raw, _ = self.get(server, "/", method="POST", body=body, timeout=30)
        self.assertEqual(status, 200, server.describe())
        doc = json.loads(raw)
        self.assertEqual((doc["length"], doc["sha256"], doc["content_length"]),
                         (len(body), sha256(body), str(len(body))))

    def test_input_5mb_chunked_body_intact(self):
        server = self.serve("input_hash")
        body = os.urandom(5 * 1024 * 1024)
        resp = self.raw(server, request_bytes("POST", "/",
                                              headers=[("Transfer-Encoding", "chunked")],
                                              body=chunked_body(body, 65536 + 17)), timeout=30)
        self.assertEqual(resp.status, 200, "%r\n%s" % (resp, server.describe()))
        doc = json.loads(resp.body)
        self.assertEqual((doc["length"], doc["sha256"]), (len(body), sha256(body)))

    # -- wsgi.file_wrapper ---------------------------------------------------------------------
    def wait_closed(self, server, expected_count):
        def closed():
            status, _, raw, _ = self.get(server, "/closed")
            doc = json.loads(raw) if status == 200 else None
            if doc and len(doc) == expected_count and all(
                    d if isinstance(d, bool) else d["closed"] for d in doc):
                return doc
            return None
        doc = wait_for(closed, 5.0, interval=0.1)
        if doc is None:
            _, _, raw, _ = self.get(server, "/closed")
            self.fail("the file wrapper's close() was not called: /closed says %s\n%s"
                      % (raw.decode(errors="replace"), server.describe()))
        return doc

    def test_file_wrapper_real_file_with_content_length(self):
        server = self.serve("file_wrapper_file")
        path, data = self.make_file(3 * 1024 * 1024 + 123)
        status, headers, body, _ = self.get(server, "/file?cl=1&path=" + path, timeout=30)
        self.assertEqual(status, 200, server.describe())
        self.assertEqual(headers.get("content-length"), str(len(data)))
        self.assertEqual((len(body), sha256(body)), (len(data), sha256(data)))
        self.wait_closed(server, 1)

    def test_file_wrapper_real_file_without_content_length(self):
        server = self.serve("file_wrapper_file")
        path, data = self.make_file(1024 * 1024 + 7)
        status, headers, body, _ = self.get(server, "/file?path=" + path, timeout=30)
        self.assertEqual(status, 200, server.describe())
        self.assertEqual((len(body), sha256(body)), (len(data), sha256(data)))
        self.wait_closed(server, 1)

    def exchange_on_one_connection(self, server, requests):
        """Send each (method, path) in turn and read its response (framed by Content-Length)
        before the next: all on one connection where the worker keeps connections (gthread,
        uv), a new connection after each response that says close (sync). Returns the Resps;
        each one's `rest` is what came after it before the next request was sent."""
        out = []
        sock = None
        try:
            for method, path in requests:
                if sock is None:
                    sock = socket.create_connection(server.address, timeout=REQUEST_TIMEOUT)
                sock.sendall(request_bytes(method, path, close=False))
                raw = b""
                while b"\r\n\r\n" not in raw:
                    chunk = sock.recv(65536)
                    self.assertTrue(chunk, "closed before a response head to %s %s: %r\n%s"
                                    % (method, path, raw[:300], server.describe()))
                    raw += chunk
                head = parse_response(raw, "HEAD").head.decode("latin-1").lower()
                match = re.search(r"\r\ncontent-length: *(\d+)", head)
                self.assertIsNotNone(match, "%s %s: no Content-Length in %r" % (method, path, head))
                want = len(head) + 4 + (0 if method == "HEAD" else int(match.group(1)))
                while len(raw) < want:
                    chunk = sock.recv(1 << 20)
                    self.assertTrue(chunk, "%s %s: the body was cut at %d of %d bytes\n%s"
                                    % (method, path, len(raw), want, server.describe()))
                    raw += chunk
                time.sleep(0.05)  # bytes beyond the framing would arrive by now
                sock.setblocking(False)
                try:
                    extra = sock.recv(65536)
                except BlockingIOError:
                    extra = None  # nothing more, the connection is open
                sock.settimeout(REQUEST_TIMEOUT)
                resp = parse_response(raw + (extra or b""), method)
                out.append(resp)
                self.assertIn(extra, (None, b""), "%s %s: bytes after the response: %r\n%s"
                              % (method, path, (extra or b"")[:200], server.describe()))
                if "close" in resp.headers.get("connection", "").lower() or extra == b"":
                    if self.KEEPALIVE:
                        self.fail("%s %s: the connection was not kept after a file response:"
                                  " %r\n%s" % (method, path, resp, server.describe()))
                    sock.close()
                    sock = None
        finally:
            if sock is not None:
                sock.close()
        return out

    def check_file_responses(self, server):
        """A file, its HEAD, a part of it, a non-regular file and the next request, one after
        the other (on one connection when the worker keeps it): each answer byte for byte."""
        path, data = self.make_file(2 * 1024 * 1024 + 13)
        full, head, part, dev, small = self.exchange_on_one_connection(server, [
            ("GET", "/file?cl=1&path=" + path),
            ("HEAD", "/file?cl=1&path=" + path),
            ("GET", "/file?offset=1000&length=5000&path=" + path),
            ("GET", "/file?length=100000&path=/dev/zero"),
            ("GET", "/closed"),
        ])
        self.assertEqual((full.status, full.headers.get("content-length")),
                         (200, str(len(data))), server.describe())
        self.assertEqual((len(full.body), sha256(full.body)), (len(data), sha256(data)))
        self.assertEqual((head.status, head.headers.get("content-length"), head.rest),
                         (200, str(len(data)), b""), server.describe())
        # the app seeked to 1000 and said 5000 bytes: that slice, not the file's remainder
        self.assertEqual((part.status, part.headers.get("content-length")), (200, "5000"))
        self.assertEqual(sha256(part.body), sha256(data[1000:6000]), server.describe())
        # /dev/zero is no regular file: read in blocks, cut at the Content-Length
        self.assertEqual((dev.status, dev.headers.get("content-length"), dev.body),
                         (200, "100000", bytes(100000)), server.describe())
        self.assertEqual(small.status, 200, server.describe())
        self.wait_closed(server, 4)

    def test_file_wrapper_head_partial_non_regular_and_keep_alive(self):
        self.check_file_responses(self.serve("file_wrapper_file"))

    def test_file_wrapper_without_sendfile_same_bytes(self):
        self.check_file_responses(self.serve("file_wrapper_file", ["--no-sendfile"]))

    def test_file_wrapper_over_bytesio_reads_blocks(self):
        server = self.serve("file_wrapper_bytesio")
        path, data = self.make_file(1024 * 1024 + 5)
        status, headers, body, _ = self.get(server, "/file?path=" + path, timeout=30)
        self.assertEqual(status, 200, server.describe())
        self.assertEqual((len(body), sha256(body)), (len(data), sha256(data)))
        doc = self.wait_closed(server, 1)
        reads = doc[0]["reads"]
        self.assertGreater(len(reads), 1, "the BytesIO was not read in blocks: %r" % reads)
        self.assertTrue(all(isinstance(n, int) and 0 < n <= 256 * 1024 for n in reads),
                        "reads were not block-sized: %r" % reads[:20])

    # -- bodies the server must drop or cut ----------------------------------------------------
    def pipelined(self, server, first, method="GET"):
        """Send `first` (keep-alive) and a second request (Connection: close) at once. Returns
        the first response; its `rest` must be either nothing (the server closed after it) or
        exactly the second response, which proves no stray body bytes were sent."""
        second = request_bytes("GET", "/", close=True)
        resp = self.raw(server, first + second, method=method)
        if resp.rest:
            self.assertTrue(resp.rest.startswith(b"HTTP/1.1 "),
                            "bytes after the first response are not the next response: %r\n%s"
                            % (resp, server.describe()))
            self.assertNotIn("close", resp.headers.get("connection", "").lower(), resp)
        return resp

    def test_head_has_content_length_but_no_body(self):
        server = self.serve("head_body")
        status, headers, body, _ = self.get(server, "/length")
        self.assertEqual((status, headers.get("content-length"), len(body)), (200, "1234", 1234))
        resp = self.pipelined(server, request_bytes("HEAD", "/length", close=False), "HEAD")
        self.assertEqual((resp.status, resp.headers.get("content-length")), (200, "1234"),
                         server.describe())

    def test_head_of_a_generator_has_no_body(self):
        server = self.serve("head_body")
        resp = self.raw(server, request_bytes("HEAD", "/generator"), method="HEAD")
        self.assertEqual((resp.status, resp.rest), (200, b""), server.describe())
        resp = self.pipelined(server, request_bytes("HEAD", "/generator", close=False), "HEAD")
        self.assertEqual(resp.status, 200)

    def test_204_has_no_body(self):
        server = self.serve("no_body_status")
        resp = self.raw(server, request_bytes("GET", "/204"))
        self.assertEqual((resp.status, resp.rest), (204, b""), server.describe())
        self.assertNotIn("content-length", resp.headers)
        self.assertNotIn("transfer-encoding", resp.headers)
        self.assertEqual(resp.headers.get("x-empty"), "yes")
        self.pipelined(server, request_bytes("GET", "/204", close=False))

    def test_304_has_no_body(self):
        server = self.serve("no_body_status")
        resp = self.raw(server, request_bytes("GET", "/304"))
        self.assertEqual((resp.status, resp.rest), (304, b""), server.describe())
        self.assertNotIn("transfer-encoding", resp.headers)
        self.assertEqual(resp.headers.get("etag"), '"v1"')
        self.pipelined(server, request_bytes("GET", "/304", close=False))

    def test_fewer_bytes_than_content_length_truncates_and_closes(self):
        # A long keep-alive so that a connection left open is not closed by the idle timer.
        server = self.serve("short_body", ["--keep-alive", "30"])
        for path, expected in (("/list", b"s" * 40),
                               ("/generator", b"".join(b"%d" % i * 10 for i in range(4)))):
            with self.subTest(path=path):
                with socket.create_connection(server.address, timeout=REQUEST_TIMEOUT) as sock:
                    sock.settimeout(5)
                    sock.sendall(request_bytes("GET", path, close=False))
                    raw = b""
                    closed = False
                    deadline = time.monotonic() + 5
                    while time.monotonic() < deadline:
                        try:
                            chunk = sock.recv(65536)
                        except socket.timeout:
                            break
                        except ConnectionResetError:
                            closed = True
                            break
                        if not chunk:
                            closed = True
                            break
                        raw += chunk
                resp = parse_response(raw)
                self.assertEqual((resp.status, resp.headers.get("content-length")),
                                 (200, "100"), server.describe())
                self.assertEqual(resp.body, expected)
                self.assertFalse(resp.complete)
                self.assertTrue(closed, "the connection stayed open after a truncated body\n%s"
                                % server.describe())

    def test_iteration_stops_at_the_content_length(self):
        server = self.serve("long_body")
        for path in ("/exact", "/endless"):
            with self.subTest(path=path):
                resp = self.pipelined(server, request_bytes("GET", path, close=False))
                self.assertEqual((resp.status, resp.headers.get("content-length"), resp.body),
                                 (200, "10", b"0123456789"), server.describe())
        # the endless one was closed, not pulled forever; the exact one ran past its last yield
        def finished():
            status, _, raw, _ = self.get(server, "/finished")
            doc = json.loads(raw) if status == 200 else None
            return doc if doc == {"exact_finished": 1, "endless_closed": 1} else None
        self.assertIsNotNone(wait_for(finished, 5.0, interval=0.1),
                             "%s\n%s" % (self.get(server, "/finished")[2], server.describe()))

    def test_more_bytes_than_content_length_are_not_sent(self):
        server = self.serve("long_body")
        for path in ("/list", "/generator"):
            with self.subTest(path=path):
                resp = self.raw(server, request_bytes("GET", path))
                self.assertEqual((resp.status, resp.headers.get("content-length"), resp.body,
                                  resp.rest), (200, "10", b"0123456789", b""), server.describe())
                resp = self.pipelined(server, request_bytes("GET", path, close=False))
                self.assertEqual(resp.body, b"0123456789")


class Sync(Pep3333Tests, AlicornTestCase):
    WORKER_ARGS = ("-k", "sync")
    MULTITHREAD = False
    KEEPALIVE = False


class Gthread(Pep3333Tests, AlicornTestCase):
    WORKER_ARGS = ("-k", "gthread", "--threads", "4")
    MULTITHREAD = True


class Uv(Pep3333Tests, AlicornTestCase):
    WORKER_ARGS = ("-k", "uv")
    MULTITHREAD = False


if __name__ == "__main__":
    unittest.main()
