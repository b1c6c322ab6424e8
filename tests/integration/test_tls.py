"""TLS in the core (--certfile/--keyfile) on every worker class: the plugins move ciphertext and
know nothing of it. A self-signed certificate is made at test time with openssl. curl -k and
Python's ssl (unverified context) GET and POST with a body; wsgi.url_scheme is https; ALPN
picks http/1.1; plain HTTP on the TLS port and a failed handshake close the connection with a
log line and the worker keeps serving; a missing, unreadable or mismatched certificate or key
stops the start before any fork, naming the file."""

import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import unittest
import warnings

from harness import REQUEST_TIMEOUT, AlicornTestCase, curl, run_alicorn

APP = "echo:app"


def make_cert(folder, name="cert"):
    cert = os.path.join(folder, name + ".pem")
    key = os.path.join(folder, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-subj", "/CN=localhost", "-days", "1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def unverified():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class TlsBase:
    WORKER_ARGS = ()

    def setUp(self):
        self.dir = self.make_tmpdir()
        self.cert, self.key = make_cert(self.dir)
        self.server = self.start_server(
            APP, list(self.WORKER_ARGS) + ["--certfile", self.cert, "--keyfile", self.key])
        self.host, self.port = self.server.address

    def https(self, method, path, body=None, headers=None):
        conn = http.client.HTTPSConnection(self.host, self.port, timeout=REQUEST_TIMEOUT,
                                           context=unverified())
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def test_python_get_and_post(self):
        status, body = self.https("GET", "/a/b?x=1")
        self.assertEqual(status, 200, self.server.describe())
        doc = json.loads(body)
        self.assertEqual(doc["wsgi.url_scheme"], "https")
        self.assertEqual(doc["PATH_INFO"], "/a/b")
        self.assertEqual(doc["QUERY_STRING"], "x=1")
        data = os.urandom(512 * 1024).hex().encode()  # 1 MB: many records each way
        status, body = self.https("POST", "/upload", body=data,
                                  headers={"Content-Type": "text/plain"})
        self.assertEqual(status, 200, self.server.describe())
        doc = json.loads(body)
        self.assertEqual(doc["body_length"], len(data))
        self.assertEqual(doc["body_sha256"], hashlib.sha256(data).hexdigest())
        self.assertEqual(doc["wsgi.url_scheme"], "https")

    def test_keep_alive_requests_on_one_connection(self):
        conn = http.client.HTTPSConnection(self.host, self.port, timeout=REQUEST_TIMEOUT,
                                           context=unverified())
        try:
            for i in range(3):
                conn.request("POST", "/k%d" % i, body=b"x" * (i * 1000))
                resp = conn.getresponse()
                doc = json.loads(resp.read())
                self.assertEqual(resp.status, 200)
                self.assertEqual(doc["PATH_INFO"], "/k%d" % i)
                self.assertEqual(doc["body_length"], i * 1000)
        finally:
            conn.close()

    def test_curl_get_and_post(self):
        url = "https://localhost:%d/c" % self.port
        r = curl(["-k", url])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["wsgi.url_scheme"], "https")
        r = curl(["-k", "--data-binary", "hello tls", "-H", "Expect: 100-continue", url])
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["body"], "hello tls")
        self.assertEqual(doc["REQUEST_METHOD"], "POST")

    def test_alpn_http11(self):
        ctx = unverified()
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with socket.create_connection((self.host, self.port), timeout=REQUEST_TIMEOUT) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                self.assertEqual(s.selected_alpn_protocol(), "http/1.1")
                self.assertIn(s.version(), ("TLSv1.2", "TLSv1.3"))

    def test_close_notify_ends_a_closing_response(self):
        # With Connection: close the server's last record is a close_notify alert, so the
        # client can tell the end of the response from a truncation: with
        # suppress_ragged_eofs=False a bare TCP close raises SSLEOFError instead.
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = unverified()
            ctx.minimum_version = ctx.maximum_version = version
            with socket.create_connection((self.host, self.port),
                                          timeout=REQUEST_TIMEOUT) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost",
                                     suppress_ragged_eofs=False) as s:
                    s.sendall(b"GET /bye HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    got = b""
                    while True:
                        chunk = s.recv(65536)  # SSLEOFError without close_notify
                        if not chunk:
                            break
                        got += chunk
            self.assertTrue(got.startswith(b"HTTP/1.1 200 OK\r\n"), got[:200])
            head, _, body = got.partition(b"\r\n\r\n")
            self.assertIn(b"connection: close", head.lower())
            self.assertEqual(json.loads(body)["PATH_INFO"], "/bye")

    def test_plain_http_on_tls_port_is_closed(self):
        with socket.create_connection((self.host, self.port), timeout=REQUEST_TIMEOUT) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            got = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        self.assertNotIn(b"200 OK", got)
        self.server.wait_log(r"TLS handshake failed from ip=127\.0\.0\.1")
        status, _ = self.https("GET", "/still")  # the worker keeps serving
        self.assertEqual(status, 200)

    def test_old_protocol_refused(self):
        ctx = unverified()
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        try:
            ctx.set_ciphers("ALL:@SECLEVEL=0")
        except ssl.SSLError:
            pass
        with socket.create_connection((self.host, self.port), timeout=REQUEST_TIMEOUT) as raw:
            with self.assertRaises((ssl.SSLError, OSError)):
                ctx.wrap_socket(raw, server_hostname="localhost")
        status, _ = self.https("GET", "/after")
        self.assertEqual(status, 200)


class TestTlsSync(TlsBase, AlicornTestCase):
    WORKER_ARGS = ("-k", "sync")


class TestTlsGthread(TlsBase, AlicornTestCase):
    WORKER_ARGS = ("-k", "gthread", "--threads", "2")


class TestTlsUv(TlsBase, AlicornTestCase):
    WORKER_ARGS = ("-k", "uv")


class TestTlsStartup(AlicornTestCase):
    def setUp(self):
        self.dir = self.make_tmpdir()
        self.cert, self.key = make_cert(self.dir)

    def test_missing_certfile(self):
        missing = os.path.join(self.dir, "nope.pem")
        r = run_alicorn(["--certfile", missing, "--keyfile", self.key, APP])
        self.assertRefused(r, mentions=["certfile", "nope\\.pem"])

    def test_missing_keyfile(self):
        missing = os.path.join(self.dir, "nokey.key")
        r = run_alicorn(["--certfile", self.cert, "--keyfile", missing, APP])
        self.assertRefused(r, mentions=["keyfile", "nokey\\.key"])

    def test_not_a_certificate(self):
        junk = os.path.join(self.dir, "junk.pem")
        with open(junk, "w") as f:
            f.write("not a certificate\n")
        r = run_alicorn(["--certfile", junk, "--keyfile", self.key, APP])
        self.assertRefused(r, mentions=["certfile", "junk\\.pem"])

    def test_mismatched_key(self):
        _, other_key = make_cert(self.dir, "other")
        r = run_alicorn(["--certfile", self.cert, "--keyfile", other_key, APP])
        self.assertRefused(r, mentions=["keyfile", "other\\.key", "does not match"])

    def test_bad_ssl_version(self):
        r = run_alicorn(["--certfile", self.cert, "--keyfile", self.key,
                         "--ssl-version", "SSLv2", APP])
        self.assertRefused(r, mentions=["ssl_version", "SSLv2"])


class TlsLargeBase:
    """wsgi.file_wrapper (sendfile turned off on TLS: the file goes through the encryption), a
    streamed download and a 4 MB upload, through uv_large_app."""
    WORKER_ARGS = ()

    def setUp(self):
        self.dir = self.make_tmpdir()
        cert, key = make_cert(self.dir)
        self.server = self.start_server(
            "uv_large_app:app",
            list(self.WORKER_ARGS) + ["--certfile", cert, "--keyfile", key])
        self.host, self.port = self.server.address

    def request(self, method, path, body=None):
        conn = http.client.HTTPSConnection(self.host, self.port, timeout=REQUEST_TIMEOUT,
                                           context=unverified())
        try:
            conn.request(method, path, body=body)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def test_file_wrapper(self):
        data = os.urandom(3 * 1024 * 1024 + 17)
        path = os.path.join(self.dir, "blob.bin")
        with open(path, "wb") as f:
            f.write(data)
        status, body = self.request("GET", "/file?path=" + path)
        self.assertEqual(status, 200, self.server.describe())
        self.assertEqual(hashlib.sha256(body).hexdigest(), hashlib.sha256(data).hexdigest())
        r = curl(["-k", "-o", "-", "https://localhost:%d/file?path=%s" % (self.port, path)])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, data)

    def test_download_and_upload(self):
        status, body = self.request("GET", "/download?n=40")
        self.assertEqual(status, 200)
        self.assertEqual(len(body), 40 * 64 * 1024)
        data = os.urandom(4 * 1024 * 1024)
        status, body = self.request("POST", "/upload", body=data)
        self.assertEqual(status, 200, self.server.describe())
        self.assertEqual(body.decode(), "%s %d" % (hashlib.sha256(data).hexdigest(), len(data)))


