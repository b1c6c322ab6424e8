"""The arbiter's operational contract (Gunicorn's): signals under continuous load, USR2 binary
upgrades with inherited sockets, worker timeouts and recycling, systemd socket activation and
sd_notify, server hooks, --daemon, --user/--group/--umask, process titles.

"Under load" means a real client thread opening one connection per request in a loop while the
signal is handled; those tests require zero failed requests. Every wait is bounded and no test
asserts on timing.
"""

import os
import re
import signal
import socket
import stat
import sys
import threading
import time
import unittest

from harness import (ALICORN_BIN, EXIT_TIMEOUT, START_TIMEOUT, AlicornTestCase,
                     can_connect, child_pids, free_port, http_request, pid_alive, run_alicorn,
                     wait_for)

OPS_APP = "ops_app:app"


class LoadClient(threading.Thread):
    """Requests `path` over and over, one new connection each, and counts the outcomes. A
    request fails on any exception (refused, reset, timeout) or a status other than 200."""

    def __init__(self, address, path="/", timeout=30):
        super().__init__(daemon=True)
        self.address, self.path, self.timeout = address, path, timeout
        self.ok = 0
        self.failures = []
        self.bodies = []  # the last few bodies
        self._stop_event = threading.Event()
        self._pause_request = threading.Event()
        self._idle = threading.Event()
        self._resume = threading.Event()

    def run(self):
        while not self._stop_event.is_set():
            if self._pause_request.is_set():
                self._idle.set()
                self._resume.wait(60)
                self._resume.clear()
                self._idle.clear()
                continue
            try:
                status, _, body, _ = http_request(self.address, path=self.path,
                                                  timeout=self.timeout)
                if status == 200:
                    self.ok += 1
                    self.bodies = (self.bodies + [body])[-20:]
                else:
                    self.failures.append("status %d: %r" % (status, body[:200]))
            except Exception as exc:  # counted, reported by the test
                self.failures.append(repr(exc))

    def __enter__(self):
        self.start()
        if not wait_for(lambda: self.ok > 0 or self.failures, START_TIMEOUT):
            raise AssertionError("the load client made no request")
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop_event.set()
        self._resume.set()
        self.join(60)

    def pause(self):
        """Block until no request is in flight and none will start until resume()."""
        self._pause_request.set()
        if not self._idle.wait(60):
            raise AssertionError("the load client did not pause")

    def resume(self):
        self._pause_request.clear()
        self._resume.set()

    def more(self, n=5, timeout=START_TIMEOUT):
        """Wait until n more requests have succeeded; False if not within timeout."""
        target = self.ok + n
        return bool(wait_for(lambda: self.ok >= target, timeout))


