"""An app that cannot be loaded stops the server with exit code 4 and a clear log, instead of
respawning workers forever (Gunicorn's contract)."""

import os
import unittest

from harness import AlicornTestCase, free_port

APP_LOAD_ERROR = 4


class AppLoadFailure(AlicornTestCase):
    def run_to_exit(self, app, args=(), workers=1):
        port = free_port()
        server = self.spawn(["-b", "127.0.0.1:%d" % port, "-w", str(workers)] + list(args)
                            + [app])
        code = server.wait_exit(timeout=20)
        return server, code

    def assertAppLoadFailure(self, server, code, exception_text, *more_texts):
        """Exit 4; a master log line saying "failed to load the application" with the
        exception text; the traceback and any further texts somewhere in the log."""
        log = server.log()
        self.assertEqual(code, APP_LOAD_ERROR, server.describe())
        master_lines = [line for line in log.splitlines()
                        if "] [%d] [" % server.pid in line
                        and "failed to load the application" in line.lower()]
        self.assertTrue(master_lines, "no master line saying it failed to load the app\n"
                        + server.describe())
        self.assertTrue(any(exception_text in line for line in master_lines),
                        "master line lacks %r\n%s" % (exception_text, server.describe()))
        self.assertIn("Traceback (most recent call last)", log, server.describe())
        for text in more_texts:
            self.assertIn(text, log, server.describe())

    def test_missing_module(self):
        server, code = self.run_to_exit("nosuchmodule:app")
        self.assertAppLoadFailure(server, code,
                                  "ModuleNotFoundError: No module named 'nosuchmodule'")

    def test_module_raising_import_error(self):
        server, code = self.run_to_exit("broken_import:app")
        self.assertAppLoadFailure(server, code, "ImportError: broken_import is broken on purpose",
                                  "broken_import.py")

    def test_missing_attribute(self):
        server, code = self.run_to_exit("hello:no_such_attribute")
        self.assertEqual(code, APP_LOAD_ERROR, server.describe())
        self.assertIn("no_such_attribute", server.log(), server.describe())
        self.assertIn("failed to load the application", server.log().lower())

    def test_several_workers_do_not_respawn_forever(self):
        server, code = self.run_to_exit("nosuchmodule:app", workers=2)
        self.assertAppLoadFailure(server, code,
                                  "ModuleNotFoundError: No module named 'nosuchmodule'")
        # A few workers may have tried before the master gave up, but not a respawn loop.
        self.assertLessEqual(len(server.booted_pids()), 4, server.describe())

    def test_preload_failure(self):
        server, code = self.run_to_exit("nosuchmodule:app", ["--preload"], workers=2)
        self.assertAppLoadFailure(server, code,
                                  "ModuleNotFoundError: No module named 'nosuchmodule'")
        self.assertEqual(server.booted_pids(), [], "--preload must fail before forking\n"
                         + server.describe())

    def test_app_module_exception_other_than_import_error(self):
        tmp = self.make_tmpdir()
        with open(os.path.join(tmp, "raising_app.py"), "w") as f:
            f.write("raise RuntimeError('boom at import time')\n")
        port = free_port()
        server = self.spawn(["-b", "127.0.0.1:%d" % port, "raising_app:app"], cwd=tmp)
        code = server.wait_exit(timeout=20)
        self.assertAppLoadFailure(server, code, "RuntimeError: boom at import time")


if __name__ == "__main__":
    unittest.main()