class TestTlsLargeSync(TlsLargeBase, AlicornTestCase):
    WORKER_ARGS = ("-k", "sync")


class TestTlsLargeGthread(TlsLargeBase, AlicornTestCase):
    WORKER_ARGS = ("-k", "gthread", "--threads", "2")


class TestTlsLargeUv(TlsLargeBase, AlicornTestCase):
    WORKER_ARGS = ("-k", "uv")


class TestTlsClientCertificates(AlicornTestCase):
    """cert_reqs 2 with ca_certs: a client without a certificate is refused (and the worker
    goes on), a client with one signed by the CA is served."""

    def test_required_client_certificate(self):
        d = self.make_tmpdir()
        cert, key = make_cert(d)
        client_cert, client_key = make_cert(d, "client")
        server = self.start_server(APP, ["-k", "sync", "--certfile", cert, "--keyfile", key,
                                         "--ca-certs", client_cert, "--cert-reqs", "2"])
        host, port = server.address
        conn = http.client.HTTPSConnection(host, port, timeout=REQUEST_TIMEOUT,
                                           context=unverified())
        with self.assertRaises((ssl.SSLError, OSError, http.client.HTTPException)):
            conn.request("GET", "/")
            conn.getresponse().read()
        conn.close()
        ctx = unverified()
        ctx.load_cert_chain(client_cert, client_key)
        conn = http.client.HTTPSConnection(host, port, timeout=REQUEST_TIMEOUT, context=ctx)
        conn.request("GET", "/with-cert")
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200, server.describe())
        self.assertEqual(json.loads(resp.read())["wsgi.url_scheme"], "https")
        conn.close()

    def test_cert_reqs_without_ca_certs_refused(self):
        d = self.make_tmpdir()
        cert, key = make_cert(d)
        r = run_alicorn(["--certfile", cert, "--keyfile", key, "--cert-reqs", "2", APP])
        self.assertRefused(r, mentions=["cert_reqs", "ca_certs"])


