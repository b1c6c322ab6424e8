"""alicorn behind proxies: forwarded headers (forwarded_allow_ips, secure_scheme_headers,
forwarder_headers, root_path) over raw sockets on every worker class; Django's is_secure() and
build_absolute_uri() behind a real nginx (terminating TLS with a certificate made at test time)
started by the test on loopback; the PROXY protocol v1 and v2 behind a real HAProxy
(send-proxy, send-proxy-v2), with the client on another loopback address so that REMOTE_ADDR
tells the PROXY header's address from HAProxy's own. Forged headers from an untrusted peer must
change nothing; a PROXY header that is malformed, missing or from an untrusted peer closes the
connection with a log line."""

import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import unittest

from harness import (APPS_DIR, START_TIMEOUT, AlicornTestCase, can_connect, free_port,
                     run_alicorn, server_env)

APP = "edge_env:app"
DJANGO_DIR = os.path.join(APPS_DIR, "django_edge")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def raw(address, data, source=None, timeout=10):
    """Send bytes (from `source` address when given), read until close; returns the bytes."""
    with socket.socket(socket.AF_UNIX if isinstance(address, str) else socket.AF_INET) as s:
        s.settimeout(timeout)
        if source:
            s.bind((source, 0))
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


def get(path="/", headers=(), host="example.test"):
    lines = [b"GET %s HTTP/1.1" % path.encode(), b"Host: " + host.encode(),
             b"Connection: close"] + [h.encode() for h in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def status_and_json(resp):
    head, _, body = resp.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    doc = None
    if status == 200:
        if b"transfer-encoding: chunked" in head.lower():
            size, _, rest = body.partition(b"\r\n")
            body = rest[:int(size, 16)]
        doc = json.loads(body)
    return status, doc


class ForwardedMixin:
    WORKER_ARGS = ()

    def serve(self, *args, env=None, unix=None):
        args = list(self.WORKER_ARGS) + list(args)
        if unix:
            server = self.spawn(["-b", "unix:" + unix, "-w", "1"] + args + [APP],
                                env=server_env(env))
            server.address = unix
            server.wait_listening(unix)
            server.wait_workers(1)
            return server
        return self.start_server(APP, args, env=server_env(env) if env else None)

    def ask(self, server, *headers, path="/x"):
        resp = raw(server.address, get(path, headers))
        return status_and_json(resp)

    def test_scheme_headers_from_a_trusted_peer(self):
        server = self.serve()  # default forwarded_allow_ips: 127.0.0.1,::1
        for headers, scheme in [((), "http"),
                                (("X-Forwarded-Proto: https",), "https"),
                                (("X-Forwarded-Proto: http",), "http"),
                                (("X-Forwarded-Ssl: on",), "https"),
                                (("X-Forwarded-Protocol: ssl",), "https"),
                                (("X-Forwarded-Proto: https", "X-Forwarded-Ssl: on"), "https")]:
            status, doc = self.ask(server, *headers)
            self.assertEqual(status, 200, server.describe())
            self.assertEqual(doc["wsgi.url_scheme"], scheme, headers)

    def test_conflicting_scheme_headers_are_400(self):
        server = self.serve()
        for headers in [("X-Forwarded-Proto: https", "X-Forwarded-Ssl: off"),
                        ("X-Forwarded-Proto: https", "X-Forwarded-Proto: http")]:
            status, _ = self.ask(server, *headers)
            self.assertEqual(status, 400, headers)
        server.wait_log(r"Invalid request from ip=127\.0\.0\.1: conflicting scheme headers",
                        count=2)
        self.assertEqual(self.ask(server)[0], 200, "the worker keeps serving")

    def test_untrusted_peer_changes_nothing(self):
        for env, args in [(None, ["--forwarded-allow-ips", "10.0.0.1, 192.0.2.0/24"]),
                          ({"FORWARDED_ALLOW_IPS": "10.0.0.1"}, [])]:
            server = self.serve(*args, env=env)
            status, doc = self.ask(server, "X-Forwarded-Proto: https", "X-Forwarded-Ssl: off",
                                   "SCRIPT_NAME: /evil", "PATH_INFO: /forged",
                                   path="/evil/x")
            self.assertEqual(status, 200, "a conflict from an untrusted peer is no error")
            self.assertEqual(doc["wsgi.url_scheme"], "http")
            self.assertEqual((doc["SCRIPT_NAME"], doc["PATH_INFO"]), ("", "/evil/x"))
            self.assertEqual(doc["HTTP_X_FORWARDED_PROTO"], "https", "still visible as a header")

    def test_cidr_and_star(self):
        for allow in ["127.0.0.0/8", "*"]:
            server = self.serve("--forwarded-allow-ips", allow)
            status, doc = self.ask(server, "X-Forwarded-Proto: https")
            self.assertEqual(doc["wsgi.url_scheme"], "https", allow)

    def test_unix_socket_peers_are_trusted(self):
        path = os.path.join(self.make_tmpdir(), "edge.sock")
        server = self.serve("--forwarded-allow-ips", "10.0.0.1", unix=path)
        status, doc = self.ask(server, "X-Forwarded-Proto: https")
        self.assertEqual((status, doc["wsgi.url_scheme"]), (200, "https"), server.describe())

    def test_forwarder_headers_set_script_name_and_path_info(self):
        server = self.serve()
        status, doc = self.ask(server, "SCRIPT_NAME: /prefix", path="/prefix/page")
        self.assertEqual((doc["SCRIPT_NAME"], doc["PATH_INFO"]), ("/prefix", "/page"))
        status, doc = self.ask(server, "PATH_INFO: /given")
        self.assertEqual(doc["PATH_INFO"], "/given")
        status, doc = self.ask(server, "REMOTE_USER: bob")
        self.assertIsNone(doc["REMOTE_USER"], "REMOTE_USER is not a default forwarder header")
        server = self.serve("--forwarder-headers", "REMOTE_USER")
        status, doc = self.ask(server, "REMOTE_USER: bob", "SCRIPT_NAME: /no", path="/no/x")
        self.assertEqual((doc["REMOTE_USER"], doc["SCRIPT_NAME"]), ("bob", ""))

    def test_root_path(self):
        server = self.serve("--root-path", "/app/")
        status, doc = self.ask(server, path="/app/page")
        self.assertEqual((doc["SCRIPT_NAME"], doc["PATH_INFO"]), ("/app", "/page"))
        status, doc = self.ask(server, path="/page")  # the proxy already stripped the prefix
        self.assertEqual((doc["SCRIPT_NAME"], doc["PATH_INFO"]), ("/app", "/page"))


class SyncForwarded(ForwardedMixin, AlicornTestCase):
    WORKER_ARGS = ("-k", "sync")


class GthreadForwarded(ForwardedMixin, AlicornTestCase):
    WORKER_ARGS = ("-k", "gthread", "--threads", "2")


class UvForwarded(ForwardedMixin, AlicornTestCase):
    WORKER_ARGS = ("-k", "uv")


class EdgeSettingsRefused(AlicornTestCase):
    def test_bad_values_stop_the_start(self):
        for args, mention in [(["--forwarded-allow-ips", "10.0.0.0/40"], "forwarded_allow_ips"),
                              (["--proxy-allow-from", "example.com"], "proxy_allow_ips"),
                              (["--proxy-protocol=v3"], "proxy_protocol"),
                              (["--root-path", "app"], "root_path")]:
            result = run_alicorn(args + ["--check-config", APP])
            self.assertRefused(result, mentions=[mention])


# ----------------------------------------------------------------------------------------------
# Real proxies, started by the tests on loopback.

class ProxyProcess:
    def __init__(self, argv, prefix):
        self.log_path = os.path.join(prefix, "proxy.log")
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.log_file.close()


class RealProxyCase(AlicornTestCase):
    def start_proxy(self, argv, prefix, port):
        p = ProxyProcess(argv, prefix)
        self.addCleanup(p.stop)
        deadline = time.monotonic() + START_TIMEOUT
        while not can_connect(("127.0.0.1", port)):
            if p.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("%s did not start:\n%s" % (argv[0], p.log()))
            time.sleep(0.05)
        return p


NGINX_CONF = """
worker_processes 1;
daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    upstream app {{ server 127.0.0.1:{app_port}; keepalive 4; }}
    server {{
        listen 127.0.0.1:{http_port};
        listen 127.0.0.1:{https_port} ssl;
        ssl_certificate {prefix}/cert.pem;
        ssl_certificate_key {prefix}/key.pem;
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
        location /mounted/ {{
            proxy_pass http://app/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header SCRIPT_NAME /mounted;
        }}
    }}
}}
"""


class DjangoBehindNginxMixin:
    WORKER_ARGS = ()

    def setUp(self):
        super().setUp()
        self.server = self.start_server("wsgi:application",
                                        list(self.WORKER_ARGS) + ["--chdir", DJANGO_DIR])
        prefix = self.make_tmpdir()
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(prefix, "tmp", sub))
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=example.test", "-keyout", os.path.join(prefix, "key.pem"),
                        "-out", os.path.join(prefix, "cert.pem")],
                       check=True, capture_output=True, timeout=60)
        self.http_port, self.https_port = free_port(), free_port()
        conf = os.path.join(prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(prefix=prefix, app_port=self.server.address[1],
                                      http_port=self.http_port, https_port=self.https_port))
        self.nginx = self.start_proxy([NGINX, "-p", prefix + "/", "-c", conf, "-e",
                                       os.path.join(prefix, "error.log")], prefix, self.http_port)

    def fetch(self, path, tls=False, headers=()):
        sock = socket.create_connection(("127.0.0.1", self.https_port if tls else self.http_port),
                                        timeout=20)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            sock = ctx.wrap_socket(sock, server_hostname="example.test")
        port = self.https_port if tls else self.http_port
        with sock:
            sock.sendall(get(path, headers, host="example.test:%d" % port))
            out = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                out += chunk
        status, doc = status_and_json(out)
        self.assertEqual(status, 200, "%r\n%s" % (out[:500], self.server.describe()))
        return doc, port

    def test_https_through_nginx_is_secure(self):
        doc, port = self.fetch("/edge/?x=1", tls=True)
        self.assertTrue(doc["is_secure"], doc)
        self.assertEqual(doc["absolute_uri"], "https://example.test:%d/edge/?x=1" % port)

    def test_http_through_nginx_is_not_secure_even_if_the_client_says_so(self):
        # nginx replaces the client's X-Forwarded-Proto with its own $scheme.
        doc, port = self.fetch("/edge/", headers=["X-Forwarded-Proto: https"])
        self.assertFalse(doc["is_secure"], doc)
        self.assertEqual(doc["absolute_uri"], "http://example.test:%d/edge/" % port)

    def test_script_name_from_nginx(self):
        doc, port = self.fetch("/mounted/edge/", tls=True)
        self.assertEqual((doc["script_name"], doc["path"]), ("/mounted", "/mounted/edge/"))
        self.assertEqual(doc["absolute_uri"], "https://example.test:%d/mounted/edge/" % port)

    def test_forged_headers_from_an_untrusted_peer(self):
        # The same Django app, trusting only an address the test never connects from.
        server = self.start_server("wsgi:application", list(self.WORKER_ARGS) +
                                   ["--chdir", DJANGO_DIR, "--forwarded-allow-ips", "10.0.0.1"])
        status, doc = status_and_json(raw(server.address, get(
            "/edge/", ["X-Forwarded-Proto: https", "X-Forwarded-Ssl: on", "SCRIPT_NAME: /x"])))
        self.assertEqual(status, 200, server.describe())
        self.assertFalse(doc["is_secure"])
        self.assertEqual(doc["absolute_uri"], "http://example.test/edge/")


