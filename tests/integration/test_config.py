"""Configuration layers (YAML < ALICORN_CMD_ARGS < command line) and the settings that shape
the app's process: --chdir, --pythonpath, -e, --pid, and the log settings."""

import os
import re
import signal
import time
import unittest

from harness import APPS_DIR, AlicornTestCase, can_connect, free_port, wait_for


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


class YamlConfig(AlicornTestCase):
    def test_yaml_config_is_served(self):
        tmp = self.make_tmpdir()
        port = free_port()
        conf = write(os.path.join(tmp, "site.yaml"),
                     'bind: ["127.0.0.1:%d"]\n'
                     "workers: 2\n"
                     "worker_class: sync\n"
                     'wsgi_app: "hello:app"\n'
                     "chdir: %s\n" % (port, APPS_DIR))
        server = self.spawn(["-c", conf], cwd=tmp)
        server.address = ("127.0.0.1", port)
        server.wait_listening(server.address)
        server.wait_workers(2)
        self.assertServesHello(server)

    def test_long_config_flag(self):
        tmp = self.make_tmpdir()
        port = free_port()
        conf = write(os.path.join(tmp, "site.yaml"),
                     "bind:\n  - 127.0.0.1:%d\nworkers: 1\n" % port)
        server = self.spawn(["--config", conf, "hello:app"])
        server.address = ("127.0.0.1", port)
        server.wait_listening(server.address)
        self.assertServesHello(server)


class Precedence(AlicornTestCase):
    def assertWorkerCountStays(self, server, count):
        server.wait_workers(count)
        time.sleep(0.5)  # more workers than asked for would have been forked by now
        self.assertEqual(len(server.workers()), count, server.describe())

    def test_cmd_args_env_is_honoured(self):
        port = free_port()
        server = self.spawn(["hello:app"],
                            env={"ALICORN_CMD_ARGS": "-w 2 --bind 127.0.0.1:%d" % port})
        server.address = ("127.0.0.1", port)
        server.wait_listening(server.address)
        self.assertWorkerCountStays(server, 2)
        self.assertServesHello(server)

    def test_command_line_beats_cmd_args(self):
        env_port, cli_port = free_port(), free_port()
        while cli_port == env_port:
            cli_port = free_port()
        server = self.spawn(["-w", "1", "-b", "127.0.0.1:%d" % cli_port, "hello:app"],
                            env={"ALICORN_CMD_ARGS": "-w 3 -b 127.0.0.1:%d" % env_port})
        server.address = ("127.0.0.1", cli_port)
        server.wait_listening(server.address)
        self.assertWorkerCountStays(server, 1)
        self.assertServesHello(server)
        self.assertFalse(can_connect(("127.0.0.1", env_port)),
                         "the ALICORN_CMD_ARGS bind should be overridden by -b")

    def test_cmd_args_beat_yaml(self):
        tmp = self.make_tmpdir()
        port = free_port()
        conf = write(os.path.join(tmp, "c.yaml"),
                     'bind: ["127.0.0.1:%d"]\nworkers: 1\nwsgi_app: hello:app\n' % port)
        server = self.spawn(["-c", conf], env={"ALICORN_CMD_ARGS": "--workers 2"})
        server.address = ("127.0.0.1", port)
        server.wait_listening(server.address)
        self.assertWorkerCountStays(server, 2)

    def test_command_line_beats_yaml(self):
        tmp = self.make_tmpdir()
        yaml_port, cli_port = free_port(), free_port()
        while cli_port == yaml_port:
            cli_port = free_port()
        conf = write(os.path.join(tmp, "c.yaml"),
                     'bind: ["127.0.0.1:%d"]\nworkers: 2\nwsgi_app: nosuchmodule:app\n'
                     % yaml_port)
        server = self.spawn(["-c", conf, "-w", "1", "-b", "127.0.0.1:%d" % cli_port,
                             "hello:app"])
        server.address = ("127.0.0.1", cli_port)
        server.wait_listening(server.address)
        self.assertWorkerCountStays(server, 1)
        self.assertServesHello(server)
        self.assertFalse(can_connect(("127.0.0.1", yaml_port)))


