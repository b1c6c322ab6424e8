"""logger_class: a Python subclass of glogging.Logger (alicorn.glogging's, or Gunicorn's when
the gunicorn package is installed) gets every request through access(resp, req, environ,
request_time) and the server's error lines through error()/info()/...; on every worker class.
A class that raises in access() does not stop the serving; one that cannot be imported or
built is refused before any fork."""

import json
import os
import signal
import unittest

from harness import START_TIMEOUT, AlicornTestCase, slurp, run_alicorn, wait_for

WORKER_CLASSES = (("-k", "sync"), ("-k", "gthread", "--threads", "2"), ("-k", "uv"))

try:
    import gunicorn.glogging  # noqa: F401  (Debian's python3-gunicorn, for the bench)
    HAVE_GUNICORN = True
except ImportError:
    HAVE_GUNICORN = False

JSON_LOGGER = '''
import json, os, datetime
from %(base)s import Logger

PATH = %(path)r

class JsonLogger(Logger):
    def _write(self, record):
        with open(PATH, "a") as f:
            f.write(json.dumps(record) + "\\n")

    def access(self, resp, req, environ, request_time):
        if req.path == "/health":
            return  # what such loggers are for
        assert isinstance(request_time, datetime.timedelta)
        self._write({
            "kind": "access", "pid": os.getpid(),
            "status": resp.status, "status_code": resp.status_code, "sent": resp.sent,
            "response_length": resp.response_length,
            "resp_headers": [list(h) for h in resp.headers],
            "req_headers": [list(h) for h in req.headers],
            "method": req.method, "path": req.path, "query": req.query,
            "version": list(req.version), "uri": req.uri,
            "environ_method": environ["REQUEST_METHOD"], "path_info": environ["PATH_INFO"],
            "raw_uri": environ["RAW_URI"],
            "request_time_us": request_time.microseconds + request_time.seconds * 1000000,
            "atoms_s": self.atoms(resp, req, environ, request_time)["s"],
        })

    def info(self, msg, *args, **kwargs):
        self._write({"kind": "info", "pid": os.getpid(), "message": str(msg)})
        super().info(msg, *args, **kwargs)
'''

RAISING_LOGGER = '''
from alicorn.glogging import Logger

class Raising(Logger):
    def access(self, resp, req, environ, request_time):
        raise RuntimeError("access logger exploded on " + req.path)
'''

ORDER_APP = '''
PATH = %(path)r

class Body:
    def __init__(self, path):
        self.path = path
    def __iter__(self):
        yield b"ordered"
    def close(self):
        with open(PATH, "a") as f:
            f.write("close " + self.path + "\\n")

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Body(environ["PATH_INFO"])
'''

ORDER_LOGGER = '''
from alicorn.glogging import Logger
PATH = %(path)r

class OrderLogger(Logger):
    def access(self, resp, req, environ, request_time):
        with open(PATH, "a") as f:
            f.write("access " + req.path + "\\n")
'''


