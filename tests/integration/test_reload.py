"""--reload: the master watches the app's *.py files (and --reload-extra-file) and replaces the
workers gracefully on a change. Each test copies an app into a tmpdir, serves it with --chdir
there, rewrites a file and polls (with a deadline) until the body and the worker pid change. A
file that does not compile, or an app that fails to import, is logged with its traceback and the
current worker keeps serving the old code; fixing the file reloads again."""

import os
import signal
import time
import unittest

from harness import START_TIMEOUT, AlicornTestCase, run_alicorn, wait_for

RELOAD_TIMEOUT = 20.0  # a change until the new worker serves (a loaded 2-core machine)

APP_TEMPLATE = """\
import os
from lib.greeting import WORD

def app(environ, start_response):
    body = ({body!r} + "/" + WORD).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body))),
                              ("X-Pid", str(os.getpid()))])
    return [body]
"""

EXTRA_APP = """\
import os

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "settings.txt")) as f:
    SETTING = f.read().strip()

def app(environ, start_response):
    body = SETTING.encode()
    start_response("200 OK", [("Content-Length", str(len(body))), ("X-Pid", str(os.getpid()))])
    return [body]
"""


def write(path, text):
    """Write a file the way an editor saving in place does, with a fresh mtime."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def write_atomic(path, text):
    """Write a new file and rename it over the old one (vim, most IDEs)."""
    tmp = path + ".tmp~"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class ReloadTest(AlicornTestCase):
    def make_app(self):
        d = self.make_tmpdir()
        write(os.path.join(d, "app.py"), APP_TEMPLATE.format(body="v1"))
        write(os.path.join(d, "lib", "__init__.py"), "")
        write(os.path.join(d, "lib", "greeting.py"), 'WORD = "hello"\n')
        return d

    def serve(self, d, worker_class="sync", args=(), app="app:app"):
        extra = ["--threads", "2"] if worker_class == "gthread" else []
        server = self.start_server(app, ["--chdir", d, "--reload", "-k", worker_class]
                                   + extra + list(args), workers=1)
        server.wait_log(r"Reloading on changes to the app's source")
        return server

    def fetch(self, server):
        status, headers, body, _ = self.get(server)
        self.assertEqual(status, 200, server.describe())
        return body, int(headers["x-pid"])

    def wait_body(self, server, expected, old_pid):
        """Poll until the body is `expected` from a worker other than old_pid."""
        deadline = time.monotonic() + RELOAD_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            if server.poll() is not None:
                self.fail("the master exited\n" + server.describe())
            try:
                last = self.fetch(server)
            except AssertionError:
                last = None  # between workers: try again
            if last and last[0] == expected and last[1] != old_pid:
                return last[1]
            time.sleep(0.1)
        self.fail("never served %r from a new worker (last %r, old pid %d)\n%s"
                  % (expected, last, old_pid, server.describe()))

    def check_edit_reloads(self, worker_class):
        d = self.make_app()
        server = self.serve(d, worker_class)
        body, pid1 = self.fetch(server)
        self.assertEqual(body, b"v1/hello")
        write(os.path.join(d, "app.py"), APP_TEMPLATE.format(body="v2"))
        pid2 = self.wait_body(server, b"v2/hello", pid1)
        server.wait_log(r"Reload: .*/app\.py changed; replacing the workers")
        # A module in a subfolder, replaced by rename.
        write_atomic(os.path.join(d, "lib", "greeting.py"), 'WORD = "bonjour"\n')
        self.wait_body(server, b"v2/bonjour", pid2)
        server.wait_log(r"Reload: .*/lib/greeting\.py changed")
        self.assertIsNone(server.poll())

    def test_edit_reloads_sync(self):
        self.check_edit_reloads("sync")

    def test_edit_reloads_uv(self):
        self.check_edit_reloads("uv")

    def test_edit_reloads_gthread(self):
        self.check_edit_reloads("gthread")

    def test_poll_engine(self):
        d = self.make_app()
        server = self.serve(d, args=["--reload-engine", "poll"])
        server.wait_log(r"Reloading on changes to the app's source \(poll")
        body, pid1 = self.fetch(server)
        self.assertEqual(body, b"v1/hello")
        write(os.path.join(d, "app.py"), APP_TEMPLATE.format(body="polled"))
        self.wait_body(server, b"polled/hello", pid1)

    def test_syntax_error_keeps_the_old_workers(self):
        d = self.make_app()
        server = self.serve(d)
        body, pid1 = self.fetch(server)
        write(os.path.join(d, "app.py"), "def app(environ, start_response:\n    return []\n")
        server.wait_log(r"Reload: .*/app\.py changed but does not compile; the current "
                        r"workers keep serving")
        server.wait_log(r"SyntaxError")
        server.wait_log(r'File ".*/app\.py", line 1')
        self.assertEqual(self.fetch(server), (b"v1/hello", pid1))
        self.assertEqual(server.workers(), [pid1])
        # Fixed: reloads.
        write(os.path.join(d, "app.py"), APP_TEMPLATE.format(body="fixed"))
        self.wait_body(server, b"fixed/hello", pid1)

    def test_syntax_error_with_python_in_the_master(self):
        """--hooks runs Python in the master: the compile check forks that interpreter."""
        d = self.make_app()
        hooks = os.path.join(self.make_tmpdir(), "myhooks.py")
        write(hooks, "def when_ready(server):\n    server.log.info('hooks ready')\n")
        server = self.serve(d, args=["--hooks", hooks])
        body, pid1 = self.fetch(server)
        write(os.path.join(d, "app.py"), "x = (\n")
        server.wait_log(r"does not compile; the current workers keep serving")
        server.wait_log(r"SyntaxError")
        self.assertEqual(self.fetch(server), (b"v1/hello", pid1))
        write(os.path.join(d, "app.py"), APP_TEMPLATE.format(body="hooked"))
        self.wait_body(server, b"hooked/hello", pid1)

    def test_import_error_keeps_the_old_workers(self):
        d = self.make_app()
        server = self.serve(d)
        body, pid1 = self.fetch(server)
        write(os.path.join(d, "app.py"), "raise RuntimeError('boom at import')\n")
        server.wait_log(r"RuntimeError: boom at import")
        server.wait_log(r"Reload failed: keeping the current workers")
        self.assertEqual(self.fetch(server), (b"v1/hello", pid1))
        self.assertIsNone(server.poll())
        write(os.path.join(d, "app.py"), APP_TEMPLATE.format(body="again"))
        self.wait_body(server, b"again/hello", pid1)

    def test_import_error_with_two_workers(self):
        d = self.make_app()
        marks = os.path.join(d, "marks")
        os.mkdir(marks)
        # Each worker leaves a mark once it has imported the app, so the edit below cannot race
        # the first import.
        write(os.path.join(d, "app.py"), APP_TEMPLATE.format(body="v1")
              + "open(os.path.join(%r, str(os.getpid())), 'w').close()\n" % marks)
        server = self.start_server("app:app", ["--chdir", d, "--reload"], workers=2)
        server.wait_log(r"Reloading on changes to the app's source")
        old = sorted(server.workers())
        self.assertTrue(wait_for(lambda: sorted(int(p) for p in os.listdir(marks)) == old,
                                 START_TIMEOUT), server.describe())
        write(os.path.join(d, "app.py"), "raise RuntimeError('boom at import')\n")
        server.wait_log(r"Reload failed: keeping the current workers")
        # Both old workers serve on; no new worker is left behind; the master stays.
        server.wait_workers(2)
        self.assertTrue(wait_for(lambda: sorted(server.workers()) == old, START_TIMEOUT),
                        server.describe())
        self.assertEqual(self.fetch(server)[0], b"v1/hello")
        self.assertIsNone(server.poll())
        write(os.path.join(d, "app.py"), APP_TEMPLATE.format(body="two"))
        self.wait_body(server, b"two/hello", -1)
        self.assertTrue(server.workers_gone(old), server.describe())

    def test_extra_file(self):
        d = self.make_tmpdir()
        write(os.path.join(d, "app.py"), EXTRA_APP)
        settings = os.path.join(d, "settings.txt")
        write(settings, "first")
        server = self.serve(d, args=["--reload-extra-file", settings])
        body, pid1 = self.fetch(server)
        self.assertEqual(body, b"first")
        write(settings, "second")
        self.wait_body(server, b"second", pid1)
        server.wait_log(r"Reload: .*/settings\.txt changed")

    def test_other_files_do_not_reload(self):
        d = self.make_app()
        server = self.serve(d)
        body, pid1 = self.fetch(server)
        write(os.path.join(d, "notes.txt"), "not python")
        write(os.path.join(d, "__pycache__", "x.py"), "x = 1\n")
        # A .py change afterwards is the only reload logged.
        write(os.path.join(d, "app.py"), APP_TEMPLATE.format(body="v2"))
        self.wait_body(server, b"v2/hello", pid1)
        log = server.log()
        self.assertNotIn("notes.txt", log)
        self.assertNotIn("__pycache__", log)

    def test_gunicorn_conf_py(self):
        """reload and reload_extra_files from a gunicorn.conf.py, as Gunicorn reads them."""
        d = self.make_tmpdir()
        write(os.path.join(d, "app.py"), EXTRA_APP)
        settings = os.path.join(d, "settings.txt")
        write(settings, "conf-one")
        conf = os.path.join(d, "gunicorn.conf.py")
        write(conf, "reload = True\nreload_engine = 'inotify'\nreload_extra_files = [%r]\n"
              "chdir = %r\n" % (settings, d))
        server = self.start_server("app:app", ["-c", conf], workers=1)
        server.wait_log(r"Reloading on changes to the app's source \(inotify")
        body, pid1 = self.fetch(server)
        self.assertEqual(body, b"conf-one")
        write(settings, "conf-two")
        self.wait_body(server, b"conf-two", pid1)

    def test_pythonpath_tree_is_watched(self):
        d = self.make_app()
        libdir = self.make_tmpdir()  # outside the chdir tree, on --pythonpath
        write(os.path.join(libdir, "lib2", "__init__.py"), "")
        write(os.path.join(libdir, "lib2", "word.py"), 'W = "one"\n')
        write(os.path.join(d, "app.py"), APP_TEMPLATE.format(body="p").replace(
            "from lib.greeting import WORD", "from lib2.word import W as WORD"))
        server = self.serve(d, args=["--pythonpath", libdir])
        body, pid1 = self.fetch(server)
        self.assertEqual(body, b"p/one")
        write(os.path.join(libdir, "lib2", "word.py"), 'W = "two"\n')
        self.wait_body(server, b"p/two", pid1)

    def test_still_watching_after_hup(self):
        d = self.make_app()
        server = self.serve(d)
        body, pid1 = self.fetch(server)
        server.signal(signal.SIGHUP)
        server.wait_log(r"Reloading on changes to the app's source", count=2)
        pid2 = self.wait_body(server, b"v1/hello", pid1)  # HUP replaced the worker
        write(os.path.join(d, "app.py"), APP_TEMPLATE.format(body="after-hup"))
        self.wait_body(server, b"after-hup/hello", pid2)

    def test_bad_engine_is_refused(self):
        result = run_alicorn(["--reload", "--reload-engine", "fsevents", "hello:app"])
        self.assertNotEqual(result.returncode, 0, result.output)
        self.assertIn("reload_engine: 'fsevents' is not an engine", result.output)

    def test_print_config(self):
        result = run_alicorn(["--reload", "--reload-engine", "poll", "--reload-extra-file",
                              "a.txt", "--reload-extra-file", "b.txt", "--print-config",
                              "hello:app"])
        self.assertEqual(result.returncode, 0, result.output)
        self.assertRegex(result.stdout, r"(?m)^reload: true")
        self.assertRegex(result.stdout, r"(?m)^reload_engine: poll")
        self.assertIn("a.txt", result.stdout)
        self.assertIn("b.txt", result.stdout)


if __name__ == "__main__":
    unittest.main()
