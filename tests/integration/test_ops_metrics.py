"""Operations through the real binary (docs/operations.md): memory recycling under load, the
Prometheus endpoint parsed with prometheus_client's own parser, statsd datagrams caught by a UDP
socket the test opens."""

import os
import re
import socket
import unittest
import urllib.request

from harness import (ALICORN_BIN, START_TIMEOUT, AlicornTestCase, free_port, run_alicorn,
                     wait_for)
from prometheus_client.parser import text_string_to_metric_families
from test_arbiter_ops import LoadClient

LEAKY = "leaky:app"


def scrape(address):
    url = "http://%s:%d/metrics" % address
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, resp.headers.get("Content-Type"), resp.read().decode()


def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def sample_value(fams, family, name=None, **labels):
    for s in fams[family].samples:
        if (name is None or s.name == name) and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None


class MemoryRecycling(AlicornTestCase):
    def run_leak(self, worker_class, extra=()):
        maddr = ("127.0.0.1", free_port())
        server = self.start_server(
            LEAKY, ["-k", worker_class, "--max-worker-memory", "60",
                    "--metrics-bind", "%s:%d" % maddr] + list(extra), workers=2)
        first = server.wait_workers(2)
        with LoadClient(server.address) as load:
            # Two recycles at least: each worker passes 60 MiB after ~200 requests.
            server.wait_log(r"more than max_worker_memory \(60 MiB\): replacing it after its "
                            r"in-flight requests", timeout=120, count=2)
            server.wait_log(r"recycled for memory", timeout=60, count=2)
            self.assertTrue(load.more(10), server.describe())
        self.assertEqual(load.failures, [], "%d failed of %d\n%s"
                         % (len(load.failures), load.ok + len(load.failures), server.describe()))
        self.assertGreater(load.ok, 0)
        # New workers replaced the fat ones, and the metric says why.
        self.assertTrue(set(server.workers()) - set(first), server.describe())
        fams = families(scrape(maddr)[2])
        self.assertGreaterEqual(sample_value(fams, "alicorn_worker_restarts", reason="memory"), 2)
        self.assertEqual(sample_value(fams, "alicorn_requests", status="5xx"), 0)
        self.assertStopsCleanly(server)

    def test_leaking_app_recycled_under_load_sync(self):
        self.run_leak("sync")

    def test_leaking_app_recycled_under_load_gthread(self):
        self.run_leak("gthread", ["--threads", "4"])

    def test_leaking_app_recycled_under_load_uv(self):
        self.run_leak("uv")

    def test_bad_value_refused(self):
        result = run_alicorn(["--max-worker-memory", "-5", LEAKY])
        self.assertRefused(result, code=2, mentions=["max_worker_memory", "-5"])