def json_records(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class LoggerClass(AlicornTestCase):
    def module(self, tmp, name, source):
        with open(os.path.join(tmp, name + ".py"), "w") as f:
            f.write(source)

    def wait_json(self, path, predicate, server):
        if not wait_for(lambda: predicate(json_records(path)), START_TIMEOUT):
            self.fail("%s:\n%s\n%s" % (path, json_records(path), server.describe()))
        return json_records(path)

    def check_json_logger(self, base):
        for args in WORKER_CLASSES:
            with self.subTest(worker=args[1], base=base):
                tmp = self.make_tmpdir()
                path = os.path.join(tmp, "log.jsonl")
                self.module(tmp, "jsonlog", JSON_LOGGER % {"base": base, "path": path})
                server = self.start_server(
                    "hello:app", ["--pythonpath", tmp, "--logger-class", "jsonlog.JsonLogger",
                                  "--access-logfile", "-"] + list(args))
                self.get(server, "/health")
                status, _, body, _ = self.get(server, "/json/path?x=1&y=2",
                                              headers={"User-Agent": "lc-test",
                                                       "X-Request-Id": "abc"})
                self.assertEqual(status, 200)
                recs = self.wait_json(path, lambda rs: any(r["kind"] == "access" for r in rs),
                                      server)
                access = [r for r in recs if r["kind"] == "access"]
                self.assertEqual(len(access), 1, recs)  # /health skipped by the subclass
                a = access[0]
                self.assertEqual(a["status"], "200 OK")
                self.assertEqual(a["status_code"], 200)
                self.assertEqual(a["atoms_s"], "200")
                self.assertEqual(a["sent"], 13)
                self.assertEqual(a["response_length"], 13)
                self.assertIn(["Content-Type", "text/plain"], a["resp_headers"])
                self.assertIn(["Content-Length", "13"], a["resp_headers"])
                self.assertIn(["USER-AGENT", "lc-test"], a["req_headers"])
                self.assertIn(["X-REQUEST-ID", "abc"], a["req_headers"])
                self.assertEqual(a["method"], "GET")
                self.assertEqual(a["path"], "/json/path")
                self.assertEqual(a["query"], "x=1&y=2")
                self.assertEqual(a["uri"], "/json/path?x=1&y=2")
                self.assertEqual(a["version"], [1, 1])
                self.assertEqual(a["environ_method"], "GET")
                self.assertEqual(a["path_info"], "/json/path")
                self.assertEqual(a["raw_uri"], "/json/path?x=1&y=2")
                self.assertGreaterEqual(a["request_time_us"], 0)
                self.assertIn(a["pid"], server.workers())
                # The server's error lines went through the instance's info(), in the master
                # and in the worker.
                infos = [r for r in recs if r["kind"] == "info"]
                self.assertTrue(any(r["pid"] == server.pid and "Starting alicorn" in
                                    r["message"] for r in infos), infos)
                self.assertTrue(any("Booting worker with pid" in r["message"] for r in infos),
                                infos)
                # No duplicate from the native access log (accesslog is "-", stdout).
                self.assertNotIn("/json/path", server.stdout())
                self.assertStopsCleanly(server)

    def test_alicorn_glogging_subclass_on_every_worker_class(self):
        self.check_json_logger("alicorn.glogging")

    @unittest.skipUnless(HAVE_GUNICORN, "the gunicorn package is not installed")
    def test_gunicorn_glogging_subclass_on_every_worker_class(self):
        self.check_json_logger("gunicorn.glogging")

    def check_base_access_format(self, base):
        # The base class's own access(): accesslog and access_log_format as Gunicorn's.
        tmp = self.make_tmpdir()
        path = os.path.join(tmp, "access.log")
        self.module(tmp, "plainlog", "from %s import Logger\n"
                                     "class Plain(Logger):\n    pass\n" % base)
        server = self.start_server(
            "hello:app", ["--pythonpath", tmp, "--logger-class", "plainlog.Plain",
                          "--access-logfile", path, "--access-logformat",
                          "%(m)s %(U)s %(q)s %(s)s %(b)s %({x-tag}i)s %({content-type}o)s"])
        self.get(server, "/fmt?a=b", headers={"X-Tag": "t1"})
        self.assertTrue(wait_for(lambda: slurp(path),
                                 START_TIMEOUT), server.describe())
        self.assertEqual(slurp(path).splitlines(),
                         ["GET /fmt a=b 200 13 t1 text/plain"])
        # The error log keeps Gunicorn's line shape (written by the Python logger).
        server.wait_log(r"^\[[^]]+\] \[\d+\] \[INFO\] Booting worker with pid")

    def test_atoms_override_is_used_by_the_base_access(self):
        # A subclass that only adds atoms (a common Gunicorn recipe) keeps the base access().
        tmp = self.make_tmpdir()
        path = os.path.join(tmp, "access.log")
        self.module(tmp, "extralog", "from alicorn.glogging import Logger\n"
                                     "class Extra(Logger):\n"
                                     "    def atoms(self, resp, req, environ, request_time):\n"
                                     "        atoms = super().atoms(resp, req, environ, request_time)\n"
                                     "        atoms['X'] = 'extra-' + req.method\n"
                                     "        return atoms\n")
        server = self.start_server(
            "hello:app", ["--pythonpath", tmp, "--logger-class", "extralog.Extra",
                          "--access-logfile", path, "--access-logformat", "%(X)s %(s)s %(U)s"])
        self.get(server, "/extra")
        self.assertTrue(wait_for(lambda: slurp(path), START_TIMEOUT), server.describe())
        self.assertEqual(slurp(path).splitlines(), ["extra-GET 200 /extra"])

    def test_alicorn_glogging_base_access_format(self):
        self.check_base_access_format("alicorn.glogging")

    @unittest.skipUnless(HAVE_GUNICORN, "the gunicorn package is not installed")
    def test_gunicorn_glogging_base_access_format(self):
        self.check_base_access_format("gunicorn.glogging")

    def test_access_raising_keeps_serving(self):
        for args in WORKER_CLASSES:
            with self.subTest(worker=args[1]):
                tmp = self.make_tmpdir()
                self.module(tmp, "raising", RAISING_LOGGER)
                server = self.start_server(
                    "hello:app", ["--pythonpath", tmp, "--logger-class", "raising.Raising"]
                    + list(args))
                for i in range(3):
                    self.assertServesHello(server, "/boom%d" % i)
                server.wait_log(r"Error in the logger_class access\(\)")
                server.wait_log(r"RuntimeError: access logger exploded on /boom2")
                self.assertEqual(len(server.workers()), 1)

    def test_close_runs_before_access(self):
        tmp = self.make_tmpdir()
        path = os.path.join(tmp, "order.txt")
        self.module(tmp, "orderapp", ORDER_APP % {"path": path})
        self.module(tmp, "orderlog", ORDER_LOGGER % {"path": path})
        for args in WORKER_CLASSES:
            with self.subTest(worker=args[1]):
                server = self.start_server(
                    "orderapp:app", ["--pythonpath", tmp, "--logger-class",
                                     "orderlog.OrderLogger"] + list(args))
                marker = "/order-" + args[1]
                self.get(server, marker)
                want = ["close " + marker, "access " + marker]
                ok = wait_for(lambda: [l for l in slurp(path).splitlines()
                                       if l.endswith(marker)] == want
                              if os.path.exists(path) else False, START_TIMEOUT)
                self.assertTrue(ok, (slurp(path),
                                     server.describe()))
                server.kill()

    def test_usr1_reopens_the_loggers_files(self):
        tmp = self.make_tmpdir()
        path = os.path.join(tmp, "access.log")
        self.module(tmp, "plainlog", "from alicorn.glogging import Logger\n"
                                     "class Plain(Logger):\n    pass\n")
        server = self.start_server(
            "hello:app", ["--pythonpath", tmp, "--logger-class", "plainlog.Plain",
                          "--access-logfile", path])
        self.get(server, "/before")
        self.assertTrue(wait_for(lambda: "/before" in slurp(path), START_TIMEOUT), server.describe())
        os.rename(path, path + ".1")
        server.signal(signal.SIGUSR1)

        def in_new_file():
            self.get(server, "/after")
            return "/after" in slurp(path)

        self.assertTrue(wait_for(in_new_file, START_TIMEOUT, interval=0.2), server.describe())

    def test_class_object_in_python_config_file_and_hup(self):
        # Gunicorn configs set logger_class to the class itself, often defined in the file.
        tmp = self.make_tmpdir()
        path = os.path.join(tmp, "access.txt")
        conf = os.path.join(tmp, "conf.py")
        source = ("from alicorn.glogging import Logger\n"
                  "class FileLogger(Logger):\n"
                  "    def access(self, resp, req, environ, request_time):\n"
                  "        with open(%r, 'a') as f:\n"
                  "            f.write('%%s %%s\\n' %% (req.path, resp.status_code))\n"
                  "logger_class = FileLogger\n" % path)
        with open(conf, "w") as f:
            f.write(source)
        server = self.start_server("hello:app", ["-c", conf])
        self.get(server, "/from-conf")
        self.assertTrue(wait_for(lambda: "/from-conf 200" in slurp(path), START_TIMEOUT),
                        server.describe())
        # HUP, same class: new workers, the instance kept, still logging.
        old = server.workers()
        server.signal(signal.SIGHUP)
        server.wait_workers(1, exclude=old)
        self.get(server, "/after-hup")
        self.assertTrue(wait_for(lambda: "/after-hup 200" in slurp(path), START_TIMEOUT),
                        server.describe())
        # HUP to a class that cannot be imported: logged, the running one kept.
        with open(conf, "w") as f:
            f.write("logger_class = 'no_such_module_y.Logger'\n")
        server.signal(signal.SIGHUP)
        server.wait_log(r"Reloading the configuration failed: logger_class: .*no_such_module_y")
        self.get(server, "/after-bad-hup")
        self.assertTrue(wait_for(lambda: "/after-bad-hup 200" in slurp(path), START_TIMEOUT),
                        server.describe())

    def test_import_error_refused_before_fork(self):
        r = run_alicorn(["--logger-class", "no_such_module_x.MyLogger", "hello:app"])
        self.assertRefused(r, mentions=["logger_class", "no_such_module_x.MyLogger",
                                        "ModuleNotFoundError"])
        tmp = self.make_tmpdir()
        self.module(tmp, "badinit", "from alicorn.glogging import Logger\n"
                                    "class Bad(Logger):\n"
                                    "    def __init__(self, cfg):\n"
                                    "        raise ValueError('no logger for you')\n"
                                    "NotAClass = 3\n")
        r = run_alicorn(["--pythonpath", tmp, "--logger-class", "badinit.Bad", "hello:app"])
        self.assertRefused(r, mentions=["logger_class", "badinit.Bad", "no logger for you",
                                        "Traceback", "line 4"])
        r = run_alicorn(["--pythonpath", tmp, "--logger-class", "badinit.Missing", "hello:app"])
        self.assertRefused(r, mentions=["logger_class", "badinit.Missing", "AttributeError"])
        r = run_alicorn(["--pythonpath", tmp, "--logger-class", "badinit.NotAClass",
                         "hello:app"])
        self.assertRefused(r, mentions=["logger_class", "not a class"])
        r = run_alicorn(["--logger-class", "NoDots", "hello:app"])
        self.assertRefused(r, mentions=["logger_class", "NoDots", "module.Class"])

    def test_default_names_stay_native(self):
        for name in ("gunicorn.glogging.Logger", "simple"):
            server = self.start_server("hello:app", ["--logger-class", name,
                                                     "--access-logfile", "-"])
            self.assertServesHello(server, "/native")
            self.assertTrue(wait_for(lambda: '"GET /native HTTP/1.1" 200 13' in
                                     server.stdout(), START_TIMEOUT), server.describe())
            server.kill()


if __name__ == "__main__":
    unittest.main()
