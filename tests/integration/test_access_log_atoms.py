"""access_log_format: every Gunicorn atom through the real server, each asserted on its own
(h l u t r m U q H s B b f a T D M L p {header}i {header}o {variable}e), in the native access
log; and the same values from logger_class's Python logger (alicorn.glogging, and Gunicorn's
own glogging.Logger when installed), which computes them as Gunicorn does."""

import base64
import os
import re
import time
import unittest

from harness import START_TIMEOUT, AlicornTestCase, slurp, wait_for

ATOMS = ["h", "l", "u", "t", "r", "m", "U", "q", "H", "s", "B", "b", "f", "a", "T", "D", "M",
         "L", "p", "{x-trace}i", "{X-TRACE}i", "{content-type}o", "{content-length}o",
         "{missing}i", "{missing}o", "{REQUEST_METHOD}e", "{raw_uri}e", "{HTTP_X_TRACE}e",
         "{QUERY_STRING}e", "nope"]
FORMAT = "\t".join("%s=%%(%s)s" % (a, a) for a in ATOMS)
PATH = "/at%20oms/x"
QUERY = "k=v&z=1"

try:
    import gunicorn.glogging  # noqa: F401
    HAVE_GUNICORN = True
except ImportError:
    HAVE_GUNICORN = False


def parse(line):
    out = {}
    for field in line.split("\t"):
        name, _, value = field.partition("=")
        out[name] = value
    return out


class AccessLogAtoms(AlicornTestCase):
    def request_line(self, args):
        tmp = self.make_tmpdir()
        path = os.path.join(tmp, "access.log")
        server = self.start_server("hello:app", list(args) + ["--access-logfile", path,
                                                              "--access-logformat", FORMAT])
        before = time.time()
        auth = base64.b64encode(b"bob:s3cret").decode()
        status, _, _, _ = self.get(server, PATH + "?" + QUERY, headers={
            "User-Agent": "atoms-ua/1.0", "Referer": "http://ref.example/page",
            "Authorization": "Basic " + auth, "X-Trace": "trace-1"})
        self.assertEqual(status, 200)
        self.assertTrue(wait_for(lambda: slurp(path),
                                 START_TIMEOUT), server.describe())
        lines = slurp(path).splitlines()
        self.assertEqual(len(lines), 1, lines)
        return parse(lines[0]), server, before

    def check_atoms(self, got, server, before):
        for atom, want in [
                ("h", "127.0.0.1"), ("l", "-"), ("u", "bob"),
                ("r", "GET %s?%s HTTP/1.1" % (PATH, QUERY)), ("m", "GET"),
                ("U", "/at oms/x"), ("q", QUERY), ("H", "HTTP/1.1"), ("s", "200"),
                ("B", "13"), ("b", "13"), ("f", "http://ref.example/page"),
                ("a", "atoms-ua/1.0"), ("{x-trace}i", "trace-1"), ("{X-TRACE}i", "trace-1"),
                ("{content-type}o", "text/plain"), ("{content-length}o", "13"),
                ("{missing}i", "-"), ("{missing}o", "-"), ("{REQUEST_METHOD}e", "GET"),
                ("{raw_uri}e", "%s?%s" % (PATH, QUERY)), ("{HTTP_X_TRACE}e", "trace-1"),
                ("{QUERY_STRING}e", QUERY), ("nope", "-")]:
            with self.subTest(atom=atom):
                self.assertEqual(got[atom], want, got)
        with self.subTest(atom="t"):
            m = re.fullmatch(r"\[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\]", got["t"])
            self.assertTrue(m, got["t"])
            stamp = time.mktime(time.strptime(m.group(1)[:-6], "%d/%b/%Y:%H:%M:%S"))
            self.assertLessEqual(abs(stamp - before), 60)
        with self.subTest(atom="p"):
            self.assertRegex(got["p"], r"^<\d+>$")
            self.assertIn(int(got["p"][1:-1]), server.workers())
        with self.subTest(atom="T D M L"):
            t, d, m, l = int(got["T"]), int(got["D"]), int(got["M"]), got["L"]
            self.assertRegex(l, r"^\d+\.\d{6}$")
            self.assertGreaterEqual(d, 0)
            self.assertEqual(t, d // 1000000)
            self.assertEqual(m, d // 1000)
            self.assertEqual(l, "%d.%06d" % (d // 1000000, d % 1000000))

    def test_native_access_log_every_atom(self):
        got, server, before = self.request_line([])
        self.check_atoms(got, server, before)

    def python_logger(self, base):
        tmp = self.make_tmpdir()
        with open(os.path.join(tmp, "atomlog.py"), "w") as f:
            f.write("from %s import Logger\nclass AtomLogger(Logger):\n    pass\n" % base)
        return ["--pythonpath", tmp, "--logger-class", "atomlog.AtomLogger"]

    def test_alicorn_glogging_every_atom(self):
        got, server, before = self.request_line(self.python_logger("alicorn.glogging"))
        self.check_atoms(got, server, before)

    @unittest.skipUnless(HAVE_GUNICORN, "the gunicorn package is not installed")
    def test_gunicorn_glogging_every_atom(self):
        # Gunicorn's own code computing the atoms from alicorn's resp, req and environ.
        got, server, before = self.request_line(self.python_logger("gunicorn.glogging"))
        self.check_atoms(got, server, before)


if __name__ == "__main__":
    unittest.main()