def read_pid(path):
    try:
        with open(path) as f:
            text = f.read().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def cmdline_title(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read().split(b"\0")[0].decode(errors="replace")


def proc_status(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].split()
    return None


def kill_quietly(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class _OpsBase(AlicornTestCase):
    WORKER_CLASS = "sync"
    EXTRA_ARGS = ()

    def ops_args(self, *args):
        return ["-k", self.WORKER_CLASS] + list(self.EXTRA_ARGS) + list(args)

    def assertNoFailures(self, load, server, what):
        self.assertEqual(load.failures, [], "%s failed %d of %d requests\n%s"
                         % (what, len(load.failures), len(load.failures) + load.ok,
                            server.describe()))
        self.assertGreater(load.ok, 0, server.describe())

    def wait_gone(self, pids, server):
        self.assertTrue(server.workers_gone(pids, EXIT_TIMEOUT),
                        "workers %r still alive\n%s" % (pids, server.describe()))


class _LoadOps:
    """Signals under continuous load: zero failed requests (any worker class)."""

    def test_hup_replaces_workers_under_load(self):
        server = self.start_server(OPS_APP, self.ops_args(), workers=2)
        old = server.wait_workers(2)
        with LoadClient(server.address) as load:
            server.signal(signal.SIGHUP)
            new = server.wait_workers(2, exclude=old)
            self.wait_gone(old, server)
            self.assertTrue(load.more(10), server.describe())
        self.assertNoFailures(load, server, "HUP")
        self.assertTrue(set(int(b) for b in load.bodies[-3:]) <= set(new), load.bodies)

    def test_ttin_ttou_under_load(self):
        server = self.start_server(OPS_APP, self.ops_args(), workers=2)
        with LoadClient(server.address) as load:
            server.signal(signal.SIGTTIN)
            server.wait_workers(3)
            server.wait_log(r"Booting worker", count=3)
            self.assertTrue(load.more(5), server.describe())
            server.signal(signal.SIGTTOU)
            server.wait_workers(2)
            server.signal(signal.SIGTTOU)
            server.wait_workers(1)
            self.assertTrue(load.more(10), server.describe())
        self.assertNoFailures(load, server, "TTIN/TTOU")

    def test_kill_9_of_a_worker_under_load(self):
        # A request inside a worker killed with SIGKILL is lost with it (nothing can save it),
        # so the kill lands between two requests; everything before and after must succeed.
        server = self.start_server(OPS_APP, self.ops_args(), workers=2)
        first = server.wait_workers(2)
        with LoadClient(server.address) as load:
            victim = first[0]
            load.pause()
            os.kill(victim, signal.SIGKILL)
            load.resume()
            server.wait_log(r"Worker \(pid:%d\) was sent SIGKILL! Perhaps out of memory\?"
                            % victim)
            server.wait_workers(2, exclude=[victim])
            self.assertTrue(load.more(10), server.describe())
        self.assertNoFailures(load, server, "kill -9 of a worker")

    def test_usr2_upgrade_then_term_old_master_under_load(self):
        tmp = self.make_tmpdir()
        pidfile = os.path.join(tmp, "alicorn.pid")
        server = self.start_server(OPS_APP, self.ops_args("-p", pidfile), workers=2)
        old_master = server.pid
        old_workers = server.wait_workers(2)
        self.assertEqual(read_pid(pidfile), old_master)
        with LoadClient(server.address) as load:
            server.signal(signal.SIGUSR2)
            new_master = wait_for(lambda: (read_pid(pidfile) not in (None, old_master)
                                           and read_pid(pidfile)), START_TIMEOUT)
            self.assertTrue(new_master, "no new pid in %s\n%s" % (pidfile, server.describe()))
            self.assertEqual(read_pid(pidfile + ".oldbin"), old_master, server.describe())
            # The new master is a child of the old one, with its own workers.
            self.assertIn(new_master, child_pids(old_master))
            new_workers = wait_for(lambda: len(child_pids(new_master)) == 2
                                   and child_pids(new_master), START_TIMEOUT)
            self.assertTrue(new_workers, server.describe())
            server.seen_workers.update(new_workers + [new_master])
            server.wait_log(r"\[%d\] \[INFO\] Listening at: http://127\.0\.0\.1:%d"
                            % (new_master, server.address[1]))
            self.assertTrue(wait_for(lambda: any(
                int(b) in new_workers for b in load.bodies), START_TIMEOUT),
                "the new workers never answered\n" + server.describe())
            # TERM completes the upgrade: the old master and its workers leave.
            server.signal(signal.SIGTERM)
            self.assertEqual(server.wait_exit(), 0, server.describe())
            self.wait_gone(old_workers, server)
            self.assertTrue(load.more(10), server.describe())
            self.assertTrue(pid_alive(new_master))
            server.wait_log(r"\[%d\] \[INFO\] Master has been promoted" % new_master)
        self.assertNoFailures(load, server, "USR2 + TERM of the old master")
        self.assertEqual(read_pid(pidfile), new_master)
        self.assertFalse(os.path.exists(pidfile + ".oldbin"), server.describe())
        self.assertTrue(set(int(b) for b in load.bodies[-3:]) <= set(new_workers), load.bodies)
        # The new master stops like any master, removing its pidfile.
        os.kill(new_master, signal.SIGTERM)
        self.assertTrue(wait_for(lambda: not pid_alive(new_master), EXIT_TIMEOUT),
                        server.describe())
        self.assertFalse(os.path.exists(pidfile), server.describe())
        self.assertFalse(can_connect(server.address))

    def test_max_requests_recycling_under_load(self):
        server = self.start_server(OPS_APP, self.ops_args("--max-requests", "15",
                                                          "--max-requests-jitter", "5"),
                                   workers=2)
        with LoadClient(server.address) as load:
            server.wait_log(r"Booting worker", count=6, timeout=60)
            self.assertTrue(load.more(5), server.describe())
        self.assertNoFailures(load, server, "max_requests recycling")
        self.assertIsNone(server.poll())


class SyncOps(_OpsBase, _LoadOps):
    """The must-pass set, with the sync worker."""

    def test_hup_rereads_the_configuration(self):
        tmp = self.make_tmpdir()
        conf = os.path.join(tmp, "site.yaml")
        port1, port2 = free_port(), free_port()
        addr1, addr2 = ("127.0.0.1", port1), ("127.0.0.1", port2)

        def write_conf(binds, workers, extra=""):
            with open(conf, "w") as f:
                f.write("wsgi_app: %s\nworker_class: %s\nworkers: %d\nbind:\n%s%s"
                        % (OPS_APP, self.WORKER_CLASS, workers,
                           "".join("  - 127.0.0.1:%d\n" % p for p in binds), extra))

        write_conf([port1], 2)
        server = self.spawn(["-c", conf])
        server.wait_listening(addr1)
        old = server.wait_workers(2)
        with LoadClient(addr1) as load:
            # More workers and a second address.
            write_conf([port1, port2], 3)
            server.signal(signal.SIGHUP)
            server.wait_workers(3, exclude=old)
            server.wait_listening(addr2)
            self.assertServesPid(addr2)
            self.assertTrue(load.more(10), server.describe())
            # A broken file: logged, the running configuration stays.
            with open(conf, "w") as f:
                f.write("workers: [oops\n")
            server.signal(signal.SIGHUP)
            server.wait_log(r"Reloading the configuration failed: .*keeping the current one")
            self.assertTrue(load.more(10), server.describe())
            self.assertEqual(len(server.workers()), 3)
            self.assertTrue(can_connect(addr2))
        self.assertNoFailures(load, server, "HUP with a new configuration")
        # Drop the first address: the socket closes, the second one keeps serving.
        with LoadClient(addr2) as load:
            write_conf([port2], 1)
            server.signal(signal.SIGHUP)
            server.wait_workers(1)
            self.assertTrue(wait_for(lambda: not can_connect(addr1), START_TIMEOUT),
                            server.describe())
            server.wait_log(r"Stopped listening at: http://127\.0\.0\.1:%d" % port1)
            self.assertTrue(load.more(10), server.describe())
        self.assertNoFailures(load, server, "HUP removing a bind address")

    def assertServesPid(self, address):
        status, _, body, _ = http_request(address)
        self.assertEqual(status, 200)
        self.assertTrue(body.isdigit(), body)

    def test_usr1_reopens_log_files_under_load(self):
        tmp = self.make_tmpdir()
        access, error = os.path.join(tmp, "access.log"), os.path.join(tmp, "error.log")
        server = self.start_server(OPS_APP, self.ops_args(
            "--access-logfile", access, "--error-logfile", error), workers=2)
        with LoadClient(server.address) as load:
            self.assertTrue(wait_for(lambda: os.path.getsize(access) > 0, START_TIMEOUT))
            os.rename(access, access + ".1")
            os.rename(error, error + ".1")
            server.signal(signal.SIGUSR1)
            # New lines go to new files under the old names.
            self.assertTrue(wait_for(lambda: os.path.exists(access)
                                     and os.path.getsize(access) > 0, START_TIMEOUT),
                            "no new access log after USR1")
            self.assertTrue(wait_for(lambda: os.path.exists(error), START_TIMEOUT))
            self.assertTrue(load.more(10))
            size = os.path.getsize(access + ".1")
            self.assertTrue(load.more(10))
            # Every worker has moved to the new file: the rotated one no longer grows.
            self.assertEqual(os.path.getsize(access + ".1"), size)
        self.assertNoFailures(load, server, "USR1")
        with open(error + ".1") as f:
            self.assertIn("Handling signal: usr1", f.read())
        with open(access) as f:
            self.assertIn('"GET / HTTP/1.1" 200', f.read())
        server.signal(signal.SIGTERM)
        self.assertEqual(server.wait_exit(), 0)
        with open(error) as f:
            self.assertIn("Shutting down: Master", f.read())

    def test_hung_app_is_killed_after_timeout_and_replaced(self):
        server = self.start_server(OPS_APP, self.ops_args("--timeout", "2"), workers=1)
        [worker] = server.wait_workers(1)
        hung = threading.Thread(target=lambda: self._ignore_errors(
            lambda: http_request(server.address, path="/sleep?s=120", timeout=60)), daemon=True)
        hung.start()
        server.wait_log(r"WORKER TIMEOUT \(pid:%d\)" % worker, timeout=60)
        server.wait_log(r"Worker \(pid:%d\) (exited with code 1|was sent SIGKILL)" % worker,
                        timeout=30)
        [replacement] = server.wait_workers(1, exclude=[worker])
        self.assertFalse(pid_alive(worker))
        status, _, body, _ = self.get(server, "/")
        self.assertEqual((status, int(body)), (200, replacement))

    @staticmethod
    def _ignore_errors(fn):
        try:
            fn()
        except Exception:
            pass

    def test_term_lets_an_in_flight_request_finish_and_removes_the_pidfile(self):
        tmp = self.make_tmpdir()
        pidfile = os.path.join(tmp, "m.pid")
        server = self.start_server(OPS_APP, self.ops_args("--graceful-timeout", "30", "-p",
                                                          pidfile), workers=1)
        [worker] = server.wait_workers(1)
        result = {}

        def slow():
            try:
                result["r"] = http_request(server.address, path="/sleep?s=2", timeout=60)[:3:2]
            except Exception as exc:
                result["r"] = exc

        t = threading.Thread(target=slow, daemon=True)
        t.start()
        self.assertTrue(wait_for(lambda: self._in_app(worker), START_TIMEOUT))
        server.signal(signal.SIGTERM)
        t.join(60)
        self.assertEqual(result.get("r"), (200, b"slept %d" % worker), server.describe())
        self.assertEqual(server.wait_exit(), 0, server.describe())
        self.assertFalse(os.path.exists(pidfile))

    @staticmethod
    def _in_app(pid):
        # The sleeping app: the worker's main thread is in a sleep syscall (clock_nanosleep 230,
        # select 23, nanosleep 35) rather than its poll loop.
        try:
            with open("/proc/%d/syscall" % pid) as f:
                return f.read().split()[0] in ("230", "23", "35", "270")
        except (OSError, IndexError):
            return False

    def test_term_kills_what_outlives_graceful_timeout(self):
        server = self.start_server(OPS_APP, self.ops_args("--graceful-timeout", "1"), workers=1)
        [worker] = server.wait_workers(1)
        t = threading.Thread(target=lambda: self._ignore_errors(
            lambda: http_request(server.address, path="/sleep?s=120", timeout=60)), daemon=True)
        t.start()
        self.assertTrue(wait_for(lambda: self._in_app(worker), START_TIMEOUT))
        server.signal(signal.SIGTERM)
        self.assertEqual(server.wait_exit(), 0, server.describe())
        self.assertFalse(pid_alive(worker))
        self.assertIn("still running after graceful_timeout", server.log())

    def test_term_right_after_hup_reaches_the_new_workers(self):
        # A TERM that lands on a worker between fork and its own signal handlers must not be
        # lost (it would then wait for graceful_timeout, 60 s here, and be killed).
        for _ in range(3):
            server = self.start_server(OPS_APP, self.ops_args("--graceful-timeout", "60"),
                                       workers=2)
            server.signal(signal.SIGHUP)
            server.wait_log(r"Booting worker", count=4)
            server.signal(signal.SIGTERM)
            self.assertEqual(server.wait_exit(), 0, server.describe())
            self.assertNotIn("still running after graceful_timeout", server.log())
            server.cleanup()

    def test_chld_logs_exit_codes_and_signals(self):
        server = self.start_server(OPS_APP, self.ops_args(), workers=2)
        try:
            http_request(server.address, path="/exit?code=7", timeout=10)
        except Exception:
            pass  # the worker died mid-request, as asked
        server.wait_log(r"Worker \(pid:\d+\) exited with code 7")
        server.wait_workers(2)
        victim = server.workers()[0]
        os.kill(victim, signal.SIGSEGV)
        server.wait_log(r"Worker \(pid:%d\) was sent SIGSEGV!" % victim)
        server.wait_workers(2, exclude=[victim])
        self.assertIsNone(server.poll())
        self.assertServesHelloLike(server)

    def assertServesHelloLike(self, server):
        status, _, body, _ = self.get(server, "/")
        self.assertEqual(status, 200)

    def test_winch_is_ignored_when_not_daemonized(self):
        server = self.start_server(OPS_APP, self.ops_args("--log-level", "debug"), workers=2)
        before = server.wait_workers(2)
        server.signal(signal.SIGWINCH)
        server.wait_log(r"SIGWINCH ignored\. Not daemonized")
        self.assertEqual(sorted(server.workers()), sorted(before))
        self.assertServesHelloLike(server)

    def test_usr2_with_a_unix_socket_keeps_the_socket_file(self):
        tmp = self.make_tmpdir()
        path = os.path.join(tmp, "app.sock")
        server = self.spawn(self.ops_args("-w", "1", "-b", "unix:" + path, OPS_APP))
        server.wait_listening(path)
        with LoadClient(path) as load:
            server.signal(signal.SIGUSR2)
            m = server.wait_log(r"new master \(pid: (\d+)\)")[0]
            new_master = int(m.group(1))
            server.seen_workers.add(new_master)
            server.wait_log(r"\[%d\] \[INFO\] Booting worker" % new_master)
            server.signal(signal.SIGTERM)
            self.assertEqual(server.wait_exit(), 0, server.describe())
            # The old master did not remove the file the new one serves on.
            self.assertTrue(os.path.exists(path))
            self.assertTrue(load.more(10), server.describe())
        self.assertNoFailures(load, server, "USR2 on a unix socket")
        os.kill(new_master, signal.SIGTERM)
        self.assertTrue(wait_for(lambda: not pid_alive(new_master), EXIT_TIMEOUT))
        self.assertFalse(os.path.exists(path), "the promoted master left its socket file")

    def test_usr2_whose_new_master_fails_rolls_back(self):
        tmp = self.make_tmpdir()
        conf, pidfile = os.path.join(tmp, "site.yaml"), os.path.join(tmp, "m.pid")
        with open(conf, "w") as f:
            f.write("wsgi_app: %s\nworker_class: %s\nworkers: 2\n" % (OPS_APP, self.WORKER_CLASS))
        port = free_port()
        server = self.spawn(["-c", conf, "-b", "127.0.0.1:%d" % port, "-p", pidfile])
        server.address = ("127.0.0.1", port)
        server.wait_listening(server.address)
        workers = server.wait_workers(2)
        with LoadClient(server.address) as load:
            with open(conf, "w") as f:
                f.write("workers: nope\n")
            server.signal(signal.SIGUSR2)
            server.wait_log(r"The new master \(pid:\d+\) exited with code 2")
            self.assertTrue(wait_for(lambda: read_pid(pidfile) == server.pid, START_TIMEOUT),
                            server.describe())
            self.assertFalse(os.path.exists(pidfile + ".oldbin"))
            self.assertTrue(load.more(10), server.describe())
        self.assertNoFailures(load, server, "a failed USR2")
        self.assertEqual(sorted(server.workers()), sorted(workers))

    def test_usr2_twice_is_refused_while_the_upgrade_runs(self):
        server = self.start_server(OPS_APP, self.ops_args(), workers=1)
        server.signal(signal.SIGUSR2)
        server.wait_log(r"Re-executing .* \(pid: (\d+)\)")
        new_master = int(re.search(r"new master \(pid: (\d+)\)", server.log()).group(1))
        server.seen_workers.add(new_master)
        server.wait_log(r"\[%d\] \[INFO\] Booting worker" % new_master)
        server.signal(signal.SIGUSR2)
        server.wait_log(r"USR2 signal ignored\. Child exists\.")
        os.kill(new_master, signal.SIGUSR2)
        server.wait_log(r"\[%d\] \[WARNING\] USR2 signal ignored\. Parent exists\." % new_master)
        # Rolling back: TERM the new master; the old one takes its pidfile role back and serves.
        os.kill(new_master, signal.SIGTERM)
        server.wait_log(r"The new master \(pid:%d\) exited with code 0" % new_master)
        self.assertServesHelloLike(server)


class SystemdOps(_OpsBase):
    LAUNCHER = ("import os, sys\n"
                "fd = int(sys.argv[1])\n"
                "if fd != 3:\n"
                "    os.dup2(fd, 3)\n"
                "    os.close(fd)\n"
                "os.set_inheritable(3, True)\n"
                "os.environ['LISTEN_FDS'] = '1'\n"
                "os.environ['LISTEN_PID'] = str(os.getpid())\n"
                "os.execv(sys.argv[2], sys.argv[2:])\n")

    def test_socket_activation(self):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        address = listener.getsockname()
        ignored_port = free_port()
        server = self.spawn(["-c", self.LAUNCHER, str(listener.fileno()), ALICORN_BIN,
                             "-w", "2", "-b", "127.0.0.1:%d" % ignored_port] + self.ops_args()
                            + [OPS_APP], program=sys.executable, pass_fds=(listener.fileno(),))
        server.address = address
        listener.close()  # only alicorn holds it now
        server.wait_workers(2)
        server.wait_log(r"socket\(s\) from systemd socket activation; bind is ignored")
        with LoadClient(address) as load:
            self.assertTrue(load.more(10), server.describe())
        self.assertNoFailures(load, server, "socket activation")
        self.assertFalse(can_connect(("127.0.0.1", ignored_port)))
        self.assertEqual(cmdline_title(server.pid), "alicorn: master [%s]" % OPS_APP)
        # The variables are consumed: the app does not see them.
        self.assertStopsCleanly(server)

    def test_sd_notify_ready_reloading_stopping(self):
        tmp = self.make_tmpdir()
        path = os.path.join(tmp, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.bind(path)
        sock.settimeout(START_TIMEOUT)
        messages = []

        def expect(state):
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline:
                for m in messages:
                    if state in m.split("\n"):
                        return m
                try:
                    messages.append(sock.recv(4096).decode())
                except socket.timeout:
                    break
            raise AssertionError("no %s in %r\n%s" % (state, messages, server.describe()))

        server = self.start_server(OPS_APP, self.ops_args(), workers=2,
                                   env={"NOTIFY_SOCKET": path})
        expect("READY=1")
        server.signal(signal.SIGHUP)
        expect("RELOADING=1")
        messages.clear()
        expect("READY=1")
        server.signal(signal.SIGTERM)
        self.assertEqual(server.wait_exit(), 0, server.describe())
        expect("STOPPING=1")

    def test_no_notify_socket_is_a_no_op(self):
        server = self.start_server(OPS_APP, self.ops_args(), workers=1,
                                   env={"NOTIFY_SOCKET": "/nonexistent/notify.sock"})
        self.assertServesHelloLike(server)
        self.assertStopsCleanly(server)

    def assertServesHelloLike(self, server):
        status, _, _, _ = self.get(server, "/")
        self.assertEqual(status, 200)


class HooksOps(_OpsBase):
    def start_with_hooks(self, args=(), workers=2, fail=None, app=OPS_APP):
        tmp = self.make_tmpdir()
        out = os.path.join(tmp, "hooks.out")
        env = {"OPS_HOOKS_OUT": out}
        if fail:
            env["OPS_HOOKS_FAIL"] = fail
        server = self.start_server(app, self.ops_args("--hooks", "ops_hooks", *args),
                                   workers=workers, env=env)
        return server, out

    @staticmethod
    def lines(out):
        try:
            with open(out) as f:
                return [line.split() for line in f.read().splitlines()]
        except FileNotFoundError:
            return []

    def names(self, out):
        return [words[0] for words in self.lines(out)]

    def wait_hook(self, out, name, count=1, timeout=START_TIMEOUT):
        if not wait_for(lambda: self.names(out).count(name) >= count, timeout):
            self.fail("hook %s not called %d time(s): %r" % (name, count, self.lines(out)))

    def test_hook_order_through_a_life(self):
        server, out = self.start_with_hooks(workers=2)
        master = server.pid
        self.wait_hook(out, "post_worker_init", 2)
        names = self.names(out)
        self.assertEqual(names[:2], ["on_starting", "when_ready"], names)
        self.assertLess(names.index("when_ready"), names.index("pre_fork"))
        self.assertLess(names.index("pre_fork"), names.index("post_fork"))
        self.assertLess(names.index("post_fork"), names.index("post_worker_init"))
        by_name = {}
        for words in self.lines(out):
            by_name.setdefault(words[0], []).append(words[1:])
        # on_starting and when_ready run in the master; post_fork in each worker.
        self.assertEqual(by_name["on_starting"][0][:3], [str(master), str(master), "2"])
        self.assertIn("http://127.0.0.1:%d" % server.address[1], by_name["when_ready"][0][1])
        workers = sorted(server.workers())
        self.assertEqual(sorted(int(w[0]) for w in by_name["post_fork"]), workers)
        for w in by_name["post_fork"]:
            self.assertEqual(w[0], w[1])  # worker.pid is the process's pid
            self.assertEqual(w[3], str(master))  # worker.ppid
        self.assertEqual(sorted(w[1] for w in by_name["pre_fork"]), ["1", "2"])  # ages
        self.assertIn("when_ready hook says hello", server.log())

        server.signal(signal.SIGTTIN)
        self.wait_hook(out, "nworkers_changed")
        self.assertEqual([w[2:] for w in self.lines(out) if w[0] == "nworkers_changed"],
                         [["3", "2"]])
        server.signal(signal.SIGHUP)
        self.wait_hook(out, "on_reload")
        server.wait_workers(2)
        self.assertStopsCleanly(server)
        self.wait_hook(out, "on_exit")
        names = self.names(out)
        self.assertEqual(names[-1], "on_exit", names)
        self.assertIn("worker_exit", names)
        self.assertIn("child_exit", names)
        # Every worker that ended was reported by child_exit in the master.
        exited = {w[2] for w in self.lines(out) if w[0] == "child_exit"}
        forked = {w[1] for w in self.lines(out) if w[0] == "post_fork"}
        self.assertEqual(exited, forked)

    def test_request_hooks(self):
        server, out = self.start_with_hooks(workers=1)
        self.assertServesHelloLike(server, "/hello")
        if not wait_for(lambda: "pre_request" in self.names(out), 2):
            self.skipTest("pre_request/post_request are not wired into the request path yet")
        self.wait_hook(out, "post_request")
        [pre] = [w for w in self.lines(out) if w[0] == "pre_request"]
        [post] = [w for w in self.lines(out) if w[0] == "post_request"]
        self.assertEqual(pre[2:], ["GET", "/hello"])
        self.assertEqual(post[2:], ["GET", "/hello", "200"])
        names = self.names(out)
        self.assertLess(names.index("pre_request"), names.index("post_request"))

    def assertServesHelloLike(self, server, path="/"):
        status, _, _, _ = self.get(server, path)
        self.assertEqual(status, 200)

    def test_worker_int_on_a_fast_stop(self):
        server, out = self.start_with_hooks(workers=1)
        [worker] = server.wait_workers(1)
        self.wait_hook(out, "post_worker_init")
        server.signal(signal.SIGINT)
        self.assertEqual(server.wait_exit(), 0, server.describe())
        self.assertIn(["worker_int", str(worker), str(worker)], self.lines(out))
        self.assertEqual(self.names(out)[-1], "on_exit")

    def test_worker_abort_on_timeout(self):
        server, out = self.start_with_hooks(["--timeout", "2"], workers=1)
        [worker] = server.wait_workers(1)
        self.wait_hook(out, "post_worker_init")
        t = threading.Thread(target=lambda: SyncOps._ignore_errors(
            lambda: http_request(server.address, path="/sleep?s=120", timeout=60)), daemon=True)
        t.start()
        self.wait_hook(out, "worker_abort", timeout=60)
        self.assertIn(["worker_abort", str(worker), str(worker)], self.lines(out))
        server.wait_workers(1, exclude=[worker])
        self.assertServesHelloLike(server)

    def test_usr2_runs_pre_exec(self):
        server, out = self.start_with_hooks(workers=1)
        server.signal(signal.SIGUSR2)
        self.wait_hook(out, "pre_exec")
        self.wait_hook(out, "on_starting", 2)  # the new master runs the hooks too
        [_, new_master] = [int(w[1]) for w in self.lines(out) if w[0] == "on_starting"]
        server.seen_workers.add(new_master)
        self.assertNotEqual(new_master, server.pid)
        [pre_exec] = [w for w in self.lines(out) if w[0] == "pre_exec"]
        self.assertEqual(int(pre_exec[1]), new_master)  # in the child, just before exec

    def test_exception_in_on_starting_aborts_startup(self):
        tmp = self.make_tmpdir()
        res = run_alicorn(["-b", "127.0.0.1:%d" % free_port(), "--hooks", "ops_hooks",
                           OPS_APP], env={"OPS_HOOKS_FAIL": "on_starting",
                                          "OPS_HOOKS_OUT": os.path.join(tmp, "o")})
        self.assertEqual(res.returncode, 1, res)
        self.assertIn("RuntimeError: boom in on_starting", res.output)
        self.assertIn("Traceback", res.output)
        self.assertNotIn("Booting worker", res.output)

    def test_exception_in_other_hooks_is_logged_and_serving_goes_on(self):
        for hook in ("when_ready", "pre_fork", "child_exit", "nworkers_changed"):
            with self.subTest(hook=hook):
                server, out = self.start_with_hooks(workers=1, fail=hook)
                server.signal(signal.SIGTTIN)
                server.wait_workers(2)
                os.kill(server.workers()[0], signal.SIGKILL)
                server.wait_log(r"was sent SIGKILL")
                server.wait_workers(2)
                server.wait_log(r"Exception in %s hook:" % hook)
                self.assertIn("RuntimeError: boom in %s" % hook, server.log())
                self.assertServesHelloLike(server)
                self.assertStopsCleanly(server)

    def test_exception_in_post_fork_fails_the_worker_boot(self):
        res = run_alicorn(["-b", "127.0.0.1:%d" % free_port(), "--hooks", "ops_hooks",
                           OPS_APP], env={"OPS_HOOKS_FAIL": "post_fork"})
        self.assertEqual(res.returncode, 3, res)
        self.assertIn("RuntimeError: boom in post_fork", res.output)
        self.assertIn("Reason: Worker failed to boot.", res.output)

    def test_unknown_hooks_module_is_refused(self):
        res = run_alicorn(["-b", "127.0.0.1:%d" % free_port(), "--hooks",
                           "no_such_hooks_module", OPS_APP])
        self.assertEqual(res.returncode, 1, res)
        self.assertIn("No module named 'no_such_hooks_module'", res.output)
        self.assertNotIn("Booting worker", res.output)

    def test_hooks_from_a_file_path(self):
        tmp = self.make_tmpdir()
        out = os.path.join(tmp, "out")
        path = os.path.join(tmp, "site_hooks.py")
        with open(path, "w") as f:
            f.write("def when_ready(server):\n"
                    "    open(%r, 'w').write('ready %%d %%s' %% (server.num_workers,"
                    " server.worker_class))\n" % out)
        server = self.start_server(OPS_APP, self.ops_args("--hooks", path), workers=2)
        self.assertTrue(wait_for(lambda: os.path.exists(out), START_TIMEOUT))
        with open(out) as f:
            self.assertEqual(f.read(), "ready 2 %s" % self.WORKER_CLASS)
        self.assertServesHelloLike(server)


class DaemonOps(_OpsBase):
    def test_daemon_with_pidfile(self):
        tmp = self.make_tmpdir()
        pidfile, errlog = os.path.join(tmp, "d.pid"), os.path.join(tmp, "error.log")
        port = free_port()
        address = ("127.0.0.1", port)
        res = run_alicorn(["-D", "-p", pidfile, "--error-logfile", errlog, "-b",
                           "127.0.0.1:%d" % port, "-w", "2"] + self.ops_args() + [OPS_APP])
        self.assertEqual(res.returncode, 0, res)
        master = wait_for(lambda: read_pid(pidfile), START_TIMEOUT)
        self.assertTrue(master, "no pidfile written\n%r" % res)
        self.addCleanup(self._kill_tree, master)

        def log():
            with open(errlog) as f:
                return f.read()

        self.assertTrue(pid_alive(master))
        self.assertNotEqual(os.getsid(master), os.getsid(0))  # detached from our session
        self.assertEqual(cmdline_title(master), "alicorn: master [%s]" % OPS_APP)
        self.assertTrue(wait_for(lambda: len(child_pids(master)) == 2, START_TIMEOUT), log())
        self.assertTrue(wait_for(lambda: can_connect(address), START_TIMEOUT), log())
        status, _, body, _ = http_request(address)
        self.assertEqual(status, 200)
        self.assertIn(int(body), child_pids(master))
        # WINCH (daemonised): the workers stop, the master stays; HUP brings them back.
        os.kill(master, signal.SIGWINCH)
        self.assertTrue(wait_for(lambda: not child_pids(master), START_TIMEOUT), log())
        self.assertIn("graceful stop of workers", log())
        self.assertTrue(pid_alive(master))
        os.kill(master, signal.SIGHUP)
        self.assertTrue(wait_for(lambda: len(child_pids(master)) == 2, START_TIMEOUT), log())
        status, _, _, _ = http_request(address)
        self.assertEqual(status, 200)
        os.kill(master, signal.SIGTERM)
        self.assertTrue(wait_for(lambda: not pid_alive(master), EXIT_TIMEOUT), log())
        self.assertFalse(os.path.exists(pidfile))
        self.assertFalse(can_connect(address))
        self.assertIn("Shutting down: Master", log())

    @staticmethod
    def _kill_tree(pid):
        for child in child_pids(pid):
            kill_quietly(child)
        kill_quietly(pid)


class ProcessTitles(_OpsBase):
    def test_titles_of_master_and_workers(self):
        server = self.start_server(OPS_APP, self.ops_args(), workers=2)
        self.assertEqual(cmdline_title(server.pid), "alicorn: master [%s]" % OPS_APP)
        with open("/proc/%d/comm" % server.pid) as f:
            self.assertEqual(f.read().strip(), "alicorn: master")
        for w in server.workers():
            # A worker sets its title first thing after fork.
            wait_for(lambda: cmdline_title(w).startswith("alicorn: worker"), START_TIMEOUT)
            self.assertEqual(cmdline_title(w), "alicorn: worker [%s]" % OPS_APP)
            with open("/proc/%d/comm" % w) as f:
                self.assertEqual(f.read().strip(), "alicorn: worker")

    def test_name_setting(self):
        server = self.start_server(OPS_APP, self.ops_args("-n", "my-site"), workers=1)
        self.assertEqual(cmdline_title(server.pid), "alicorn: master [my-site]")
        [w] = server.workers()
        wait_for(lambda: cmdline_title(w).startswith("alicorn: worker"), START_TIMEOUT)
        self.assertEqual(cmdline_title(w), "alicorn: worker [my-site]")
        # A long name overflows the argv area into the environment's, which is fine.
        server2 = self.start_server(OPS_APP, self.ops_args("--name", "x" * 300), workers=1)
        self.assertEqual(cmdline_title(server2.pid), "alicorn: master [%s]" % ("x" * 300))


@unittest.skipUnless(os.geteuid() == 0, "switching users needs root")
class Privileges(_OpsBase):
    def test_user_and_group_for_workers(self):
        tmp = self.make_tmpdir()
        os.chmod(tmp, 0o755)
        sock_path = os.path.join(tmp, "app.sock")
        server = self.start_server(OPS_APP, self.ops_args(
            "--user", "nobody", "--group", "nogroup", "--umask", "0o077",
            "-b", "unix:" + sock_path), workers=2)
        import grp
        import pwd
        nobody = pwd.getpwnam("nobody").pw_uid
        nogroup = grp.getgrnam("nogroup").gr_gid
        self.assertEqual(proc_status(server.pid, "Uid")[0], "0")  # the master keeps root
        for w in server.workers():
            # Privileges drop right after fork, before the app is imported.
            wait_for(lambda: proc_status(w, "Uid")[0] != "0", START_TIMEOUT)
            self.assertEqual(proc_status(w, "Uid"), [str(nobody)] * 4)
            self.assertEqual(proc_status(w, "Gid"), [str(nogroup)] * 4)
            self.assertEqual(proc_status(w, "Groups"), [])
        st = os.stat(sock_path)
        self.assertEqual((st.st_uid, st.st_gid), (nobody, nogroup))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o700)
        status, _, body, _ = http_request(sock_path)
        self.assertEqual(status, 200)
        self.assertIn(int(body), server.workers())

    def test_user_alone_takes_its_primary_group_and_numeric_ids_work(self):
        import pwd
        nobody = pwd.getpwnam("nobody")
        server = self.start_server(OPS_APP, self.ops_args("-u", str(nobody.pw_uid)), workers=1)
        [w] = server.workers()
        wait_for(lambda: proc_status(w, "Uid")[0] != "0", START_TIMEOUT)
        self.assertEqual(proc_status(w, "Uid")[0], str(nobody.pw_uid))
        self.assertEqual(proc_status(w, "Gid")[0], str(nobody.pw_gid))
        status, _, _, _ = self.get(server, "/")
        self.assertEqual(status, 200)


class BadSettings(_OpsBase):
    def test_refused_values(self):
        port = "127.0.0.1:%d" % free_port()
        for args, setting in ((["--umask", "0999"], "umask"), (["-m", "abc"], "umask"),
                              (["--user", "no-such-user-xyz"], "user"),
                              (["-g", "no-such-group-xyz"], "group")):
            with self.subTest(args=args):
                res = run_alicorn(["-b", port] + args + [OPS_APP])
                self.assertRefused(res, code=2, mentions=[setting])

    def test_print_config_shows_the_new_settings(self):
        res = run_alicorn(["--umask", "022", "-D", "-n", "x", "--hooks", "h", "--initgroups",
                           "--print-config", OPS_APP])
        self.assertEqual(res.returncode, 0, res)
        for line in ("umask: 0022", "daemon: true", "proc_name: x", "hooks: h",
                     "initgroups: true"):
            self.assertRegex(res.stdout, r"(?m)^%s$" % re.escape(line))


if __name__ == "__main__":
    unittest.main()
