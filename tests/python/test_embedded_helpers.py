"""The core's Python helpers (core/src/python/py), tested on their own with Debian's Python."""
import io
import os
import sys
import tempfile
import textwrap
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "core", "src", "python", "py"))

import alicorn_file_wrapper  # noqa: E402
import alicorn_hooks_support  # noqa: E402
import alicorn_loader  # noqa: E402


class FileWrapperTest(unittest.TestCase):
    def test_iterates_in_blocks_and_exposes_close(self):
        f = io.BytesIO(b"abcdefg")
        w = alicorn_file_wrapper.FileWrapper(f, 3)
        self.assertEqual(list(w), [b"abc", b"def", b"g"])
        w.close()
        self.assertTrue(f.closed)

    def test_no_close_when_the_filelike_has_none(self):
        class Reader:
            def read(self, n):
                return b""
        self.assertFalse(hasattr(alicorn_file_wrapper.FileWrapper(Reader()), "close"))


class LoaderTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        with open(os.path.join(self.tmp.name, "embapp.py"), "w") as f:
            f.write(textwrap.dedent("""
                def app(environ, start_response):
                    return [b"x"]
                def factory(name, n=1):
                    def inner(environ, start_response):
                        return [name.encode() * n]
                    return inner
                nothing = None
                number = 3
                class Ns:
                    app = app
            """))
        sys.path.insert(0, self.tmp.name)
        self.addCleanup(sys.path.remove, self.tmp.name)
        self.addCleanup(sys.modules.pop, "embapp", None)

    def test_attribute_and_dotted_attribute(self):
        self.assertEqual(alicorn_loader.load_app("embapp", "app", 0, "").__name__, "app")
        self.assertEqual(alicorn_loader.load_app("embapp", "Ns.app", 0, "").__name__, "app")

    def test_factory_with_literal_arguments(self):
        app = alicorn_loader.load_app("embapp", "factory", 1, "'ab', n=2")
        self.assertEqual(app({}, None), [b"abab"])

    def test_non_literal_arguments_refused(self):
        with self.assertRaisesRegex(ValueError, "literal"):
            alicorn_loader.load_app("embapp", "factory", 1, "os.environ")

    def test_missing_none_and_not_callable(self):
        with self.assertRaisesRegex(AttributeError, "Failed to find attribute 'nope'"):
            alicorn_loader.load_app("embapp", "nope", 0, "")
        with self.assertRaisesRegex(TypeError, "resolved to None"):
            alicorn_loader.load_app("embapp", "nothing", 0, "")
        with self.assertRaisesRegex(TypeError, "must be callable"):
            alicorn_loader.load_app("embapp", "number", 0, "")


class HooksSupportTest(unittest.TestCase):
    def setUp(self):
        self.lines = []
        self.server = alicorn_hooks_support.make_server(
            lambda level, text: self.lines.append((level, text)))

    def test_log_levels_and_formatting(self):
        log = self.server.log
        log.debug("d %s", 1)
        log.info("i")
        log.warning("w %d", 2)
        log.error("e")
        log.critical("c")
        log.info("bad %d", "x")  # wrong args: never raises
        self.assertEqual([l for l, _ in self.lines], [10, 20, 30, 40, 50, 20])
        self.assertEqual(self.lines[0][1], "d 1")
        self.assertEqual(self.lines[2][1], "w 2")
        self.assertIn("bad %d", self.lines[5][1])

    def test_exception_logs_the_traceback(self):
        try:
            raise KeyError("boom")
        except KeyError:
            self.server.log.exception("failed")
        level, text = self.lines[0]
        self.assertEqual(level, 40)
        self.assertIn("failed", text)
        self.assertIn("KeyError: 'boom'", text)

    def test_worker_shares_the_server_cfg_and_log(self):
        self.server.cfg = {"workers": 3}
        w = alicorn_hooks_support.make_worker(self.server, 2, 0, 99)
        self.assertEqual((w.age, w.ppid, w.pid, w.alive), (2, 99, None, True))
        self.assertIs(w.cfg, self.server.cfg)
        self.assertIs(w.log, self.server.log)

    def test_request_from_environ(self):
        req = alicorn_hooks_support.Request({
            "REQUEST_METHOD": "POST", "RAW_URI": "/a/b?x=1", "PATH_INFO": "/a/b",
            "QUERY_STRING": "x=1", "SERVER_PROTOCOL": "HTTP/1.0", "HTTP_X_TRACE": "t",
            "CONTENT_TYPE": "text/plain", "CONTENT_LENGTH": "", "REMOTE_ADDR": "10.0.0.1"})
        self.assertEqual((req.method, req.path, req.query, req.uri, req.version),
                         ("POST", "/a/b", "x=1", "/a/b?x=1", (1, 0)))
        self.assertIn(("X-TRACE", "t"), req.headers)
        self.assertIn(("CONTENT-TYPE", "text/plain"), req.headers)
        self.assertNotIn("CONTENT-LENGTH", [k for k, _ in req.headers])
        self.assertEqual(req.remote_addr, "10.0.0.1")

    def test_response(self):
        resp = alicorn_hooks_support.Response("404 Not Found", [("A", "b")], 12)
        self.assertEqual((resp.status_code, resp.headers, resp.sent), (404, [("A", "b")], 12))
        self.assertIsNone(alicorn_hooks_support.Response(None, [], None).status_code)

    def test_load_from_path_and_reload(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "myhooks.py")
            with open(path, "w") as f:
                f.write("VALUE = 1\n")
            mod = alicorn_hooks_support.load(path)
            self.assertEqual(mod.VALUE, 1)
            with open(path, "w") as f:
                f.write("VALUE = 2\n")
            self.assertEqual(alicorn_hooks_support.reload(path, mod).VALUE, 2)


if __name__ == "__main__":
    unittest.main()