class TestTlsConfigFileAndProxy(AlicornTestCase):
    def test_python_config_with_ssl_constants(self):
        """A gunicorn.conf.py as Gunicorn users write it: ssl_version = ssl.PROTOCOL_TLS_SERVER."""
        d = self.make_tmpdir()
        cert, key = make_cert(d)
        conf = os.path.join(d, "tls.conf.py")
        with open(conf, "w") as f:
            f.write("import ssl\ncertfile = %r\nkeyfile = %r\n"
                    "ssl_version = ssl.PROTOCOL_TLS_SERVER\ncert_reqs = ssl.CERT_NONE\n"
                    "ciphers = 'ECDHE+AESGCM'\n" % (cert, key))
        server = self.start_server(APP, ["-c", conf, "-k", "gthread"])
        conn = http.client.HTTPSConnection(*server.address, timeout=REQUEST_TIMEOUT,
                                           context=unverified())
        conn.request("GET", "/conf")
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200, server.describe())
        self.assertEqual(json.loads(resp.read())["wsgi.url_scheme"], "https")
        conn.close()

    def test_proxy_protocol_header_before_the_handshake(self):
        """HAProxy send-proxy in TCP mode: the PROXY header in clear, then TLS."""
        d = self.make_tmpdir()
        cert, key = make_cert(d)
        for kind in ("sync", "uv"):
            with self.subTest(kind=kind):
                server = self.start_server(APP, ["-k", kind, "--certfile", cert, "--keyfile",
                                                 key, "--proxy-protocol=v1"])
                with socket.create_connection(server.address, timeout=REQUEST_TIMEOUT) as raw:
                    raw.sendall(b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 443\r\n")
                    with unverified().wrap_socket(raw, server_hostname="localhost") as s:
                        s.sendall(b"GET /p HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        got = b""
                        while True:
                            chunk = s.recv(65536)
                            if not chunk:
                                break
                            got += chunk
                head, _, body = got.partition(b"\r\n\r\n")
                self.assertIn(b"200 OK", head, server.describe())
                doc = json.loads(body)
                self.assertEqual(doc["REMOTE_ADDR"], "203.0.113.7")
                self.assertEqual(doc["wsgi.url_scheme"], "https")


class TestTlsSslContextHook(AlicornTestCase):
    """Gunicorn's ssl_context(config, default_ssl_context_factory) hook in a config file: the
    context it returns is the one served (here with a second certificate loaded on top of the
    settings' one), on every worker class; a hook that raises stops the start."""

    def conf(self, body):
        d = self.make_tmpdir()
        cert, key = make_cert(d)
        self.hooked_cert, hooked_key = make_cert(d, "hooked")
        conf = os.path.join(d, "tls.conf.py")
        with open(conf, "w") as f:
            f.write("certfile = %r\nkeyfile = %r\nHOOKED = (%r, %r)\n%s"
                    % (cert, key, self.hooked_cert, hooked_key, body))
        return conf

    def test_hook_context_is_served(self):
        conf = self.conf(
            "def ssl_context(config, default_ssl_context_factory):\n"
            "    assert config.certfile == certfile\n"
            "    context = default_ssl_context_factory()\n"
            "    context.load_cert_chain(*HOOKED)\n"
            "    return context\n")
        for worker in ("sync", "gthread", "uv"):
            with self.subTest(worker=worker):
                server = self.start_server(APP, ["-c", conf, "-k", worker])
                # Verified against the hooked certificate only: the handshake succeeds only if
                # the hook's context is the one serving.
                ctx = ssl.create_default_context(cafile=self.hooked_cert)
                ctx.check_hostname = False
                conn = http.client.HTTPSConnection(*server.address, timeout=REQUEST_TIMEOUT,
                                                   context=ctx)
                conn.request("GET", "/hooked")
                resp = conn.getresponse()
                self.assertEqual(resp.status, 200, server.describe())
                self.assertEqual(json.loads(resp.read())["wsgi.url_scheme"], "https")
                conn.close()
                self.assertIn("context of the ssl_context hook", server.log())
                self.assertStopsCleanly(server)

    def test_hook_that_raises_stops_the_start(self):
        conf = self.conf("def ssl_context(config, factory):\n    raise ValueError('no ctx')\n")
        result = run_alicorn(["-c", conf, "-b", "127.0.0.1:0", APP])
        self.assertNotEqual(result.returncode, 0, result.output)
        self.assertIn("ssl_context", result.output)
        self.assertIn("ValueError: no ctx", result.output)

    def test_hook_returning_something_else_stops_the_start(self):
        conf = self.conf("def ssl_context(config, factory):\n    return 42\n")
        result = run_alicorn(["-c", conf, "-b", "127.0.0.1:0", APP])
        self.assertNotEqual(result.returncode, 0, result.output)
        self.assertIn("must return an ssl.SSLContext", result.output)


class TestTlsCertificateReloadOnHup(AlicornTestCase):
    """A renewed certificate (same paths, new contents) is served after HUP, by the new workers."""

    def served_der(self, address):
        with socket.create_connection(address, timeout=REQUEST_TIMEOUT) as raw:
            with unverified().wrap_socket(raw) as tls:
                return tls.getpeercert(binary_form=True)

    def test_hup_rereads_the_certificate(self):
        d = self.make_tmpdir()
        old_cert, old_key = make_cert(d, "old")
        new_cert, new_key = make_cert(d, "new")
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        shutil.copy(old_cert, cert)
        shutil.copy(old_key, key)
        server = self.start_server(APP, ["--certfile", cert, "--keyfile", key])

        def der(path):
            with open(path) as f:
                return ssl.PEM_cert_to_DER_cert(f.read())

        self.assertEqual(self.served_der(server.address), der(old_cert))
        shutil.copy(new_cert, cert)
        shutil.copy(new_key, key)
        old = server.workers()
        server.signal(signal.SIGHUP)
        server.wait_workers(1, exclude=old)
        server.workers_gone(old)
        self.assertEqual(self.served_der(server.address), der(new_cert), server.describe())
        self.assertStopsCleanly(server)


if __name__ == "__main__":
    unittest.main()
