"""The control socket and `alicorn ctl` through the real binary: every verb, text and --json,
the socket's mode and owner check, and bad paths refused at startup (docs/operations.md)."""

import json
import os
import re
import signal
import socket
import stat
import subprocess
import unittest

from harness import (ALICORN_BIN, EXIT_TIMEOUT, START_TIMEOUT, AlicornTestCase, child_pids,
                     free_port, pid_alive, run_alicorn, server_env, wait_for)

APP = "ops_app:app"


def read(path):
    with open(path) as f:
        return f.read()


def ctl(path, *args, json_out=False, timeout=30):
    argv = [ALICORN_BIN, "ctl", "-s", path] + (["--json"] if json_out else []) + list(args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=server_env())


class ControlSocket(AlicornTestCase):
    def start(self, workers=2, args=()):
        self.sock = os.path.join(self.make_tmpdir(), "alicorn.ctl")
        return self.start_server(APP, ["--control-socket", self.sock] + list(args),
                                 workers=workers)

    def ctl_json(self, *args):
        r = ctl(self.sock, *args, json_out=True)
        self.assertEqual(r.returncode, 0, r)
        return json.loads(r.stdout)

    def workers(self):
        return self.ctl_json("show", "workers")

    def wait_workers_shown(self, n):
        ok = wait_for(lambda: len([w for w in self.workers()["workers"]
                                   if w["state"] == "running"]) == n
                      and len(self.workers()["workers"]) == n, START_TIMEOUT)
        self.assertTrue(ok, self.workers())

    def test_socket_mode_and_owner(self):
        self.start()
        st = os.stat(self.sock)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(st.st_uid, os.geteuid())

    def test_custom_mode(self):
        self.start(args=["--control-socket-mode", "0660"])
        self.assertEqual(stat.S_IMODE(os.stat(self.sock).st_mode), 0o660)

    def test_show_workers_text_and_json(self):
        server = self.start(workers=2)
        for _ in range(3):
            self.get(server, "/")
        self.wait_workers_shown(2)
        data = self.workers()
        self.assertEqual(data["target"], 2)
        self.assertEqual(sorted(w["pid"] for w in data["workers"]), sorted(server.workers()))
        self.assertEqual(sum(w["requests"] for w in data["workers"]), 3)
        for w in data["workers"]:
            self.assertGreater(w["rss_bytes"], 1 << 20)
            self.assertGreaterEqual(w["age"], 0)
            self.assertEqual(w["state"], "running")
            self.assertIn(w["serial"], (1, 2), data)
        r = ctl(self.sock, "show", "workers")
        self.assertEqual(r.returncode, 0, r)
        self.assertRegex(r.stdout, r"PID\s+SLOT\s+SERIAL\s+AGE\s+REQUESTS\s+RSS\s+STATE")
        for pid in server.workers():
            self.assertRegex(r.stdout, r"(?m)^%d\s+\d+\s+\d+\s+[\d.]+s\s+\d+\s+[\d.]+ MiB\s+running$" % pid)
        self.assertIn("2 workers (target 2)", r.stdout)

    def test_show_config(self):
        self.start(workers=2, args=["--timeout", "17"])
        cfg = self.ctl_json("show", "config")
        self.assertEqual(cfg["workers"], 2)
        self.assertEqual(cfg["timeout"], 17)
        self.assertEqual(cfg["control_socket"], self.sock)
        r = ctl(self.sock, "show", "config")
        self.assertEqual(r.returncode, 0, r)
        self.assertRegex(r.stdout, r'(?m)^"timeout": 17$')

    def test_show_stats_and_listeners(self):
        server = self.start(workers=1)
        stats = self.ctl_json("show", "stats")
        self.assertEqual(stats["target"], 1)
        self.assertIn("restarts", stats)
        lst = self.ctl_json("show", "listeners")
        self.assertEqual([l["address"] for l in lst["listeners"]],
                         ["http://%s:%d" % server.address])
        r = ctl(self.sock, "show", "stats")
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("workers: 1 (target 1)", r.stdout)

    def test_worker_add_and_remove(self):
        server = self.start(workers=1)
        first = server.wait_workers(1)
        self.assertEqual(self.ctl_json("worker", "add", "2"), {"target": 3})
        server.wait_workers(3)
        self.wait_workers_shown(3)
        r = ctl(self.sock, "worker", "remove")
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("workers target: 2", r.stdout)
        self.assertTrue(server.workers_gone(first, EXIT_TIMEOUT), server.describe())  # oldest
        self.wait_workers_shown(2)
        # Never below one worker: refused with the reason, nothing changes.
        r = ctl(self.sock, "worker", "remove", "2")
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("keeps at least 1", r.stderr)
        r = ctl(self.sock, "worker", "add", "zero")
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("expected a count", r.stderr)
        self.assertEqual(len(server.workers()), 2)
        server.wait_log(r"Control socket: worker add", count=2)
        server.wait_log(r"Handling signal: ttou")

    def test_reload(self):
        server = self.start(workers=2)
        old = server.wait_workers(2)
        r = ctl(self.sock, "reload")
        self.assertEqual(r.returncode, 0, r)
        server.wait_log(r"Handling signal: hup")
        server.wait_workers(2, exclude=old)
        self.assertTrue(server.workers_gone(old, EXIT_TIMEOUT), server.describe())
        self.assertEqual(self.get(server, "/")[0], 200)

    def test_reopen(self):
        tmp = self.make_tmpdir()
        log = os.path.join(tmp, "error.log")
        server = self.start(workers=1, args=["--error-logfile", log])
        wait_for(lambda: os.path.exists(log) and "Booting worker" in read(log), START_TIMEOUT)
        os.rename(log, log + ".1")
        self.assertEqual(self.ctl_json("reopen"), {"done": "reopening the log files"})
        self.assertTrue(wait_for(lambda: os.path.exists(log) and
                                 "Handling signal: usr1" in read(log + ".1"), START_TIMEOUT))
        self.ctl_json("help")  # anything logged after the reopen goes to the new file
        self.assertTrue(wait_for(lambda: os.path.exists(log), START_TIMEOUT))

    def test_shutdown_graceful_and_quick(self):
        for how, sig in (("graceful", "term"), ("quick", "int")):
            server = self.start(workers=1)
            r = ctl(self.sock, "shutdown", how)
            self.assertEqual(r.returncode, 0, r)
            self.assertEqual(server.wait_exit(EXIT_TIMEOUT), 0, server.describe())
            self.assertIn("Handling signal: %s" % sig, server.log())
            self.assertFalse(os.path.exists(self.sock), "control socket left behind")

    def test_help_and_bad_commands(self):
        self.start(workers=1)
        r = ctl(self.sock, "help")
        self.assertEqual(r.returncode, 0, r)
        for verb in ("show workers", "show config", "worker add", "worker remove", "reload",
                     "reopen", "shutdown"):
            self.assertIn(verb, r.stdout)
        r = ctl(self.sock, "frobnicate")
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("unknown command 'frobnicate'", r.stderr)
        r = ctl(self.sock, "frobnicate", json_out=True)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("unknown command", json.loads(r.stdout)["error"])
        # A raw client that sends garbage gets an error, and the server keeps answering.
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(self.sock)
            s.sendall(b"\x00\xff nonsense\n")
            self.assertTrue(s.recv(4096).startswith(b"error\n"))
        self.assertEqual(ctl(self.sock, "show", "stats").returncode, 0)

    def test_ctl_without_server(self):
        path = os.path.join(self.make_tmpdir(), "none.ctl")
        r = ctl(path, "show", "workers")
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("cannot connect to %s" % path, r.stderr)
        r = ctl(path)
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("usage: alicorn ctl", r.stderr)

    def test_missing_folder_is_refused_at_startup(self):
        path = os.path.join(self.make_tmpdir(), "no", "such", "dir", "alicorn.ctl")
        result = run_alicorn(["--control-socket", path, APP])
        self.assertRefused(result, code=2, mentions=[
            re.escape("control_socket: cannot create '%s': the folder '%s' does not exist"
                      % (path, os.path.dirname(path)))])

    def test_socket_in_use_is_refused_and_stale_one_replaced(self):
        server = self.start(workers=1)
        result = run_alicorn(["-b", "127.0.0.1:0", "--control-socket", self.sock, APP])
        self.assertRefused(result, code=2, mentions=["is in use by another running server"])
        self.assertEqual(ctl(self.sock, "show", "stats").returncode, 0)  # still the first's
        server.kill()
        # The killed server left its socket file behind: the next one takes the path over.
        self.assertTrue(os.path.exists(self.sock))
        server2 = self.start_server(APP, ["--control-socket", self.sock])
        self.assertEqual(self.ctl_json("show", "workers")["workers"][0]["pid"],
                         server2.workers()[0])

    def test_disable(self):
        tmp = self.make_tmpdir()
        server = self.start_server("hello:app", ["--no-control-socket", "--chdir",
                                                 os.path.dirname(os.path.abspath(__file__)) + "/apps"],
                                   cwd=tmp)
        self.assertServesHello(server)
        self.assertFalse(os.path.exists(os.path.join(tmp, "alicorn.ctl")))

    def test_default_path_in_working_directory(self):
        tmp = self.make_tmpdir()
        env = {"PYTHONPATH": os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps")}
        server = self.start_server("hello:app", [], cwd=tmp, env=env)
        path = os.path.join(tmp, "alicorn.ctl")
        self.assertTrue(wait_for(lambda: os.path.exists(path), START_TIMEOUT))
        r = subprocess.run([ALICORN_BIN, "ctl", "show", "workers"], cwd=tmp, capture_output=True,
                           text=True, timeout=30, env=server_env())
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("1 workers (target 1)", r.stdout)
        self.assertStopsCleanly(server)
        self.assertFalse(os.path.exists(path))


class Upgrade(AlicornTestCase):
    def test_usr2_new_master_takes_over_control_socket_and_metrics(self):
        import urllib.request
        tmp = self.make_tmpdir()
        sock = os.path.join(tmp, "alicorn.ctl")
        maddr = ("127.0.0.1", free_port())
        server = self.start_server(APP, ["--control-socket", sock, "--metrics-bind",
                                         "%s:%d" % maddr], workers=1)
        old_master = server.pid
        server.signal(signal.SIGUSR2)
        new_master = wait_for(lambda: [p for p in child_pids(old_master)
                                       if len(child_pids(p)) == 1] or None, START_TIMEOUT)
        self.assertTrue(new_master, server.describe())
        new_master = new_master[0]
        server.seen_workers.update(child_pids(new_master) + [new_master])
        # The new master answers on the same path at once.
        def answered_by_new():
            r = ctl(sock, "show", "workers", json_out=True)
            return r.returncode == 0 and [w["pid"] for w in json.loads(r.stdout)["workers"]] == \
                child_pids(new_master)
        self.assertTrue(wait_for(answered_by_new, START_TIMEOUT), server.describe())
        server.signal(signal.SIGTERM)  # the old master leaves...
        self.assertEqual(server.wait_exit(), 0, server.describe())
        # ...without removing the new master's socket, which then binds the metrics port too.
        self.assertTrue(os.path.exists(sock))
        self.assertTrue(answered_by_new())
        def scraped():
            try:
                with urllib.request.urlopen("http://%s:%d/metrics" % maddr, timeout=5) as r:
                    return r.status == 200 and "alicorn_workers 1" in r.read().decode()
            except OSError:
                return False
        self.assertTrue(wait_for(scraped, START_TIMEOUT), server.describe())
        self.assertEqual(ctl(sock, "shutdown").returncode, 0)
        self.assertTrue(wait_for(lambda: not pid_alive(new_master), EXIT_TIMEOUT))
        self.assertFalse(os.path.exists(sock))


if __name__ == "__main__":
    unittest.main()
