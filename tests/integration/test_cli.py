"""The command line itself: --version, --help, --check-config, --print-config, and refusing bad
configuration with exit code 2, a message naming the setting, and nothing forked."""

import os
import unittest

import yaml

from harness import AlicornTestCase, can_connect, free_port, project_version, run_alicorn

CONFIG_ERROR = 2


class Informational(AlicornTestCase):
    def test_version(self):
        res = run_alicorn(["--version"])
        self.assertEqual(res.returncode, 0, res)
        self.assertEqual(res.stdout.strip(), "alicorn %s" % project_version(), res)

    def test_help(self):
        res = run_alicorn(["--help"])
        self.assertEqual(res.returncode, 0, res)
        for flag in ("--bind", "--workers", "--worker-class", "--threads", "--timeout",
                     "--preload", "--chdir", "--pythonpath"):
            self.assertIn(flag, res.stdout, res)

    def test_check_config_good(self):
        port = free_port()
        res = run_alicorn(["--check-config", "-b", "127.0.0.1:%d" % port, "-w", "2",
                           "hello:app"])
        self.assertEqual(res.returncode, 0, res)
        self.assertNotIn("Booting worker", res.output)
        self.assertFalse(can_connect(("127.0.0.1", port)), "--check-config left a listener")

    def test_check_config_bad_value(self):
        res = run_alicorn(["--check-config", "-w", "abc", "hello:app"])
        self.assertNotEqual(res.returncode, 0, res)
        self.assertGreater(res.returncode, 0, res)
        self.assertIn("workers", res.output, res)

    def test_check_config_unloadable_app(self):
        res = run_alicorn(["--check-config", "nosuchmodule:app"])
        self.assertGreater(res.returncode, 0, res)
        self.assertIn("nosuchmodule", res.output, res)

    def test_print_config(self):
        port = free_port()
        res = run_alicorn(["-w", "2", "-b", "127.0.0.1:%d" % port, "-k", "sync", "--timeout",
                           "17", "--print-config", "hello:app"])
        self.assertEqual(res.returncode, 0, res)
        self.assertRegex(res.stdout, r"(?m)^workers: 2$")
        doc = yaml.safe_load(res.stdout)
        self.assertIsInstance(doc, dict, res)
        self.assertEqual(doc["workers"], 2)
        self.assertEqual(doc["bind"], ["127.0.0.1:%d" % port])
        self.assertEqual(doc["worker_class"], "sync")
        self.assertEqual(float(doc["timeout"]), 17.0)
        self.assertEqual(doc["wsgi_app"], "hello:app")
        self.assertNotIn("Booting worker", res.output)

    def test_print_config_reads_back_the_same(self):
        tmp = self.make_tmpdir()
        port = free_port()
        first = run_alicorn(["-w", "3", "-b", "127.0.0.1:%d" % port, "--threads", "4",
                             "-e", "A=1", "--max-requests", "9", "--print-config", "hello:app"])
        self.assertEqual(first.returncode, 0, first)
        conf = os.path.join(tmp, "printed.yaml")
        with open(conf, "w") as f:
            f.write(first.stdout)
        second = run_alicorn(["-c", conf, "--print-config"])
        self.assertEqual(second.returncode, 0, second)
        a, b = yaml.safe_load(first.stdout), yaml.safe_load(second.stdout)
        a.pop("config", None)
        b.pop("config", None)
        self.assertEqual(a, b)


class BadConfiguration(AlicornTestCase):
    """Every refused value: exit 2, the setting named, no worker forked, the app never
    imported (marker.py writes $ALICORN_TEST_MARKER when imported)."""

    def refuse(self, args, mentions, env=None, code=CONFIG_ERROR):
        tmp = self.make_tmpdir()
        marker = os.path.join(tmp, "imported")
        port = free_port()
        full_env = {"ALICORN_TEST_MARKER": marker}
        full_env.update(env or {})
        res = run_alicorn(["-b", "127.0.0.1:%d" % port] + list(args) + ["marker:app"],
                          env=full_env)
        self.assertRefused(res, code=code, mentions=mentions, marker=marker)
        return res

    def test_workers_not_an_integer(self):
        self.refuse(["-w", "abc"], [r"\bworkers\b", "abc"])

    def test_workers_zero(self):
        self.refuse(["-w", "0"], [r"\bworkers\b"])

    def test_workers_negative(self):
        self.refuse(["--workers", "-3"], [r"\bworkers\b"])

    def test_timeout_not_a_number(self):
        self.refuse(["--timeout", "x"], [r"\btimeout\b"])

    def test_log_level_unknown(self):
        self.refuse(["--log-level", "loud"], [r"log.?level", "loud"])

    def test_bind_port_out_of_range(self):
        self.refuse_exact(["-b", "127.0.0.1:99999", "marker:app"], [r"\bbind\b", "99999"])

    def test_threads_zero(self):
        self.refuse(["--threads", "0"], [r"\bthreads\b"])

    def test_unknown_flag(self):
        self.refuse(["--no-such-flag"], ["no-such-flag"])

    def test_bad_value_in_cmd_args_env(self):
        self.refuse([], [r"\bworkers\b"], env={"ALICORN_CMD_ARGS": "-w abc"})

    def test_bad_value_in_yaml(self):
        tmp = self.make_tmpdir()
        conf = os.path.join(tmp, "bad.yaml")
        with open(conf, "w") as f:
            f.write("workers: many\n")
        self.refuse(["-c", conf], [r"\bworkers\b"])

    def test_missing_config_file(self):
        self.refuse(["-c", "/nonexistent/alicorn-it.yaml"], ["/nonexistent/alicorn-it.yaml"])

    def test_no_app_given(self):
        tmp = self.make_tmpdir()
        marker = os.path.join(tmp, "imported")
        res = run_alicorn(["-b", "127.0.0.1:%d" % free_port()],
                          env={"ALICORN_TEST_MARKER": marker})
        self.assertRefused(res, code=CONFIG_ERROR, mentions=[r"app"], marker=marker)

    def test_bad_app_spec(self):
        self.refuse_exact(["-b", "127.0.0.1:%d" % free_port(), "marker:app(("],
                          [r"wsgi_app|app"])

    def refuse_exact(self, args, mentions):
        tmp = self.make_tmpdir()
        marker = os.path.join(tmp, "imported")
        res = run_alicorn(args, env={"ALICORN_TEST_MARKER": marker})
        self.assertRefused(res, code=CONFIG_ERROR, mentions=mentions, marker=marker)


if __name__ == "__main__":
    unittest.main()
