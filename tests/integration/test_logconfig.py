"""logconfig, logconfig_dict, logconfig_json: the error and access logs through Python's
logging (loggers gunicorn.error and gunicorn.access), as Gunicorn configs use them; bad input
refused before fork; on every worker class."""

import json
import os
import signal
import unittest

from harness import START_TIMEOUT, AlicornTestCase, slurp, run_alicorn, wait_for

# A JSON line per record, with nothing but logging.Formatter.
JSON_FORMAT = ('{"logger": "%(name)s", "level": "%(levelname)s", "pid": %(process)d, '
               '"message": "%(message)s"}')

WORKER_CLASSES = (("-k", "sync"), ("-k", "gthread", "--threads", "2"), ("-k", "uv"))


def dict_config(path):
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"format": JSON_FORMAT}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": path,
                              "formatter": "json"}},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["file"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["file"], "propagate": False},
        },
    }


def records(path):
    """The file's lines, parsed (access messages hold quotes: taken apart by hand)."""
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            head, sep, _ = line.partition(', "message": "')
            if not sep or not line.endswith('"}'):
                continue
            rec = json.loads(head + "}")
            rec["message"] = line[len(head) + len(sep):-2]
            out.append(rec)
    return out


class LogConfig(AlicornTestCase):
    def wait_records(self, path, predicate, server):
        ok = wait_for(lambda: predicate(records(path)), START_TIMEOUT)
        if not ok:
            text = open(path).read() if os.path.exists(path) else "(no file)"
            self.fail("log file %s:\n%s\n%s" % (path, text, server.describe()))
        return records(path)

    def check_error_and_access(self, server, path, marker="/logged-path"):
        self.assertServesHello(server)
        self.get(server, marker + "?q=1", headers={"User-Agent": "logconfig-test"})
        recs = self.wait_records(path, lambda rs: any(marker in r["message"] for r in rs),
                                 server)
        errors = [r for r in recs if r["logger"] == "gunicorn.error"]
        access = [r for r in recs if r["logger"] == "gunicorn.access"]
        self.assertTrue(any(r["message"].startswith("Starting alicorn") for r in errors), recs)
        self.assertTrue(any(r["pid"] == server.pid for r in errors), recs)
        self.assertTrue(any("Booting worker with pid" in r["message"] for r in errors), recs)
        line = [r for r in access if marker in r["message"]][0]
        self.assertEqual(line["level"], "INFO")
        self.assertIn('"GET %s?q=1 HTTP/1.1" 200 13' % marker, line["message"])
        self.assertIn("logconfig-test", line["message"])
        self.assertIn(line["pid"], server.workers())
        self.assertTrue(any('"GET / HTTP/1.1" 200' in r["message"] for r in access), recs)
        # Nothing went to the native error log shape on stderr.
        self.assertNotIn("Booting worker", server.log())
        return recs

    def python_conf(self, tmp, path, extra=""):
        conf = os.path.join(tmp, "conf.py")
        with open(conf, "w") as f:
            f.write("logconfig_dict = %r\n%s" % (dict_config(path), extra))
        return conf

    def test_dict_config_in_python_config_file(self):
        tmp = self.make_tmpdir()
        path = os.path.join(tmp, "log.jsonl")
        server = self.start_server("hello:app", ["-c", self.python_conf(tmp, path)])
        self.check_error_and_access(server, path)
        self.assertStopsCleanly(server)
        self.assertTrue(any("Shutting down" in r["message"] or "Worker exiting" in r["message"]
                            for r in records(path)), records(path))

    def test_dict_config_access_on_every_worker_class(self):
        for args in WORKER_CLASSES:
            with self.subTest(worker=args[1]):
                tmp = self.make_tmpdir()
                path = os.path.join(tmp, "log.jsonl")
                server = self.start_server("hello:app", ["-c", self.python_conf(tmp, path)]
                                           + list(args), workers=2)
                self.check_error_and_access(server, path, "/on-" + args[1])
                server.kill()

    def test_hup_reconfigures_and_keeps_on_bad_dict(self):
        tmp = self.make_tmpdir()
        first = os.path.join(tmp, "first.jsonl")
        second = os.path.join(tmp, "second.jsonl")
        conf = self.python_conf(tmp, first)
        server = self.start_server("hello:app", ["-c", conf])
        self.check_error_and_access(server, first, "/before-hup")
        # A dict dictConfig refuses: logged, the running configuration kept.
        with open(conf, "w") as f:
            f.write("logconfig_dict = {'version': 1, 'handlers': "
                    "{'h': {'class': 'no.such.Handler'}}}\n")
        server.signal(signal.SIGHUP)
        self.wait_records(first, lambda rs: any("logconfig_dict" in r["message"] for r in rs),
                          server)
        self.get(server, "/after-bad-hup")
        self.wait_records(first, lambda rs: any("/after-bad-hup" in r["message"] for r in rs),
                          server)
        # A good one: the new workers log to the new file.
        self.python_conf(tmp, second)
        old = server.workers()
        server.signal(signal.SIGHUP)
        server.wait_workers(1, exclude=old)
        self.get(server, "/after-good-hup")
        self.wait_records(second, lambda rs: any("/after-good-hup" in r["message"]
                                                 for r in rs), server)

    def test_ini_file_config(self):
        tmp = self.make_tmpdir()
        path = os.path.join(tmp, "log.jsonl")
        ini = os.path.join(tmp, "logging.ini")
        with open(ini, "w") as f:
            f.write("""[loggers]
keys=root,error,access

[handlers]
keys=file

[formatters]
keys=json

[logger_root]
level=WARNING
handlers=

[logger_error]
level=INFO
handlers=file
propagate=0
qualname=gunicorn.error

[logger_access]
level=INFO
handlers=file
propagate=0
qualname=gunicorn.access

[handler_file]
class=FileHandler
formatter=json
args=('%%(here)s/log.jsonl',)

[formatter_json]
format=%s
""" % JSON_FORMAT)
        server = self.start_server("hello:app", ["--log-config", ini])
        self.check_error_and_access(server, path)

    def test_json_file_config(self):
        tmp = self.make_tmpdir()
        path = os.path.join(tmp, "log.jsonl")
        js = os.path.join(tmp, "logging.json")
        with open(js, "w") as f:
            json.dump(dict_config(path), f)
        for args in WORKER_CLASSES:
            with self.subTest(worker=args[1]):
                server = self.start_server("hello:app", ["--log-config-json", js] + list(args))
                self.check_error_and_access(server, path, "/json-" + args[1])
                server.kill()

    def test_defaults_without_loggers(self):
        # Only a formatter change: Gunicorn's defaults still send gunicorn.error to stderr and
        # gunicorn.access to stdout (access lines are on with a logconfig even without
        # accesslog).
        tmp = self.make_tmpdir()
        conf = os.path.join(tmp, "conf.py")
        with open(conf, "w") as f:
            f.write("logconfig_dict = {'formatters': {'generic': "
                    "{'format': 'PYLOG %(name)s %(levelname)s %(message)s'}}}\n")
        server = self.start_server("hello:app", ["-c", conf])
        self.assertServesHello(server)
        server.wait_log(r"PYLOG gunicorn.error INFO Booting worker with pid")
        self.assertTrue(wait_for(lambda: "PYLOG gunicorn.access INFO 127.0.0.1" in
                                 server.stdout(), START_TIMEOUT), server.describe())

    def test_loglevel_and_dict_levels(self):
        # The dict's level decides: WARNING drops the INFO startup lines.
        tmp = self.make_tmpdir()
        path = os.path.join(tmp, "log.jsonl")
        cfg = dict_config(path)
        cfg["loggers"]["gunicorn.error"]["level"] = "WARNING"
        conf = os.path.join(tmp, "conf.py")
        with open(conf, "w") as f:
            f.write("logconfig_dict = %r\n" % cfg)
        server = self.start_server("hello:app", ["-c", conf])
        self.get(server, "/after-level")
        recs = self.wait_records(path, lambda rs: any("/after-level" in r["message"]
                                                      for r in rs), server)
        self.assertFalse([r for r in recs if r["logger"] == "gunicorn.error"], recs)

    def test_bad_input_refused_at_startup(self):
        tmp = self.make_tmpdir()
        missing = os.path.join(tmp, "nope.ini")
        r = run_alicorn(["--log-config", missing, "hello:app"])
        self.assertRefused(r, mentions=["logconfig", "nope.ini", "not found"])
        r = run_alicorn(["--log-config-json", os.path.join(tmp, "nope.json"), "hello:app"])
        self.assertRefused(r, mentions=["logconfig_json", "nope.json"])
        bad_json = os.path.join(tmp, "bad.json")
        with open(bad_json, "w") as f:
            f.write("{not json")
        r = run_alicorn(["--log-config-json", bad_json, "hello:app"])
        self.assertRefused(r, mentions=["logconfig_json", "not JSON"])
        conf = os.path.join(tmp, "conf.py")
        with open(conf, "w") as f:
            f.write("logconfig_dict = {'version': 1, 'handlers': "
                    "{'h': {'class': 'no.such.Handler'}}}\n")
        r = run_alicorn(["-c", conf, "hello:app"])
        self.assertRefused(r, mentions=["logconfig_dict", "dictConfig", "handler 'h'"])
        with open(conf, "w") as f:
            f.write("import sys\nlogconfig_dict = {'version': 1, 'x': sys.stdout}\n")
        r = run_alicorn(["-c", conf, "hello:app"])
        self.assertRefused(r, mentions=["logconfig_dict", "ext://sys.stdout"])
        bad_ini = os.path.join(tmp, "bad.ini")
        with open(bad_ini, "w") as f:
            f.write("[loggers]\nkeys=root\n")
        r = run_alicorn(["--log-config", bad_ini, "hello:app"])
        self.assertRefused(r, mentions=["logconfig", "bad.ini", "fileConfig"])

    def test_empty_dict_keeps_the_native_log(self):
        # Gunicorn's default logconfig_dict, {}, means no logconfig.
        tmp = self.make_tmpdir()
        conf = os.path.join(tmp, "conf.py")
        with open(conf, "w") as f:
            f.write("logconfig_dict = {}\n")
        server = self.start_server("hello:app", ["-c", conf])
        self.assertServesHello(server)
        server.wait_log(r"^\[[^]]+\] \[\d+\] \[INFO\] Booting worker with pid")

    def test_usr1_reopens_the_file_handlers(self):
        # logrotate moves the file away and sends USR1: the master and the workers reopen
        # their logging.FileHandler streams, so new lines land in a new file at the path.
        for args in WORKER_CLASSES:
            with self.subTest(worker=args[1]):
                tmp = self.make_tmpdir()
                path = os.path.join(tmp, "log.jsonl")
                rotated = path + ".1"
                server = self.start_server("hello:app", ["-c", self.python_conf(tmp, path)]
                                           + list(args))
                self.check_error_and_access(server, path, "/before-rotate")
                os.rename(path, rotated)
                server.signal(signal.SIGUSR1)
                marker = "/after-rotate-" + args[1]

                def in_new_file():
                    self.get(server, marker)
                    return any(marker in r["message"] for r in records(path))

                self.assertTrue(wait_for(in_new_file, START_TIMEOUT, interval=0.2),
                                "no access line in the reopened file\n%s" % server.describe())
                # From then on the old file gets nothing: the worker's handler was reopened,
                # not duplicated.
                old_count = len(records(rotated))
                self.get(server, marker + "-again")
                self.wait_records(path, lambda rs: any(marker + "-again" in r["message"]
                                                       for r in rs), server)
                self.assertEqual(len(records(rotated)), old_count)
                # The master's own lines go to the new file too.
                server.signal(signal.SIGTTIN)
                recs = self.wait_records(
                    path, lambda rs: any(r["pid"] == server.pid and "ttin" in r["message"]
                                         for r in rs), server)
                self.assertTrue(any(r["logger"] == "gunicorn.error" for r in recs), recs)
                self.assertTrue(any("/before-rotate" in r["message"]
                                    for r in records(rotated)))
                server.kill()

    def test_usr1_reopens_the_apps_own_file_handlers(self):
        # No logconfig at all: a FileHandler the app configured is reopened too (Gunicorn's
        # reopen_files walks every logger).
        tmp = self.make_tmpdir()
        path = os.path.join(tmp, "app.log")
        app = os.path.join(tmp, "applog.py")
        with open(app, "w") as f:
            f.write("import logging\n"
                    "log = logging.getLogger('myapp')\n"
                    "log.setLevel(logging.INFO)\n"
                    "log.addHandler(logging.FileHandler(%r))\n"
                    "def app(environ, start_response):\n"
                    "    log.info('served %%s', environ['PATH_INFO'])\n"
                    "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
                    "    return [b'ok']\n" % path)
        server = self.start_server("applog:app", ["--pythonpath", tmp])
        self.get(server, "/one")
        self.assertTrue(wait_for(lambda: "served /one" in slurp(path), START_TIMEOUT),
                        server.describe())
        os.rename(path, path + ".1")
        server.signal(signal.SIGUSR1)

        def in_new_file():
            self.get(server, "/two")
            return "served /two" in slurp(path)

        self.assertTrue(wait_for(in_new_file, START_TIMEOUT, interval=0.2), server.describe())


if __name__ == "__main__":
    unittest.main()
