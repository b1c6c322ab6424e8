"""Python config files as Gunicorn runs them (-c gunicorn.conf.py, -c python:MODULE,
./gunicorn.conf.py when there is no -c), GUNICORN_CMD_ARGS and the precedence of the layers,
server hooks defined in the config file, PasteDeploy, Gunicorn's worker class names, and the
bad inputs that must be refused before anything is forked."""

import json
import os
import re
import signal
import textwrap
import time
import unittest

from harness import (APPS_DIR, HELLO, AlicornTestCase, free_port, http_request, run_alicorn,
                     wait_for)


def write(path, text):
    with open(path, "w") as f:
        f.write(textwrap.dedent(text))
    return path


def read_events(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def print_config(result):
    """--print-config output as {name: (value text, source)}."""
    out = {}
    source = None
    for line in result.stdout.splitlines():
        if line.startswith("# from "):
            source = line[len("# from "):]
            continue
        m = re.match(r"^([a-z_]+): (.*)$", line)
        if m:
            out[m.group(1)] = (m.group(2), source)
    return out


# A gunicorn.conf.py as projects ship them (Django/Flask Docker images): settings computed in
# Python, os.environ reads, and hooks that use the objects Gunicorn passes.
PROJECT_CONF = '''
import json
import multiprocessing
import os

_here = os.path.dirname(os.path.abspath(__file__))
EVENTS = os.path.join(_here, "events.jsonl")

bind = os.environ.get("APP_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_WORKERS", multiprocessing.cpu_count() * 0 + 2))
worker_class = "gunicorn.workers.gthread.ThreadWorker"
threads = 2
timeout = 30
graceful_timeout = 10
keepalive = 5
max_requests = 1000
max_requests_jitter = 50
accesslog = "-"
errorlog = "-"
loglevel = "info"
access_log_format = '%%(h)s "%%(r)s" %%(s)s'
chdir = %(apps)r
raw_env = ["FROM_CONF=yes", "CONF_DIR=" + _here]
wsgi_app = "envinfo:app"
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else "/tmp"
forwarded = "not a setting, ignored"


def _event(**kw):
    with open(EVENTS, "a") as f:
        f.write(json.dumps(kw) + "\\n")


def on_starting(server):
    server.log.info("conf: on_starting in %%s", server.pid)
    _event(hook="on_starting", pid=server.pid, num_workers=server.num_workers,
           workers_cfg=server.cfg["workers"])


def when_ready(server):
    _event(hook="when_ready", pid=server.pid)


def pre_fork(server, worker):
    _event(hook="pre_fork", age=worker.age)


def post_fork(server, worker):
    server.log.info("conf: worker spawned (pid: %%s)", worker.pid)
    _event(hook="post_fork", pid=worker.pid, ppid=worker.ppid, real_pid=os.getpid(),
           alive=worker.alive)


def post_worker_init(worker):
    _event(hook="post_worker_init", pid=worker.pid, threads=worker.cfg["threads"])


def pre_request(worker, req):
    worker.log.debug("%%s %%s", req.method, req.path)
    _event(hook="pre_request", method=req.method, path=req.path, query=req.query,
           uri=req.uri, version=list(req.version), headers=[list(h) for h in req.headers],
           remote_addr=req.remote_addr)


def post_request(worker, req, environ, resp):
    _event(hook="post_request", path=req.path, status=resp.status,
           headers=[list(h) for h in resp.headers], script=environ.get("SCRIPT_NAME"))


def child_exit(server, worker):
    _event(hook="child_exit", pid=worker.pid)


def worker_exit(server, worker):
    _event(hook="worker_exit", pid=worker.pid)


def on_exit(server):
    _event(hook="on_exit")
'''


class PythonConfigFile(AlicornTestCase):
    def test_project_gunicorn_conf_runs_unchanged(self):
        tmp = self.make_tmpdir()
        port = free_port()
        conf = write(os.path.join(tmp, "gunicorn.conf.py"), PROJECT_CONF % {"apps": APPS_DIR})
        events = os.path.join(tmp, "events.jsonl")
        server = self.spawn(["-c", conf], cwd=tmp,
                            env={"APP_BIND": "127.0.0.1:%d" % port})
        server.address = ("127.0.0.1", port)
        server.wait_listening(server.address)
        pids = server.wait_workers(2)
        wait_for(lambda: len([e for e in read_events(events)
                              if e["hook"] == "post_worker_init"]) == 2, 10)
        status, headers, body, _ = self.get(server, "/q?var=FROM_CONF&var=CONF_DIR",
                                            headers={"X-Trace": "abc"})
        self.assertEqual(status, 200, server.describe())
        doc = json.loads(body)
        self.assertEqual(doc["env"], {"FROM_CONF": "yes", "CONF_DIR": tmp})
        self.assertEqual(os.path.realpath(doc["cwd"]), os.path.realpath(APPS_DIR))
        wait_for(lambda: any(e["hook"] == "post_request" for e in read_events(events)), 10)
        self.assertStopsCleanly(server)

        ev = read_events(events)
        hooks = [e["hook"] for e in ev]
        self.assertEqual(hooks[0], "on_starting", ev)
        start = ev[0]
        self.assertEqual(start["pid"], server.pid)
        self.assertEqual(start["workers_cfg"], 2)
        self.assertIn("when_ready", hooks)
        self.assertEqual(hooks.count("pre_fork"), 2, ev)
        forks = [e for e in ev if e["hook"] == "post_fork"]
        self.assertEqual(sorted(e["pid"] for e in forks), sorted(pids))
        for e in forks:
            self.assertEqual(e["pid"], e["real_pid"])
            self.assertEqual(e["ppid"], server.pid)
            self.assertTrue(e["alive"])
        self.assertEqual([e["threads"] for e in ev if e["hook"] == "post_worker_init"], [2, 2])
        pre = [e for e in ev if e["hook"] == "pre_request"][0]
        self.assertEqual((pre["method"], pre["path"], pre["query"], pre["uri"]),
                         ("GET", "/q", "var=FROM_CONF&var=CONF_DIR",
                          "/q?var=FROM_CONF&var=CONF_DIR"))
        self.assertEqual(pre["version"], [1, 1])
        self.assertIn(["X-TRACE", "abc"], pre["headers"])
        self.assertEqual(pre["remote_addr"], "127.0.0.1")
        post = [e for e in ev if e["hook"] == "post_request"][0]
        self.assertEqual(post["status"], "200 OK")
        self.assertIn("content-type", [k.lower() for k, _ in post["headers"]])
        self.assertEqual(sorted(e["pid"] for e in ev if e["hook"] == "child_exit"), sorted(pids))
        self.assertEqual(hooks[-1], "on_exit", ev)
        log = server.log()
        self.assertIn("conf: on_starting in %d" % server.pid, log)
        self.assertIn("conf: worker spawned (pid: %d)" % pids[0], log)
        self.assertRegex(server.stdout(),
                         r'127\.0\.0\.1 "GET /q\?var=FROM_CONF&var=CONF_DIR HTTP/1\.1" 200')
        self.assertNotIn("did you mean", log)  # `forwarded` is not close to a setting

    def test_auto_loads_gunicorn_conf_py_in_the_working_directory(self):
        tmp = self.make_tmpdir()
        port = free_port()
        write(os.path.join(tmp, "gunicorn.conf.py"), '''
            bind = "127.0.0.1:%d"
            pythonpath = %r
            wsgi_app = "hello:app"
        ''' % (port, APPS_DIR))
        server = self.spawn([], cwd=tmp)
        server.address = ("127.0.0.1", port)
        server.wait_listening(server.address)
        self.assertServesHello(server)

    def test_python_module_config(self):
        tmp = self.make_tmpdir()
        port = free_port()
        os.makedirs(os.path.join(tmp, "deploy"))
        write(os.path.join(tmp, "deploy", "__init__.py"), "")
        write(os.path.join(tmp, "deploy", "gconf.py"), '''
            bind = ["127.0.0.1:%d"]
            workers = 2
        ''' % port)
        server = self.spawn(["-c", "python:deploy.gconf", "--pythonpath", APPS_DIR,
                             "hello:app"], cwd=tmp)
        server.address = ("127.0.0.1", port)
        server.wait_listening(server.address)
        server.wait_workers(2)
        self.assertServesHello(server)

    def test_paste_deploy_ini(self):
        tmp = self.make_tmpdir()
        write(os.path.join(tmp, "pasteapp.py"), '''
            def app_factory(global_config, greeting="hi", **local_conf):
                body = ("%s %s" % (greeting, global_config.get("who", "?"))).encode()
                def app(environ, start_response):
                    start_response("200 OK", [("Content-Type", "text/plain")])
                    return [body]
                return app
        ''')
        ini = write(os.path.join(tmp, "production.ini"), '''
            [app:main]
            paste.app_factory = pasteapp:app_factory
            greeting = hello
        ''')
        port = free_port()
        server = self.spawn(["--paste", ini, "--paste-global", "who=paste", "-b",
                             "127.0.0.1:%d" % port, "--pythonpath", tmp], cwd=tmp)
        server.address = ("127.0.0.1", port)
        server.wait_listening(server.address)
        status, _, body, _ = self.get(server)
        self.assertEqual((status, body), (200, b"hello paste"), server.describe())

    def test_gunicorn_class_path_maps_to_the_sync_worker(self):
        server = self.start_server(args=["-k", "gunicorn.workers.sync.SyncWorker"])
        self.assertServesHello(server)
        self.assertIn("Using worker: sync", server.log())

    def test_hup_rereads_the_file_and_keeps_it_when_it_breaks(self):
        tmp = self.make_tmpdir()
        port = free_port()
        conf = os.path.join(tmp, "gunicorn.conf.py")
        template = 'bind = "127.0.0.1:%d"\nworkers = %d\nwsgi_app = "hello:app"\n'
        write(conf, template % (port, 1))
        server = self.spawn(["-c", conf])
        server.address = ("127.0.0.1", port)
        server.wait_listening(server.address)
        server.wait_workers(1)
        write(conf, "workers = (\n")  # a syntax error
        server.signal(signal.SIGHUP)
        server.wait_log(r"Reloading the configuration failed: .*SyntaxError")
        self.assertServesHello(server)
        write(conf, template % (port, 3))
        server.signal(signal.SIGHUP)
        server.wait_workers(3)
        self.assertServesHello(server)


# Hooks as real projects write them: prometheus_client's multiprocess cleanup in child_exit
# (Debian's python3-prometheus-client), a database connection opened in post_fork and used in
# pre_request (sqlite3), thread stacks dumped in worker_int.
REAL_HOOKS_CONF = '''
import os
import sqlite3
import sys
import threading
import traceback

from prometheus_client import multiprocess

bind = os.environ["APP_BIND"]
workers = 1
wsgi_app = "hello:app"
pythonpath = %(apps)r
raw_env = ["PROMETHEUS_MULTIPROC_DIR=%(prom)s"]
DB = %(db)r
STACKS = %(stacks)r


def post_fork(server, worker):
    worker.db = sqlite3.connect(DB, check_same_thread=False)
    worker.db.execute("CREATE TABLE IF NOT EXISTS hits (pid INTEGER, path TEXT)")
    worker.db.commit()


def pre_request(worker, req):
    worker.db.execute("INSERT INTO hits VALUES (?, ?)", (worker.pid, req.path))
    worker.db.commit()
    worker.log.info("%%s %%s", req.method, req.path)


def worker_int(worker):
    id2name = {th.ident: th.name for th in threading.enumerate()}
    code = []
    for thread_id, stack in sys._current_frames().items():
        code.append("# Thread: %%s(%%d)" %% (id2name.get(thread_id, ""), thread_id))
        for filename, lineno, name, line in traceback.extract_stack(stack):
            code.append("File: %%s, line %%d, in %%s" %% (filename, lineno, name))
    with open(STACKS, "w") as f:
        f.write("\\n".join(code))


def child_exit(server, worker):
    multiprocess.mark_process_dead(worker.pid)
    server.log.info("marked dead %%s", worker.pid)
'''


class RealWorldHooks(AlicornTestCase):
    def test_prometheus_database_and_stack_dump_hooks(self):
        tmp = self.make_tmpdir()
        prom = os.path.join(tmp, "prom")
        os.makedirs(prom)
        db, stacks = os.path.join(tmp, "hits.db"), os.path.join(tmp, "stacks.txt")
        conf = write(os.path.join(tmp, "gunicorn.conf.py"),
                     REAL_HOOKS_CONF % {"apps": APPS_DIR, "prom": prom, "db": db,
                                        "stacks": stacks})
        port = free_port()
        server = self.spawn(["-c", conf], cwd=tmp, env={"APP_BIND": "127.0.0.1:%d" % port})
        server.address = ("127.0.0.1", port)
        server.wait_listening(server.address)
        (pid,) = server.wait_workers(1)
        self.assertServesHello(server, "/first")
        self.assertServesHello(server, "/second")
        # A live gauge file of the worker, as prometheus_client writes in multiprocess mode.
        live = os.path.join(prom, "gauge_livesum_%d.db" % pid)
        write(live, "")
        os.kill(pid, signal.SIGINT)
        server.wait_log(r"marked dead %d" % pid)
        self.assertFalse(os.path.exists(live), server.describe())
        self.assertTrue(wait_for(lambda: os.path.exists(stacks), 10), server.describe())
        with open(stacks) as f:
            dump = f.read()
        self.assertIn("# Thread: ", dump)
        self.assertIn("in worker_int", dump)
        import sqlite3
        rows = sqlite3.connect(db).execute("SELECT pid, path FROM hits").fetchall()
        self.assertEqual(rows, [(pid, "/first"), (pid, "/second")])
        self.assertNotIn("Exception in", server.log())


class Precedence(AlicornTestCase):
    def test_defaults_file_gunicorn_cmd_args_cli(self):
        tmp = self.make_tmpdir()
        conf = write(os.path.join(tmp, "gunicorn.conf.py"), '''
            workers = 3
            timeout = 7
            backlog = 50
            keepalive = 4
            wsgi_app = "hello:app"
        ''')
        result = run_alicorn(["-c", conf, "--backlog", "200", "--print-config"],
                             env={"GUNICORN_CMD_ARGS": "--timeout 9 --backlog 100",
                                  "ALICORN_CMD_ARGS": "--keep-alive 6"})
        self.assertEqual(result.returncode, 0, result)
        cfg = print_config(result)
        self.assertEqual(cfg["workers"], ("3", "file " + conf))
        self.assertEqual(cfg["timeout"], ("9", "env GUNICORN_CMD_ARGS"))
        self.assertEqual(cfg["keepalive"], ("6", "env ALICORN_CMD_ARGS"))
        self.assertEqual(cfg["backlog"], ("200", "cli"))
        self.assertEqual(cfg["graceful_timeout"], ("30", "default"))

    def test_port_sets_the_default_bind_and_the_file_wins(self):
        result = run_alicorn(["--print-config", "hello:app"], env={"PORT": "5123"})
        self.assertIn("# from env PORT\nbind:\n  - 0.0.0.0:5123\n", result.stdout, result)
        tmp = self.make_tmpdir()
        conf = write(os.path.join(tmp, "c.py"), 'bind = "127.0.0.1:6000"\n')
        result = run_alicorn(["-c", conf, "--print-config", "hello:app"], env={"PORT": "5123"})
        self.assertIn("# from file %s\nbind:\n  - 127.0.0.1:6000\n" % conf, result.stdout,
                      result)

    def test_served_with_gunicorn_cmd_args(self):
        port = free_port()
        server = self.spawn(["hello:app"],
                            env={"GUNICORN_CMD_ARGS": "--workers=2 --bind=127.0.0.1:%d" % port})
        server.address = ("127.0.0.1", port)
        server.wait_listening(server.address)
        server.wait_workers(2)
        self.assertServesHello(server)

    def test_file_sees_its_path_and_the_environment(self):
        tmp = self.make_tmpdir()
        conf = write(os.path.join(tmp, "g.py"), '''
            import os
            proc_name = os.path.basename(os.path.dirname(__file__)) + "-" + os.environ["SITE"]
        ''')
        result = run_alicorn(["-c", conf, "--print-config", "hello:app"], env={"SITE": "blue"})
        cfg = print_config(result)
        self.assertEqual(cfg["proc_name"], (os.path.basename(tmp) + "-blue", "file " + conf))

    def test_typo_gets_a_suggestion(self):
        tmp = self.make_tmpdir()
        conf = write(os.path.join(tmp, "g.py"), "worker = 4\nhelper_value = 1\n")
        result = run_alicorn(["-c", conf, "--print-config", "hello:app"])
        self.assertEqual(result.returncode, 0, result)
        self.assertRegex(result.stderr, r"'worker' is not a setting; did you mean 'workers'")
        self.assertNotIn("helper_value", result.stderr)

    def test_print_config_lists_the_hooks_of_the_file(self):
        tmp = self.make_tmpdir()
        conf = write(os.path.join(tmp, "g.py"), "def post_fork(server, worker):\n    pass\n")
        result = run_alicorn(["-c", conf, "--print-config", "hello:app"])
        self.assertRegex(result.stdout, r"# hook post_fork: <function post_fork at .*> \(from file ")
        self.assertIn("# hook on_starting: not set (from default)", result.stdout)

    def test_check_config_loads_the_app_from_the_file(self):
        tmp = self.make_tmpdir()
        conf = write(os.path.join(tmp, "g.py"), 'wsgi_app = "broken_import:app"\n')
        result = run_alicorn(["-c", conf, "--check-config"])
        self.assertEqual(result.returncode, 4, result)
        conf = write(os.path.join(tmp, "g.py"), 'wsgi_app = "hello:app"\nworkers = 2\n')
        result = run_alicorn(["-c", conf, "--check-config"])
        self.assertEqual(result.returncode, 0, result)
        self.assertIn("Configuration OK: hello:app", result.stdout)


class Refused(AlicornTestCase):
    def setUp(self):
        self.tmp = self.make_tmpdir()
        self.marker = os.path.join(self.tmp, "imported")
        self.env = {"ALICORN_TEST_MARKER": self.marker}

    def refuse_file(self, text, mentions, code=2, name="gunicorn.conf.py", extra=()):
        conf = write(os.path.join(self.tmp, name), text)
        result = run_alicorn(["-c", conf, "-b", "127.0.0.1:%d" % free_port()] + list(extra)
                             + ["marker:app"], env=self.env)
        self.assertRefused(result, code=code, mentions=[re.escape(conf)] + mentions,
                           marker=self.marker)
        return result

    def test_syntax_error(self):
        result = self.refuse_file("workers = (\n", ["SyntaxError"])
        self.assertIn("failed to read config file", result.stderr)

    def test_file_that_raises_shows_the_traceback(self):
        result = self.refuse_file('import os\nworkers = int(os.environ["NOPE_NOT_SET"])\n',
                                  ["Traceback", "KeyError: 'NOPE_NOT_SET'", r"line 2"])

    def test_wrong_types(self):
        self.refuse_file('workers = "many"\n', [r"workers: 'many' is not an integer"])
        self.refuse_file('timeout = [30]\n', [r"timeout: expected a number of seconds, got a list"])
        self.refuse_file('preload_app = "perhaps"\n', [r"preload_app: 'perhaps' is not a boolean"])
        self.refuse_file('bind = 8000\n', [r"bind: expected an address string"])
        self.refuse_file('on_starting = 5\n', [r"on_starting: a server hook must be callable"])
        self.refuse_file('def pre_fork(server):\n    pass\n', [r"pre_fork: .* must accept 2"])

    def test_missing_file(self):
        missing = os.path.join(self.tmp, "nope.conf.py")
        result = run_alicorn(["-c", missing, "marker:app"], env=self.env)
        self.assertRefused(result, code=2, mentions=[re.escape(missing), "does not exist"],
                           marker=self.marker)

    def test_unknown_and_refused_worker_classes(self):
        self.refuse_file('worker_class = "gevent"\n', [r"'gevent' is not available", r"use uv"])
        self.refuse_file('worker_class = "eventlet"\n', [r"use uv"])
        self.refuse_file('worker_class = "uvicorn.workers.UvicornWorker"\n', ["ASGI"])
        result = run_alicorn(["-k", "nosuchworker", "marker:app"], env=self.env)
        self.assertRefused(result, code=1, mentions=["nosuchworker"], marker=self.marker)

    def test_unsupported_values_name_what_to_do(self):
        self.refuse_file("strip_header_spaces = True\n", ["strip_header_spaces", "RFC 9112"])
        self.refuse_file("spew = True\n", ["spew", "sys.settrace"])
        self.refuse_file('header_map = "keep"\n', ["header_map", "drop, refuse or dangerous"])
        self.refuse_file('http_protocols = "h1,h2"\n', ["http_protocols", "HTTP/2"])

    def test_worker_tmp_dir_must_be_a_folder(self):
        self.refuse_file('worker_tmp_dir = "/nonexistent/tmp"\n',
                         ["worker_tmp_dir", "not a directory"])

    def test_failing_on_starting_hook_starts_nothing(self):
        self.refuse_file("def on_starting(server):\n    raise RuntimeError('no db')\n",
                         ["on_starting", "RuntimeError: no db"], code=1)

    def test_yaml_cannot_hold_hooks(self):
        self.refuse_file("on_starting: x\n", ["on_starting", "Python config file"],
                         name="g.yaml")


if __name__ == "__main__":
    unittest.main()