class SyncDjangoBehindNginx(DjangoBehindNginxMixin, RealProxyCase):
    WORKER_ARGS = ("-k", "sync")


class GthreadDjangoBehindNginx(DjangoBehindNginxMixin, RealProxyCase):
    WORKER_ARGS = ("-k", "gthread", "--threads", "2")


class UvDjangoBehindNginx(DjangoBehindNginxMixin, RealProxyCase):
    WORKER_ARGS = ("-k", "uv")


HAPROXY_CONF = """
global
    maxconn 64
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe_v1
    bind 127.0.0.1:{v1_port}
    default_backend be_v1
frontend fe_v2
    bind 127.0.0.1:{v2_port}
    default_backend be_v2
backend be_v1
    server app 127.0.0.1:{app_port} send-proxy
backend be_v2
    server app 127.0.0.1:{app_port} send-proxy-v2
"""

CLIENT_ADDR = "127.0.0.2"     # the client, as the PROXY header must report it
UNTRUSTED_ADDR = "127.0.0.3"  # a direct client that is not in proxy_allow_ips


class HaproxyMixin:
    WORKER_ARGS = ()

    def setUp(self):
        super().setUp()
        self.server = self.start_server(APP, list(self.WORKER_ARGS) + ["--proxy-protocol"])
        prefix = self.make_tmpdir()
        self.v1_port, self.v2_port = free_port(), free_port()
        conf = os.path.join(prefix, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write(HAPROXY_CONF.format(v1_port=self.v1_port, v2_port=self.v2_port,
                                        app_port=self.server.address[1]))
        self.haproxy = self.start_proxy([HAPROXY, "-db", "-f", conf], prefix, self.v2_port)
        self.start_proxy_wait_v1()

    def start_proxy_wait_v1(self):
        deadline = time.monotonic() + START_TIMEOUT
        while not can_connect(("127.0.0.1", self.v1_port)):
            if time.monotonic() > deadline:
                raise AssertionError("haproxy v1 port not up:\n" + self.haproxy.log())
            time.sleep(0.05)

    def through(self, port):
        with socket.socket() as s:
            s.settimeout(10)
            s.bind((CLIENT_ADDR, 0))
            client_port = s.getsockname()[1]
            s.connect(("127.0.0.1", port))
            s.sendall(get("/x"))
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        status, doc = status_and_json(out)
        self.assertEqual(status, 200, "%r\n%s\n%s" % (out[:300], self.server.describe(),
                                                      self.haproxy.log()))
        return doc, client_port

    def test_send_proxy_v1(self):
        doc, client_port = self.through(self.v1_port)
        self.assertEqual((doc["REMOTE_ADDR"], doc["REMOTE_PORT"]), (CLIENT_ADDR, str(client_port)))

    def test_send_proxy_v2(self):
        doc, client_port = self.through(self.v2_port)
        self.assertEqual((doc["REMOTE_ADDR"], doc["REMOTE_PORT"]), (CLIENT_ADDR, str(client_port)))

    def test_header_in_pieces_then_pipelined_requests(self):
        # A v2 header cut into single bytes, then two requests in one send: both see the
        # header's address (sync answers the first and closes, as it always does).
        import struct
        header = (b"\r\n\r\n\x00\r\nQUIT\n\x21\x11" + struct.pack("!H", 12)
                  + socket.inet_aton("203.0.113.9") + socket.inet_aton("127.0.0.1")
                  + struct.pack("!HH", 40000, self.server.address[1]))
        keep = get("/x").replace(b"Connection: close", b"Connection: keep-alive")
        with socket.create_connection(self.server.address, timeout=10) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for i in range(len(header)):
                s.sendall(header[i:i + 1])
                time.sleep(0.002)
            s.sendall(keep + get("/x"))
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        answers = out.count(b"HTTP/1.1 200")
        self.assertEqual(answers, 1 if self.WORKER_ARGS[1] == "sync" else 2,
                         "%r\n%s" % (out[:600], self.server.describe()))
        self.assertEqual(out.count(b'"REMOTE_ADDR": "203.0.113.9", "REMOTE_PORT": "40000"'),
                         answers, out[:600])

    def test_direct_untrusted_client_is_plain_http(self):
        status, doc = status_and_json(raw(self.server.address, get("/x"), source=UNTRUSTED_ADDR))
        self.assertEqual((status, doc["REMOTE_ADDR"]), (200, UNTRUSTED_ADDR), self.server.describe())

    def test_bad_headers_close_the_connection_with_a_log_line(self):
        forged = b"PROXY TCP4 6.6.6.6 127.0.0.1 1234 80\r\n" + get("/x")
        self.assertEqual(raw(self.server.address, forged, source=UNTRUSTED_ADDR), b"")
        self.server.wait_log(r"Invalid PROXY protocol header from ip=127\.0\.0\.3: PROXY "
                             r"protocol header from a peer not in proxy_allow_ips")
        # From a trusted peer (127.0.0.1): a header is required, and must be well-formed.
        self.assertEqual(raw(self.server.address, get("/x")), b"")
        self.server.wait_log(r"Invalid PROXY protocol header from ip=127\.0\.0\.1: no PROXY "
                             r"protocol header")
        self.assertEqual(raw(self.server.address, b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\n"),
                         b"")
        self.server.wait_log(r"invalid port in the PROXY v1 line")
        self.assertEqual(raw(self.server.address, b"PROXY UNKNOWN " + b"x" * 200), b"")
        self.server.wait_log(r"PROXY v1 line longer than 107 bytes")
        doc, _ = self.through(self.v2_port)  # still serving
        self.assertEqual(doc["REMOTE_ADDR"], CLIENT_ADDR)


class SyncHaproxy(HaproxyMixin, RealProxyCase):
    WORKER_ARGS = ("-k", "sync")


class GthreadHaproxy(HaproxyMixin, RealProxyCase):
    WORKER_ARGS = ("-k", "gthread", "--threads", "2")


class UvHaproxy(HaproxyMixin, RealProxyCase):
    WORKER_ARGS = ("-k", "uv")


if __name__ == "__main__":
    unittest.main()