class Prometheus(AlicornTestCase):
    def start(self, workers=2, args=()):
        self.maddr = ("127.0.0.1", free_port())
        return self.start_server(LEAKY, ["--metrics-bind", "%s:%d" % self.maddr] + list(args),
                                 workers=workers)

    def test_exposition_parsed_and_aggregated_over_workers(self):
        server = self.start(workers=2)
        for _ in range(6):
            self.assertEqual(self.get(server, "/status?code=200")[0], 200)
        for _ in range(3):
            self.assertEqual(self.get(server, "/status?code=404")[0], 404)
        self.assertEqual(self.get(server, "/status?code=503")[0], 503)
        status, ctype, text = scrape(self.maddr)
        self.assertEqual(status, 200)
        self.assertTrue(ctype.startswith("text/plain; version=0.0.4"), ctype)
        fams = families(text)
        self.assertEqual(fams["alicorn_requests"].type, "counter")
        self.assertEqual(sample_value(fams, "alicorn_requests", status="2xx"), 6)
        self.assertEqual(sample_value(fams, "alicorn_requests", status="4xx"), 3)
        self.assertEqual(sample_value(fams, "alicorn_requests", status="5xx"), 1)
        h = fams["alicorn_request_duration_seconds"]
        self.assertEqual(h.type, "histogram")
        self.assertEqual(sample_value(fams, "alicorn_request_duration_seconds",
                                      "alicorn_request_duration_seconds_count"), 10)
        self.assertEqual(sample_value(fams, "alicorn_request_duration_seconds",
                                      "alicorn_request_duration_seconds_bucket", le="+Inf"), 10)
        buckets = [s.value for s in h.samples if s.name.endswith("_bucket")]
        self.assertEqual(buckets, sorted(buckets), "buckets must be cumulative")
        self.assertEqual(sample_value(fams, "alicorn_requests_in_flight"), 0)
        # Worker gauges come from the master's sampling (about once a second).
        self.assertTrue(wait_for(lambda: sample_value(families(scrape(self.maddr)[2]),
                                                      "alicorn_workers") == 2, START_TIMEOUT))
        fams = families(scrape(self.maddr)[2])
        pids = sorted(int(s.labels["pid"]) for s in fams["alicorn_worker_rss_bytes"].samples)
        self.assertEqual(pids, sorted(server.workers()))
        for s in fams["alicorn_worker_rss_bytes"].samples:
            self.assertGreater(s.value, 1 << 20)
        self.assertEqual(sum(s.value for s in fams["alicorn_worker_requests"].samples), 10)
        backlog = sample_value(fams, "alicorn_listen_backlog",
                               listener="http://%s:%d" % server.address)
        self.assertIsNotNone(backlog, fams["alicorn_listen_backlog"].samples)
        self.assertGreaterEqual(backlog, 0)

    def test_counters_survive_worker_restarts_and_count_reasons(self):
        server = self.start(workers=1)
        for _ in range(4):
            self.get(server, "/status?code=200")
        victim = server.wait_workers(1)[0]
        os.kill(victim, 9)
        server.wait_workers(1, exclude=[victim])
        self.get(server, "/status?code=200")
        def restarted():
            f = families(scrape(self.maddr)[2])
            return sample_value(f, "alicorn_worker_restarts", reason="signal") == 1 and f
        fams = wait_for(restarted, START_TIMEOUT)
        self.assertTrue(fams, scrape(self.maddr)[2])
        self.assertEqual(sample_value(fams, "alicorn_requests", status="2xx"), 5)

    def test_in_flight_counts_a_request_in_the_app(self):
        server = self.start(workers=1, args=["-k", "gthread", "--threads", "2"])
        import threading
        t = threading.Thread(target=lambda: self.get(server, "/"), daemon=True)
        # "/" sleeps 10 ms: poll until the scrape sees it or the request is over.
        seen = []
        def poll():
            v = sample_value(families(scrape(self.maddr)[2]), "alicorn_requests_in_flight")
            seen.append(v)
            return v == 0 and not t.is_alive()
        t.start()
        wait_for(poll, START_TIMEOUT, interval=0.001)
        t.join(10)
        self.assertEqual(seen[-1], 0)
        self.assertTrue(all(v in (0, 1) for v in seen), seen)

    def test_other_paths_and_methods(self):
        self.start(workers=1)
        with socket.create_connection(self.maddr, timeout=10) as s:
            s.sendall(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertIn(b"404 Not Found", s.recv(4096))
        with socket.create_connection(self.maddr, timeout=10) as s:
            s.sendall(b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertIn(b"405 Method Not Allowed", s.recv(4096))
        with socket.create_connection(self.maddr, timeout=10) as s:
            s.sendall(b"garbage\r\n\r\n")
            self.assertIn(b"400 Bad Request", s.recv(4096))

    def test_unix_socket_bind(self):
        path = os.path.join(self.make_tmpdir(), "metrics.sock")
        server = self.start_server(LEAKY, ["--metrics-bind", "unix:" + path])
        self.get(server, "/status?code=200")
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(path)
            s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        text = data.split(b"\r\n\r\n", 1)[1].decode()
        self.assertEqual(sample_value(families(text), "alicorn_requests", status="2xx"), 1)
        self.assertStopsCleanly(server)
        self.assertFalse(os.path.exists(path))

    def test_bad_metrics_bind_refused(self):
        result = run_alicorn(["--metrics-bind", "127.0.0.1:notaport", LEAKY])
        self.assertRefused(result, mentions=["metrics_bind"])
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        self.addCleanup(busy.close)
        result = run_alicorn(["--metrics-bind", "127.0.0.1:%d" % busy.getsockname()[1], LEAKY])
        self.assertRefused(result, mentions=["metrics_bind", "Address already in use"])


class Statsd(AlicornTestCase):
    def listener(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.2)
        self.addCleanup(sock.close)
        return sock

    def collect(self, sock, until, timeout=START_TIMEOUT):
        lines = []
        def got():
            try:
                while True:
                    lines.extend(sock.recv(65536).decode().split("\n"))
            except socket.timeout:
                pass
            return until(lines)
        self.assertTrue(wait_for(got, timeout), lines)
        return lines

    def test_gunicorn_metric_names_and_types(self):
        sock = self.listener()
        server = self.start_server(LEAKY, ["--statsd-host", "127.0.0.1:%d" % sock.getsockname()[1],
                                           "--enable-backlog-metric"], workers=2)
        self.assertEqual(self.get(server, "/status?code=201")[0], 201)
        self.assertEqual(self.get(server, "/status?code=404")[0], 404)
        lines = self.collect(sock, lambda l: "gunicorn.request.status.404:1|c" in l
                             and any(x.startswith("gunicorn.workers:2|g") for x in l)
                             and any(x.startswith("gunicorn.backlog:") for x in l))
        self.assertIn("gunicorn.request.status.201:1|c", lines)
        self.assertEqual(lines.count("gunicorn.requests:1|c"), 2, lines)
        durations = [l for l in lines if l.startswith("gunicorn.request.duration:")]
        self.assertEqual(len(durations), 2, lines)
        for d in durations:
            self.assertRegex(d, r"^gunicorn\.request\.duration:\d+\.\d{3}\|ms$")
        self.assertTrue(any(re.match(r"^gunicorn\.backlog:\d+\|ms$", l) for l in lines), lines)

    def test_prefix_tags_and_log_counters(self):
        sock = self.listener()
        server = self.start_server(LEAKY, [
            "--statsd-host", "127.0.0.1:%d" % sock.getsockname()[1], "--statsd-prefix", "shop",
            "--dogstatsd-tags", "env:test,team:web"])
        self.get(server, "/status?code=200")
        victim = server.wait_workers(1)[0]
        os.kill(victim, 9)  # the master logs an error: "was sent SIGKILL! Perhaps out of memory?"
        lines = self.collect(sock, lambda l: "shop.gunicorn.log.error:1|c|#env:test,team:web" in l)
        self.assertIn("shop.gunicorn.requests:1|c|#env:test,team:web", lines)
        self.assertIn("shop.gunicorn.request.status.200:1|c|#env:test,team:web", lines)
        self.assertTrue(all(l.startswith("shop.gunicorn.") for l in lines if l), lines)

    def test_unreachable_statsd_host_still_serves(self):
        # A name that does not resolve: a warning, and the server serves.
        server = self.start_server(LEAKY, ["--statsd-host", "no-such-host.invalid:8125"])
        self.assertEqual(self.get(server, "/status?code=200")[0], 200)
        server.wait_log(r"statsd: cannot resolve no-such-host\.invalid:8125")
        # A port where nobody listens: datagrams are dropped, requests unharmed.
        sock = self.listener()
        port = sock.getsockname()[1]
        sock.close()
        server2 = self.start_server(LEAKY, ["--statsd-host", "127.0.0.1:%d" % port])
        for _ in range(20):
            self.assertEqual(self.get(server2, "/status?code=200")[0], 200)

    def test_bad_statsd_host_is_refused(self):
        result = run_alicorn(["--statsd-host", "localhost:99999", LEAKY])
        self.assertRefused(result, mentions=["statsd_host", "99999"])


if __name__ == "__main__":
    unittest.main()
