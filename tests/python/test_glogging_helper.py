"""alicorn_glogging (alicorn.glogging.Logger) and alicorn_logging's logger_class helpers, on
their own with Debian's Python; compared with Gunicorn's glogging when it is installed."""
import datetime
import json
import logging
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "core", "src", "python", "py"))

import alicorn_glogging  # noqa: E402
import alicorn_logging  # noqa: E402

try:
    import gunicorn.glogging as gunicorn_glogging
except ImportError:
    gunicorn_glogging = None

SETTINGS = {
    "loglevel": "info", "errorlog": "-", "accesslog": None, "syslog": False,
    "syslog_addr": "udp://localhost:514", "syslog_prefix": None, "syslog_facility": "user",
    "disable_redirect_access_to_syslog": False, "logconfig": None, "logconfig_dict": None,
    "logconfig_json": None, "user": None, "group": None, "proc_name": None,
    "default_proc_name": "app:app", "capture_output": True,
    "access_log_format": '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"',
}

ENVIRON = {
    "REQUEST_METHOD": "GET", "RAW_URI": "/a%20b?x=1", "PATH_INFO": "/a b",
    "QUERY_STRING": "x=1", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "10.0.0.1",
    "HTTP_USER_AGENT": 'ua "quoted"', "HTTP_REFERER": "http://r/",
    "HTTP_AUTHORIZATION": "Basic Ym9iOnB3", "wsgi.url_scheme": "http",
}


def drop_handlers():
    for name in ("gunicorn.access", "gunicorn.error"):
        log = logging.getLogger(name)
        for h in list(log.handlers):
            log.removeHandler(h)
            h.close()


def make_objects():
    resp = alicorn_logging.AccessResponse("404 Not Found", 404,
                                          [("Content-Type", "text/html"), ("X-A", "1")], 7)
    req = alicorn_logging.AccessRequest("GET", "/a%20b?x=1", (1, 1),
                                        [("USER-AGENT", 'ua "quoted"'), ("X-B", "2")],
                                        "http", "10.0.0.1")
    return resp, req, datetime.timedelta(seconds=1, microseconds=2345)


class GunicornConfigTest(unittest.TestCase):
    def test_types_as_gunicorn(self):
        cfg = alicorn_logging.GunicornConfig(dict(SETTINGS, logconfig_dict='{"version": 1}'))
        self.assertEqual(cfg.logconfig_dict, {"version": 1})
        self.assertFalse(cfg.capture_output)
        self.assertEqual(cfg.user, os.geteuid())
        self.assertIsInstance(cfg.group, int)
        self.assertEqual(cfg.proc_name, "app:app")
        self.assertEqual(alicorn_logging.GunicornConfig(dict(SETTINGS, user="0")).user, 0)
        with self.assertRaisesRegex(AttributeError, "no setting 'nope'"):
            cfg.nope

    def test_load_class_errors(self):
        with self.assertRaises(ModuleNotFoundError):
            alicorn_logging._load_class("no_such_mod_z.Logger")
        with self.assertRaisesRegex(TypeError, "not a class"):
            alicorn_logging._load_class("os.sep")
        self.assertIs(alicorn_logging._load_class("alicorn_glogging:Logger"),
                      alicorn_glogging.Logger)


class AccessRequestTest(unittest.TestCase):
    def test_fields(self):
        resp, req, _ = make_objects()
        self.assertEqual((req.path, req.query, req.version), ("/a%20b", "x=1", (1, 1)))
        self.assertEqual((resp.status_code, resp.sent, resp.response_length), (404, 7, 7))


class AtomsTest(unittest.TestCase):
    def logger(self, module, **settings):
        logger = module.Logger(alicorn_logging.GunicornConfig(dict(SETTINGS, **settings)))
        logger.now = lambda: "[fixed]"
        self.addCleanup(drop_handlers)
        return logger

    def test_user_and_atoms(self):
        atoms = self.logger(alicorn_glogging).atoms(*self.args())
        self.assertEqual(atoms["u"], "bob")
        self.assertEqual(atoms["{x-b}i"], "2")
        self.assertEqual(atoms["{x-a}o"], "1")
        self.assertEqual(atoms["{http_referer}e"], "http://r/")
        self.assertEqual((atoms["T"], atoms["D"], atoms["M"], atoms["L"]),
                         (1, 1002345, 1002, "1.002345"))

    def args(self):
        resp, req, rt = make_objects()
        return resp, req, dict(ENVIRON), rt

    @unittest.skipIf(gunicorn_glogging is None, "gunicorn is not installed")
    def test_same_atoms_as_gunicorn(self):
        ours = self.logger(alicorn_glogging).atoms(*self.args())
        theirs = self.logger(gunicorn_glogging).atoms(*self.args())
        ours.pop("p"), theirs.pop("p")
        self.assertEqual(ours, theirs)

    def access_lines(self, module, fmt):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "access.log")
            logger = self.logger(module, accesslog=path, access_log_format=fmt)
            logger.access(*self.args())
            drop_handlers()
            with open(path) as f:
                return f.read()

    def test_only_the_named_atoms_same_line(self):
        fmt = (SETTINGS["access_log_format"] + " %(U)s %(q)s %(H)s %(B)s %(T)s %(D)s %(M)s "
               "%(L)s %({X-B}i)s %({x-a}o)s %({HTTP_REFERER}e)s %({nope}i)s %(zz)s %({y}x)s")
        line = self.access_lines(alicorn_glogging, fmt)
        self.assertEqual(line, '10.0.0.1 - bob [fixed] "GET /a%20b?x=1 HTTP/1.1" 404 7 '
                               '"http://r/" "ua \\"quoted\\"" /a b x=1 HTTP/1.1 7 1 1002345 '
                               '1002 1.002345 2 1 http://r/ - - -\n')
        if gunicorn_glogging is not None:
            self.assertEqual(line, self.access_lines(gunicorn_glogging, fmt))


class ReopenTest(unittest.TestCase):
    def test_file_handlers_of_every_logger_reopened(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "x.log")
            log = logging.getLogger("alicorn-test-reopen")
            handler = logging.FileHandler(path)
            log.addHandler(handler)
            self.addCleanup(log.removeHandler, handler)
            self.addCleanup(handler.close)
            log.warning("one")
            os.rename(path, path + ".1")
            alicorn_logging.reopen_files()
            log.warning("two")
            handler.flush()
            with open(path) as f:
                self.assertEqual(f.read(), "two\n")
            with open(path + ".1") as f:
                self.assertEqual(f.read(), "one\n")


if __name__ == "__main__":
    unittest.main()
