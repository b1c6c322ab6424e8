"""The uwsgi protocol (--protocol uwsgi) behind a real nginx (`include uwsgi_params;
uwsgi_pass`), started by the test on loopback, on every worker class: a GET with a query, a 1 MB
POST, a 6 KB cookie, HTTPS -> wsgi.url_scheme, a body without a length; raw malformed packets and
an untrusted peer close the connection with a log line and the worker keeps serving; unix-socket
peers are always allowed; bad settings stop the start."""

import hashlib
import http.client
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import time
import unittest

from harness import START_TIMEOUT, AlicornTestCase, can_connect, free_port, run_alicorn

APP = "uwsgi_env:app"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
UWSGI_PARAMS = "/etc/nginx/uwsgi_params"

NGINX_CONF = """
worker_processes 1;
daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_max_body_size 8m;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    server {{
        listen 127.0.0.1:{http_port};
        listen 127.0.0.1:{https_port} ssl;
        server_name example.test;
        ssl_certificate {cert_dir}/cert.pem;
        ssl_certificate_key {cert_dir}/key.pem;
        location / {{
            include {params};
            uwsgi_pass 127.0.0.1:{app_port};
        }}
        location /forced/ {{
            include {params};
            uwsgi_param UWSGI_SCHEME https;
            uwsgi_pass 127.0.0.1:{app_port};
        }}
        location /unix/ {{
            include {params};
            uwsgi_pass unix:{unix_path};
        }}
    }}
}}
"""

_CERT_DIR = None


def cert_dir():
    """A self-signed certificate, made once for the module."""
    global _CERT_DIR
    if _CERT_DIR is None:
        path = tempfile.mkdtemp(prefix="alicorn-uwsgi-cert-")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                        "-subj", "/CN=example.test", "-keyout", os.path.join(path, "key.pem"),
                        "-out", os.path.join(path, "cert.pem")],
                       check=True, capture_output=True, timeout=60)
        _CERT_DIR = path
    return _CERT_DIR


def tearDownModule():
    if _CERT_DIR:
        shutil.rmtree(_CERT_DIR, True)


def packet(variables, modifier1=0, modifier2=0, datasize=None):
    data = b"".join(struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v
                    for k, v in variables)
    size = len(data) if datasize is None else datasize
    return bytes([modifier1]) + struct.pack("<H", size) + bytes([modifier2]) + data


