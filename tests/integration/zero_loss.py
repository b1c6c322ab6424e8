"""Zero failed requests through the arbiter's operations, with a closed-loop keep-alive client.

KeepAliveLoad runs 32 connections, each in its own thread, each sending its next request as soon
as the previous response is in (a closed loop), over one keep-alive connection for as long as
the server keeps it. Every request carries a unique id in its path (/r/<conn>.<n>.<attempt>)
that the app (apps/ledger_app.py) writes to a ledger before it answers.

What counts as a failure (strict: a request the client wrote is never written off):
  * anything but a complete 200 response to a request that was written, on a fresh or a
    reused connection: refused, reset, EOF, a timeout, a partial response, another status.
    A request written on a reused connection and met by a close with no byte of response is
    what real clients retry when the method is idempotent (Go's net/http Transport, urllib3,
    nginx's proxy_next_upstream), and this client retries it too so that the load goes on,
    but it still counts as a failure: a POST would be lost, and the server cannot tell. The
    ledger says which of the two it was (never run, or run with its response lost).
Not a failure:
  * a reused connection that the server closed before the request was written, seen as
    readable (EOF) just before the write, exactly as urllib3's is_connection_dropped checks:
    the request was never sent, and goes on a new connection.
"""

import os
import select
import signal
import socket
import threading
import time

from harness import EXIT_TIMEOUT, START_TIMEOUT, AlicornTestCase, child_pids, pid_alive, wait_for

CONNECTIONS = 32
APP = "ledger_app:app"


