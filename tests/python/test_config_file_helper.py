"""alicorn_config_file.py (core/src/python/py): running a config file and checking its hooks."""
import os
import sys
import tempfile
import textwrap
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "core", "src", "python", "py"))

import alicorn_config_file as cf  # noqa: E402


class RunTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def write(self, name, text):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write(textwrap.dedent(text))
        return path

    def test_runs_with_file_set_and_any_extension(self):
        path = self.write("settings.conf", "import os\nhere = __file__\nworkers = 2 + 1\n")
        ns = cf.run(path)
        self.assertEqual(ns["here"], os.path.abspath(path))
        self.assertEqual(ns["workers"], 3)
        self.assertIs(sys.modules[cf.MODULE_NAME].workers, 3)

    def test_public_names_skip_private_names_and_modules(self):
        ns = cf.run(self.write("g.py", "import os\n_x = 1\nbind = 'a'\n"))
        self.assertEqual([k for k, _ in cf.public_names(ns)], ["bind"])

    def test_missing_file_and_directory(self):
        with self.assertRaisesRegex(cf.ConfigFileError, "does not exist"):
            cf.run(os.path.join(self.tmp.name, "nope.py"))
        with self.assertRaisesRegex(cf.ConfigFileError, "directory"):
            cf.run(self.tmp.name)

    def test_a_raising_file_keeps_the_previous_module(self):
        cf.run(self.write("good.py", "workers = 5\n"))
        previous = sys.modules[cf.MODULE_NAME]
        with self.assertRaises(ZeroDivisionError):
            cf.run(self.write("bad.py", "workers = 1 / 0\n"))
        self.assertIs(sys.modules[cf.MODULE_NAME], previous)

    def test_python_module_spec(self):
        self.write("site_conf_mod.py", "workers = 7\n")
        sys.path.insert(0, self.tmp.name)
        self.addCleanup(sys.path.remove, self.tmp.name)
        self.addCleanup(sys.modules.pop, "site_conf_mod", None)
        self.assertEqual(cf.run("python:site_conf_mod")["workers"], 7)


class HooksTest(unittest.TestCase):
    def test_no_hooks(self):
        self.assertIsNone(cf.make_hooks({"workers": 2}))

    def test_hooks_checked_for_arity(self):
        def pre_fork(server, worker):
            return "ok"
        hooks = cf.make_hooks({"pre_fork": pre_fork, "on_exit": lambda *a: None})
        self.assertIs(hooks.pre_fork, pre_fork)
        with self.assertRaisesRegex(cf.ConfigFileError, "pre_fork: .* must accept 2 arguments"):
            cf.make_hooks({"pre_fork": lambda server: None})
        with self.assertRaisesRegex(cf.ConfigFileError, "on_starting: a server hook must be callable"):
            cf.make_hooks({"on_starting": "nope"})

    def test_post_request_with_fewer_arguments_is_adapted(self):
        seen = []
        hooks = cf.make_hooks({"post_request": lambda worker, req: seen.append((worker, req))})
        hooks.post_request("w", "r", {}, "resp")
        self.assertEqual(seen, [("w", "r")])
        with self.assertRaisesRegex(cf.ConfigFileError, "2 to 4"):
            cf.make_hooks({"post_request": lambda: None})

    def test_accepts(self):
        self.assertTrue(cf.accepts(lambda a, b=1: None, 1))
        self.assertTrue(cf.accepts(lambda *a: None, 4))
        self.assertFalse(cf.accepts(lambda a: None, 2))
        self.assertTrue(cf.accepts(print, 3))


if __name__ == "__main__":
    unittest.main()