def raw(address, data, timeout=20):
    """Send bytes, read until the server closes; returns what it sent."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family) as s:
        s.settimeout(timeout)
        s.connect(address)
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out


class NginxProcess:
    def __init__(self, argv, prefix):
        self.log_path = os.path.join(prefix, "nginx.out")
        self.log_file = open(self.log_path, "wb")
        self.prefix = prefix
        self.proc = subprocess.Popen(argv, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def log(self):
        text = ""
        for name in ("nginx.out", "error.log"):
            try:
                with open(os.path.join(self.prefix, name), "rb") as f:
                    text += f.read().decode(errors="replace")
            except FileNotFoundError:
                pass
        return text

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.log_file.close()


class UwsgiMixin:
    WORKER_ARGS = ()
    ALLOW = ()

    def setUp(self):
        super().setUp()
        prefix = self.make_tmpdir()
        self.unix_path = os.path.join(prefix, "app.sock")
        self.server = self.start_server(APP, list(self.WORKER_ARGS) + list(self.ALLOW) + [
            "--protocol", "uwsgi", "-b", "unix:" + self.unix_path])
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(prefix, "tmp", sub))
        self.http_port, self.https_port = free_port(), free_port()
        conf = os.path.join(prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(prefix=prefix, cert_dir=cert_dir(), params=UWSGI_PARAMS,
                                      app_port=self.server.address[1], unix_path=self.unix_path,
                                      http_port=self.http_port, https_port=self.https_port))
        self.nginx = NginxProcess([NGINX, "-p", prefix + "/", "-c", conf, "-e",
                                   os.path.join(prefix, "error.log")], prefix)
        self.addCleanup(self.nginx.stop)
        deadline = time.monotonic() + START_TIMEOUT
        while not can_connect(("127.0.0.1", self.http_port)):
            if self.nginx.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("nginx did not start:\n%s" % self.nginx.log())
            time.sleep(0.05)

    def fetch(self, path, method="GET", body=None, headers=None, tls=False):
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection("127.0.0.1", self.https_port, timeout=30,
                                               context=ctx)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def fetch_json(self, path, **kw):
        status, headers, body = self.fetch(path, **kw)
        self.assertEqual(status, 200, "%r\n%s\n%s" % (body[:500], self.server.describe(),
                                                      self.nginx.log()))
        return json.loads(body)

    def assertServes(self):
        doc = self.fetch_json("/still?ok=1")
        self.assertEqual(doc["QUERY_STRING"], "ok=1")


class UwsgiBehindNginx(UwsgiMixin):
    def test_get_with_query(self):
        doc = self.fetch_json("/a%20b/c?x=1&y=%20z", headers={"X-Custom-Thing": "v"})
        self.assertEqual(doc["REQUEST_METHOD"], "GET")
        self.assertEqual(doc["PATH_INFO"], "/a b/c")
        self.assertEqual(doc["QUERY_STRING"], "x=1&y=%20z")
        self.assertEqual(doc["RAW_URI"], "/a%20b/c?x=1&y=%20z")
        self.assertEqual(doc["SERVER_PROTOCOL"], "HTTP/1.1")
        self.assertEqual(doc["SERVER_NAME"], "example.test")
        self.assertEqual(doc["SERVER_PORT"], str(self.http_port))
        # Debian's uwsgi_params set HTTP_HOST to $host (no port), nginx then skips the client's.
        self.assertEqual(doc["HTTP_HOST"], "127.0.0.1")
        self.assertEqual(doc["HTTP_X_CUSTOM_THING"], "v")
        self.assertEqual(doc["REMOTE_ADDR"], "127.0.0.1")
        self.assertNotEqual(doc["REMOTE_PORT"], "", "the client's port, from nginx")
        self.assertEqual(doc["wsgi.url_scheme"], "http")
        self.assertEqual(doc["REQUEST_SCHEME"], "http", "other variables pass as they are")
        self.assertIn("DOCUMENT_ROOT", doc)
        self.assertEqual(doc["body_length"], 0)

    def test_post_1mb_body(self):
        body = os.urandom(1 << 20)
        doc = self.fetch_json("/upload", method="POST", body=body,
                              headers={"Content-Type": "application/octet-stream"})
        self.assertEqual(doc["REQUEST_METHOD"], "POST")
        self.assertEqual(doc["CONTENT_LENGTH"], str(len(body)))
        self.assertEqual(doc["CONTENT_TYPE"], "application/octet-stream")
        self.assertEqual(doc["body_length"], len(body))
        self.assertEqual(doc["body_sha256"], hashlib.sha256(body).hexdigest())

    def test_large_cookie(self):
        cookie = "session=" + "c" * (6 * 1024)
        doc = self.fetch_json("/big", headers={"Cookie": cookie})
        self.assertEqual(doc["HTTP_COOKIE"], cookie)

    def test_https_sets_url_scheme(self):
        doc = self.fetch_json("/secure?s=1", tls=True)
        self.assertEqual(doc["wsgi.url_scheme"], "https")
        self.assertEqual(doc["HTTPS"], "on")
        self.assertEqual(doc["SERVER_PORT"], str(self.https_port))
        doc = self.fetch_json("/forced/x")  # uwsgi_param UWSGI_SCHEME https
        self.assertEqual(doc["wsgi.url_scheme"], "https")
        self.assertNotIn("HTTPS", doc)

    def test_body_without_length_is_close_delimited(self):
        status, headers, body = self.fetch("/stream")
        self.assertEqual((status, body), (200, b"part1-part2-end"), self.nginx.log())

    def test_unix_socket(self):
        doc = self.fetch_json("/unix/u?q=1")
        self.assertEqual((doc["PATH_INFO"], doc["QUERY_STRING"]), ("/unix/u", "q=1"))

    def test_malformed_packets_close_the_connection(self):
        ok = packet([(b"REQUEST_METHOD", b"GET"), (b"REQUEST_URI", b"/raw?r=1"),
                     (b"HTTP_HOST", b"h"), (b"HTTPS", b"on")])
        reply = raw(self.server.address, ok)
        self.assertTrue(reply.startswith(b"HTTP/1.1 200 OK\r\n"), reply[:200])
        self.assertIn(b"Connection: close\r\n", reply)
        self.assertIn(b'"wsgi.url_scheme": "https"', reply)
        method = (b"REQUEST_METHOD", b"GET")
        cases = [
            (packet([method], modifier1=5), "modifier1 5 is not 0"),
            (packet([method], modifier2=1), "modifier2 1 is not 0"),
            (b"\x00\x08\x00\x00" + struct.pack("<H", 14) + b"REQUEST_METHOD" + b"\x09\x00",
             "variable 1 is truncated"),
            (packet([(b"HTTP_HOST", b"h")]), "no REQUEST_METHOD variable"),
            (packet([method, (b"HTTP_X", b"a\r\nX-Evil: 1")]), "holds a CR, LF or NUL"),
            (packet([method, (b"CONTENT_LENGTH", b"ten")]), "CONTENT_LENGTH 'ten'"),
        ]
        for n, (data, mention) in enumerate(cases, 1):
            self.assertEqual(raw(self.server.address, data), b"", mention)
            self.server.wait_log(r"Invalid uwsgi packet from ip=127\.0\.0\.1: .*%s.*; closing "
                                 r"the connection" % mention.replace("(", r"\("))
        # A header section over the HTTP limits is answered like HTTP (431), then closed.
        big = packet([method, (b"REQUEST_URI", b"/"), (b"HTTP_HOST", b"h"),
                      (b"HTTP_COOKIE", b"c" * 9000)])
        self.assertTrue(raw(self.server.address, big).startswith(b"HTTP/1.1 431 "))
        self.assertServes()
        self.assertIsNone(self.server.poll(), self.server.describe())


class UntrustedPeer(UwsgiMixin):
    ALLOW = ("--uwsgi-allow-ips", "10.9.9.0/24, 192.0.2.1")

    def test_untrusted_peer_is_refused_unix_is_not(self):
        status, _, _ = self.fetch("/tcp")
        self.assertEqual(status, 502, "nginx's TCP connection is refused")
        self.server.wait_log(r"uwsgi request from ip=127\.0\.0\.1 refused: the address is not "
                             r"in uwsgi_allow_ips; closing the connection")
        doc = self.fetch_json("/unix/ok")  # unix-socket peers are always allowed
        self.assertEqual(doc["PATH_INFO"], "/unix/ok")
        self.assertEqual(doc["REMOTE_ADDR"], "127.0.0.1", "the client nginx names")


class SyncUwsgi(UwsgiBehindNginx, AlicornTestCase):
    WORKER_ARGS = ("-k", "sync")


class GthreadUwsgi(UwsgiBehindNginx, AlicornTestCase):
    WORKER_ARGS = ("-k", "gthread", "--threads", "2")


class UvUwsgi(UwsgiBehindNginx, AlicornTestCase):
    WORKER_ARGS = ("-k", "uv")


class SyncUntrusted(UntrustedPeer, AlicornTestCase):
    WORKER_ARGS = ("-k", "sync")


class UvUntrusted(UntrustedPeer, AlicornTestCase):
    WORKER_ARGS = ("-k", "uv")


class UwsgiSettingsRefused(AlicornTestCase):
    def test_bad_values_stop_the_start(self):
        for args, mention in [(["--protocol", "fastcgi"], "protocol: 'fastcgi' is not a protocol"),
                              (["--uwsgi-allow-ips", "10.0.0.0/40"], "uwsgi_allow_ips")]:
            result = run_alicorn(args + ["--check-config", APP])
            self.assertRefused(result, mentions=[mention])

    def test_http_stays_the_default(self):
        server = self.start_server(APP)
        status, _, body, _ = self.get(server, "/plain?p=1")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["QUERY_STRING"], "p=1")


if __name__ == "__main__":
    unittest.main()