class AppProcessSettings(AlicornTestCase):
    def test_chdir(self):
        tmp = self.make_tmpdir()
        server = self.start_server("envinfo:app", ["--chdir", APPS_DIR], cwd=tmp)
        doc = self.get_json(server, "/")
        self.assertEqual(os.path.realpath(doc["cwd"]), os.path.realpath(APPS_DIR))

    def test_pythonpath(self):
        libdir = self.make_tmpdir()
        elsewhere = self.make_tmpdir()
        write(os.path.join(libdir, "pp_only_app.py"),
              "def app(environ, start_response):\n"
              "    start_response('200 OK', [('Content-Type', 'text/plain'),"
              " ('Content-Length', '16')])\n"
              "    return [b'from pythonpath!']\n")
        server = self.start_server("pp_only_app:app", ["--pythonpath", libdir], cwd=elsewhere)
        status, _, body, _ = self.get(server, "/")
        self.assertEqual((status, body), (200, b"from pythonpath!"), server.describe())

    def test_pythonpath_comma_separated(self):
        first, second, elsewhere = self.make_tmpdir(), self.make_tmpdir(), self.make_tmpdir()
        write(os.path.join(first, "pp_helper_mod.py"), "GREETING = b'two dirs work'\n")
        write(os.path.join(second, "pp_two_app.py"),
              "from pp_helper_mod import GREETING\n"
              "def app(environ, start_response):\n"
              "    start_response('200 OK', [('Content-Length', str(len(GREETING)))])\n"
              "    return [GREETING]\n")
        server = self.start_server("pp_two_app:app", ["--pythonpath", "%s,%s" % (first, second)],
                                   cwd=elsewhere)
        status, _, body, _ = self.get(server, "/")
        self.assertEqual((status, body), (200, b"two dirs work"), server.describe())

    def test_env_flags_visible_to_app(self):
        server = self.start_server("envinfo:app", ["-e", "ALICORN_IT_FOO=bar",
                                                   "--env", "ALICORN_IT_EQ=a=b c"])
        doc = self.get_json(server, "/?var=ALICORN_IT_FOO&var=ALICORN_IT_EQ&var=ALICORN_IT_NONE")
        self.assertEqual(doc["env"], {"ALICORN_IT_FOO": "bar", "ALICORN_IT_EQ": "a=b c",
                                      "ALICORN_IT_NONE": None})

    def test_pidfile_written_and_removed(self):
        tmp = self.make_tmpdir()
        pidfile = os.path.join(tmp, "alicorn.pid")
        server = self.start_server("hello:app", ["-p", pidfile])
        self.assertTrue(wait_for(lambda: os.path.exists(pidfile), 5),
                        "pidfile not written\n" + server.describe())
        with open(pidfile) as f:
            self.assertEqual(f.read().strip(), str(server.pid))
        self.assertStopsCleanly(server, signal.SIGTERM)
        self.assertFalse(os.path.exists(pidfile), "pidfile left behind after exit")

    def test_long_pid_flag(self):
        tmp = self.make_tmpdir()
        pidfile = os.path.join(tmp, "long.pid")
        server = self.start_server("hello:app", ["--pid", pidfile])
        self.assertTrue(wait_for(lambda: os.path.exists(pidfile), 5), server.describe())
        with open(pidfile) as f:
            self.assertEqual(int(f.read().strip()), server.pid)


class Logging(AlicornTestCase):
    def test_access_logfile(self):
        tmp = self.make_tmpdir()
        access = os.path.join(tmp, "access.log")
        server = self.start_server("hello:app", ["--access-logfile", access])
        self.assertServesHello(server, "/logged?x=1")
        pattern = re.compile(r'"GET /logged\?x=1 HTTP/1\.1" 200 13\b')

        def logged():
            try:
                with open(access) as f:
                    return pattern.search(f.read())
            except FileNotFoundError:
                return None

        self.assertTrue(wait_for(logged, 5), "no access log line for the request\n"
                        + server.describe())
        with open(access) as f:
            line = [l for l in f if "/logged" in l][0]
        self.assertTrue(line.startswith("127.0.0.1 "), line)

    def test_access_log_to_stdout(self):
        server = self.start_server("hello:app", ["--access-logfile", "-"])
        self.assertServesHello(server, "/to-stdout")
        self.assertTrue(wait_for(lambda: '"GET /to-stdout HTTP/1.1" 200' in server.stdout(), 5),
                        server.describe())

    def test_no_access_log_by_default(self):
        server = self.start_server("hello:app")
        self.assertServesHello(server, "/not-logged")
        time.sleep(0.3)
        self.assertNotIn("/not-logged", server.stdout() + server.log())

    def test_error_logfile(self):
        tmp = self.make_tmpdir()
        errlog = os.path.join(tmp, "error.log")
        server = self.start_server("hello:app", ["--error-logfile", errlog])
        self.assertServesHello(server)

        def contents():
            try:
                with open(errlog) as f:
                    text = f.read()
            except FileNotFoundError:
                return None
            return text if "Booting worker with pid" in text else None

        text = wait_for(contents, 5)
        self.assertTrue(text, "error log file missing lines\n" + server.describe())
        self.assertIn("Starting alicorn", text)
        self.assertIn("Listening at: http://127.0.0.1:%d" % server.address[1], text)
        self.assertNotIn("Starting alicorn", server.log(), "log still went to stderr")

    def test_log_level_warning_hides_info(self):
        server = self.start_server("hello:app", ["--log-level", "warning"])
        self.assertServesHello(server)
        server.signal(signal.SIGTERM)
        self.assertEqual(server.wait_exit(), 0)
        self.assertNotIn("[INFO]", server.log())

    def test_log_level_debug_shows_info(self):
        server = self.start_server("hello:app", ["--log-level", "debug"])
        self.assertServesHello(server)
        server.wait_log(r"\[INFO\] Booting worker with pid: \d+")


if __name__ == "__main__":
    unittest.main()