class _Conn(threading.Thread):
    def __init__(self, load, index):
        super().__init__(daemon=True)
        self.load, self.index = load, index
        self.sock = None
        self.reused = False
        self.n = 0
        self.on_conn = 0       # requests answered on the current connection
        self.last_pid = None   # the worker that answered the last one

    def _connect(self):
        self._close()
        self.sock = socket.create_connection(self.load.address, timeout=self.load.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reused = False
        self.on_conn = 0

    def _close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _dropped(self):
        """urllib3's is_connection_dropped: readable while idle means EOF or reset."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def _exchange(self, rid):
        """Send one request; return (status, headers, body, got_any_bytes) or raise with the
        number of response bytes seen in exc.got."""
        req = ("GET /r/%s HTTP/1.1\r\nHost: zero-loss\r\n\r\n" % rid).encode()
        got = b""
        try:
            self.sock.sendall(req)
            while b"\r\n\r\n" not in got:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("EOF after %d response bytes" % len(got))
                got += chunk
            head, _, rest = got.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ")[1])
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length", "0"))
            while len(rest) < length:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("EOF in the body")
                rest += chunk
            return status, headers, rest[:length]
        except (OSError, ValueError, IndexError) as exc:
            exc.got = len(got)
            raise

    def run(self):
        load = self.load
        while not load.stop_event.is_set():
            if load.pause_event.is_set():
                self._close()  # the pause is between requests; a new connection after it
                load.paused(self)
                continue
            self.n += 1
            attempt = 0
            while True:
                rid = "%d.%d.%d" % (self.index, self.n, attempt)
                try:
                    if self.sock is not None and self.reused and self._dropped():
                        load.note_unsent()
                        self._close()
                    if self.sock is None:
                        self._connect()
                except OSError as exc:
                    load.fail(rid, "connect: %r" % exc)
                    break
                reused = self.reused
                try:
                    status, headers, body = self._exchange(rid)
                except Exception as exc:  # noqa: BLE001 - every outcome is classified
                    self._close()
                    if reused and getattr(exc, "got", 1) == 0 and attempt < 3:
                        load.note_retry(rid, "%r after %d requests answered by %s"
                                        % (exc, self.on_conn, self.last_pid))
                        attempt += 1
                        continue
                    load.fail(rid, "%s connection: %r" % ("reused" if reused else "fresh", exc))
                    break
                if status != 200:
                    load.fail(rid, "status %d: %r" % (status, body[:200]))
                else:
                    load.succeed(body)
                    self.on_conn += 1
                    self.last_pid = body.decode(errors="replace")
                if headers.get("connection", "").lower() == "close":
                    self._close()
                else:
                    self.reused = True
                break
        self._close()


class KeepAliveLoad:
    def __init__(self, address, connections=CONNECTIONS, timeout=30):
        self.address, self.timeout = address, timeout
        self.lock = threading.Lock()
        self.ok = 0
        self.failures = []
        self.retried = []     # (rid, error) of requests retried after a close with no response
        self.unsent = 0       # reused connections found closed before a request was written
        self.pids = set()     # workers that answered
        self.last_pids = []
        self.stop_event = threading.Event()
        self.pause_event = threading.Event()
        self._paused = set()
        self._resume = threading.Condition(self.lock)
        self.conns = [_Conn(self, i) for i in range(connections)]

    # -- called by the connection threads --
    def succeed(self, body):
        with self.lock:
            self.ok += 1
            try:
                pid = int(body)
                self.pids.add(pid)
                self.last_pids = (self.last_pids + [pid])[-64:]
            except ValueError:
                pass

    def fail(self, rid, what):
        with self.lock:
            self.failures.append("%s: %s" % (rid, what))

    def note_retry(self, rid, exc):
        with self.lock:
            self.retried.append((rid, exc))

    def note_unsent(self):
        with self.lock:
            self.unsent += 1

    def paused(self, conn):
        with self.lock:
            self._paused.add(conn)
            self._resume.notify_all()
            while self.pause_event.is_set() and not self.stop_event.is_set():
                self._resume.wait(1)
            self._paused.discard(conn)

    # -- called by the test --
    def __enter__(self):
        for c in self.conns:
            c.start()
        if not self.more(CONNECTIONS):
            raise AssertionError("the load made no progress: %r" % self.failures[:5])
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self.stop_event.set()
        with self.lock:
            self._resume.notify_all()
        for c in self.conns:
            c.join(60)

    def pause(self):
        """Return once every connection is closed and idle, no request in flight."""
        self.pause_event.set()
        with self.lock:
            ok = self._resume.wait_for(lambda: len(self._paused) == len(self.conns), 60)
        if not ok:
            raise AssertionError("the load did not pause")

    def resume(self):
        self.pause_event.clear()
        with self.lock:
            self._resume.notify_all()

    def more(self, n, timeout=START_TIMEOUT):
        with self.lock:
            target = self.ok + n
        return bool(wait_for(lambda: self.ok >= target or self.failures, timeout)) \
            and self.ok >= target


class ZeroLossOps:
    """One test per operation; a test class mixes this with AlicornTestCase and sets
    WORKER_CLASS and EXTRA_ARGS."""
    WORKER_CLASS = "sync"
    EXTRA_ARGS = ()
    WORKERS = 2

    def setUp(self):
        super().setUp()
        self.tmp = self.make_tmpdir()
        self.ledger = os.path.join(self.tmp, "ledger")

    def serve(self, *args, workers=None):
        argv = ["-k", self.WORKER_CLASS, "--keep-alive", "5", "--graceful-timeout", "10"]
        argv += list(self.EXTRA_ARGS) + list(args)
        return self.start_server(APP, argv, workers=workers or self.WORKERS,
                                 env={"ALICORN_LEDGER": self.ledger})

    def ledger_ids(self):
        try:
            with open(self.ledger) as f:
                return set(f.read().split())
        except FileNotFoundError:
            return set()

    def assertZeroLoss(self, load, server, what):
        ran = self.ledger_ids()
        retried = ["%s: written on a reused connection, closed with no response (%s; %s)"
                   % (rid, err, "the app ran it" if rid in ran else "never run")
                   for rid, err in load.retried]
        failures = load.failures + retried
        self.assertEqual(failures, [], "%s: %d failed of %d requests (%d reused connections "
                         "found closed before a write)\n%s"
                         % (what, len(failures), load.ok + len(failures), load.unsent,
                            server.describe()))
        self.assertGreater(load.ok, 0)
        if os.environ.get("ALICORN_TEST_VERBOSE") == "1":
            print("\n%s on %s: %d ok, %d reused connections found closed before a write"
                  % (what, self.WORKER_CLASS, load.ok, load.unsent))

    def wait_gone(self, pids, server):
        self.assertTrue(server.workers_gone(pids, EXIT_TIMEOUT),
                        "workers %r still alive\n%s" % (pids, server.describe()))

    # -- the operations --
    def test_hup(self):
        server = self.serve()
        old = server.wait_workers(self.WORKERS)
        with KeepAliveLoad(server.address) as load:
            server.signal(signal.SIGHUP)
            new = server.wait_workers(self.WORKERS, exclude=old)
            self.wait_gone(old, server)
            self.assertTrue(load.more(200), server.describe())
        self.assertZeroLoss(load, server, "HUP")
        self.assertTrue(set(load.last_pids[-16:]) <= set(new), (load.last_pids, new))

    def test_ttin_ttou(self):
        server = self.serve()
        with KeepAliveLoad(server.address) as load:
            server.signal(signal.SIGTTIN)
            server.wait_workers(self.WORKERS + 1)
            self.assertTrue(load.more(100), server.describe())
            server.signal(signal.SIGTTOU)
            server.wait_workers(self.WORKERS)
            self.assertTrue(load.more(100), server.describe())
            server.signal(signal.SIGTTOU)
            server.wait_workers(self.WORKERS - 1)
            self.assertTrue(load.more(200), server.describe())
        self.assertZeroLoss(load, server, "TTIN/TTOU")

    def test_kill_9_of_a_worker(self):
        # A request inside a worker killed with SIGKILL dies with it, so the kill lands while
        # the load is paused between requests (its connections to that worker die too).
        server = self.serve()
        first = server.wait_workers(self.WORKERS)
        with KeepAliveLoad(server.address) as load:
            load.pause()
            os.kill(first[0], signal.SIGKILL)
            load.resume()
            server.wait_workers(self.WORKERS, exclude=[first[0]])
            self.assertTrue(load.more(200), server.describe())
        self.assertZeroLoss(load, server, "kill -9 of a worker")

    def test_usr1(self):
        access = os.path.join(self.tmp, "access.log")
        server = self.serve("--access-logfile", access)
        with KeepAliveLoad(server.address) as load:
            os.rename(access, access + ".1")
            server.signal(signal.SIGUSR1)
            self.assertTrue(wait_for(lambda: os.path.exists(access)
                                     and os.path.getsize(access) > 0, START_TIMEOUT))
            self.assertTrue(load.more(200), server.describe())
        self.assertZeroLoss(load, server, "USR1")

    def test_usr2_then_term_of_the_old_master(self):
        server = self.serve()
        old_master = server.pid
        old_workers = server.wait_workers(self.WORKERS)
        with KeepAliveLoad(server.address) as load:
            server.signal(signal.SIGUSR2)
            new_workers = []

            def grandchildren():
                masters = [p for p in child_pids(old_master) if p not in old_workers]
                kids = [k for m in masters for k in child_pids(m)]
                new_workers[:] = kids
                return len(kids) == self.WORKERS and masters
            masters = wait_for(grandchildren, START_TIMEOUT)
            self.assertTrue(masters, server.describe())
            new_master = masters[0]
            server.seen_workers.update(new_workers + [new_master])
            # Keep-alive connections stay with the old workers; new ones may go to either.
            server.wait_log(r"\[%d\] \[INFO\] Booting worker" % new_master,
                            count=self.WORKERS)
            self.assertTrue(load.more(100), server.describe())
            server.signal(signal.SIGTERM)
            self.assertEqual(server.wait_exit(), 0, server.describe())
            self.wait_gone(old_workers, server)
            self.assertTrue(load.more(200), server.describe())
        try:
            self.assertZeroLoss(load, server, "USR2 + TERM of the old master")
            self.assertTrue(set(load.last_pids[-16:]) <= set(new_workers),
                            (load.last_pids, new_workers))
        finally:
            os.kill(new_master, signal.SIGTERM)
            wait_for(lambda: not pid_alive(new_master), EXIT_TIMEOUT)

    def test_max_requests_recycling(self):
        server = self.serve("--max-requests", "200", "--max-requests-jitter", "50")
        with KeepAliveLoad(server.address) as load:
            server.wait_log(r"Booting worker", count=self.WORKERS + 4, timeout=60)
            self.assertTrue(load.more(50), server.describe())
        self.assertZeroLoss(load, server, "max_requests recycling")
        self.assertIsNone(server.poll())
