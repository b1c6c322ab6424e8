"""Shared helpers for alicorn's integration tests.

Every test starts the real binary ($ALICORN_BIN) in its own process group, with stderr (the
error log) and stdout captured to files, and talks to it over real sockets. Every wait is
bounded; cleanup kills the whole process group, so a misbehaving server cannot hang the suite or
leak processes.

Environment (set by ctest, with fallbacks for running by hand from this folder):
    ALICORN_BIN              path to the alicorn binary
    ALICORN_SOURCE_DIR       the source tree (for examples/ and the project version)
    ALICORN_BUILD_DIR        the build tree
    ALICORN_TEST_PLUGIN_DIR  where the ABI test plugins (wrong_major.so, ...) are built
    ALICORN_TEST_VERBOSE=1   print each server's log when its test ends
"""

import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
APPS_DIR = os.path.join(HERE, "apps")
SOURCE_DIR = os.environ.get("ALICORN_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
BUILD_DIR = os.environ.get("ALICORN_BUILD_DIR") or os.path.join(SOURCE_DIR, "build")
ALICORN_BIN = os.environ.get("ALICORN_BIN") or os.path.join(BUILD_DIR, "bin", "alicorn")
TEST_PLUGIN_DIR = (os.environ.get("ALICORN_TEST_PLUGIN_DIR")
                   or os.path.join(BUILD_DIR, "tests", "plugins", "out"))
EXAMPLES_DIR = os.path.join(SOURCE_DIR, "examples")
VERBOSE = os.environ.get("ALICORN_TEST_VERBOSE") == "1"

# Upper bounds for the waits below. Generous for a loaded 2-core machine, small enough that a
# hang shows up as a failure long before ctest's own timeout.
START_TIMEOUT = 15.0    # process start until the port accepts connections / workers are up
REQUEST_TIMEOUT = 10.0  # one HTTP exchange
EXIT_TIMEOUT = 15.0     # a signal until the master has exited
RUN_TIMEOUT = 20.0      # a one-shot command (--version, a refused config, ...)

HELLO = b"Hello, World!"

# "[2026-11-21 12:00:00 +0000] [PID] [LEVEL] message"
LOG_LINE_RE = re.compile(
    r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[(\d+)\] \[([A-Z]+)\] (.*)$")
BOOTING_RE = re.compile(r"Booting worker with pid: (\d+)")

# Variables that would change the server's configuration behind a test's back.
_SCRUBBED_ENV = ("ALICORN_CMD_ARGS", "PORT", "WEB_CONCURRENCY", "VIRTUAL_ENV", "PYTHONHOME",
                 "PYTHONPATH", "ALICORN_PLUGIN_PATH", "ALICORN_TEST_MARKER", "FORWARDED_ALLOW_IPS")


def project_version():
    """The version declared in the top-level CMakeLists.txt (project(alicorn VERSION x.y.z))."""
    with open(os.path.join(SOURCE_DIR, "CMakeLists.txt")) as f:
        m = re.search(r"project\(\s*alicorn\s+VERSION\s+([0-9][0-9A-Za-z.+-]*)", f.read())
    if not m:
        raise AssertionError("no project(alicorn VERSION ...) in CMakeLists.txt")
    return m.group(1)


def server_env(extra=None):
    """The environment for a server: ours, less the variables alicorn reads as settings."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if extra:
        env.update(extra)
    return env


def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago on `host`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def ipv6_loopback_available():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def wait_for(predicate, timeout, interval=0.05):
    """Call predicate until it returns a true value (returned) or timeout passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def slurp(path):
    """The file's text, or "" when it does not exist (yet)."""
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def can_connect(address, timeout=0.5):
    """True when a stream connection to address (a (host, port) tuple or a unix socket path)
    is accepted."""
    if isinstance(address, str):
        family, target = socket.AF_UNIX, address
    else:
        host, port = address
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        target = (host, port)
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(target)
        return True
    except OSError:
        return False


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # The state follows the parenthesised command name, which may itself contain ')'.
    state = stat[stat.rindex(")") + 2:].split()[0]
    return state not in ("Z", "X")


def child_pids(pid):
    """Live (non-zombie) children of pid, from /proc/<pid>/task/*/children, falling back to a
    scan of /proc for parent pids."""
    children = set()
    task_dir = "/proc/%d/task" % pid
    found_children_file = False
    try:
        for tid in os.listdir(task_dir):
            try:
                with open(os.path.join(task_dir, tid, "children")) as f:
                    found_children_file = True
                    children.update(int(x) for x in f.read().split())
            except (FileNotFoundError, ProcessLookupError):
                continue
    except (FileNotFoundError, ProcessLookupError):
        return []
    if not found_children_file:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % entry) as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[1]) == pid:
                children.add(int(entry))
    return sorted(p for p in children if pid_alive(p))


def http_request(address, method="GET", path="/", body=None, headers=None,
                 timeout=REQUEST_TIMEOUT):
    """One HTTP/1.1 exchange with http.client. address is (host, port) or a unix socket path.
    Returns (status, headers as a dict with lower-cased names, body bytes, HTTPResponse)."""
    if isinstance(address, str):
        conn = _UnixHTTPConnection(address, timeout=timeout)
    else:
        conn = http.client.HTTPConnection(address[0], address[1], timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        return resp.status, hdrs, data, resp
    finally:
        conn.close()


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._unix_path)


def raw_exchange(address, data, timeout=REQUEST_TIMEOUT):
    """Send raw bytes, then read until the server closes the connection. Returns the bytes
    read; raises socket.timeout if the server keeps the connection open past timeout."""
    if isinstance(address, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
    with sock:
        sock.settimeout(timeout)
        sock.connect(address)
        sock.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                raise socket.timeout("server did not close the connection")
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def curl(args, timeout=REQUEST_TIMEOUT):
    """Run curl with a bounded time; returns CompletedProcess (stdout bytes)."""
    cmd = ["curl", "--silent", "--show-error", "--max-time", str(int(timeout))] + list(args)
    return subprocess.run(cmd, capture_output=True, timeout=timeout + 5)


class Result:
    """Outcome of a one-shot alicorn run."""

    def __init__(self, args, returncode, stdout, stderr):
        self.args = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    @property
    def output(self):
        return self.stdout + self.stderr

    def __repr__(self):
        return "alicorn %r -> exit %r\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
            self.args, self.returncode, self.stdout[-4000:], self.stderr[-4000:])


def run_alicorn(args, *, cwd=APPS_DIR, env=None, timeout=RUN_TIMEOUT):
    """Run alicorn to completion (for commands that must exit by themselves). A run that
    outlives timeout has its whole process group killed and fails the calling test."""
    proc = subprocess.Popen([ALICORN_BIN] + list(args), cwd=cwd, env=server_env(env),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _killpg(proc.pid)
        out, err = proc.communicate(timeout=5)
        raise AssertionError("alicorn %r did not exit within %ss\n--- stdout ---\n%s\n"
                             "--- stderr ---\n%s" % (args, timeout, out.decode(errors="replace"),
                                                     err.decode(errors="replace")))
    return Result(args, proc.returncode, out.decode(errors="replace"),
                  err.decode(errors="replace"))


def _killpg(pgid, sig=signal.SIGKILL):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Server:
    """A running alicorn master started in its own process group."""

    def __init__(self, args, *, cwd=APPS_DIR, env=None, pass_fds=(), program=None):
        self.program = program or ALICORN_BIN
        self.args = list(args)
        self.cwd = cwd
        self.env = server_env(env)
        self.pass_fds = tuple(pass_fds)
        self.proc = None
        self.seen_workers = set()
        self._dir = tempfile.mkdtemp(prefix="alicorn-it-")
        self.stderr_path = os.path.join(self._dir, "stderr.log")
        self.stdout_path = os.path.join(self._dir, "stdout.log")

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self):
        with open(self.stderr_path, "wb") as err, open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen([self.program] + self.args, cwd=self.cwd, env=self.env,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         pass_fds=self.pass_fds, start_new_session=True)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def poll(self):
        return self.proc.poll()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=EXIT_TIMEOUT):
        """The master's exit code; fails (after killing the group) if it does not exit."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("alicorn did not exit within %ss\n%s" % (timeout, self.describe()))

    def kill(self):
        """Kill the whole process group (and any worker seen earlier that is still alive)."""
        if self.proc is None:
            return
        _killpg(self.proc.pid)
        for pid in list(self.seen_workers):
            if pid_alive(pid) and self._is_ours(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def cleanup(self):
        self.kill()
        if VERBOSE:
            print("\n=== %s ===\n%s" % (" ".join([self.program] + self.args), self.log()))
        shutil.rmtree(self._dir, ignore_errors=True)

    def _is_ours(self, pid):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmdline = f.read()
            return os.path.basename(self.program).encode() in cmdline
        except OSError:
            return False

    # -- observation ---------------------------------------------------------------------------
    def log(self):
        """Everything written to stderr so far (the error log by default)."""
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stdout(self):
        with open(self.stdout_path, "rb") as f:
            return f.read().decode(errors="replace")

    def describe(self):
        code = self.proc.poll() if self.proc else None
        return ("%s %s (pid %s, exit %s)\n--- log ---\n%s\n--- stdout ---\n%s"
                % (self.program, " ".join(self.args), self.proc.pid if self.proc else None, code,
                   self.log()[-6000:], self.stdout()[-2000:]))

    def workers(self):
        pids = child_pids(self.proc.pid)
        self.seen_workers.update(pids)
        return pids

    def booted_pids(self):
        """Worker pids named by "Booting worker with pid: N" lines, in log order."""
        return [int(m.group(1)) for m in BOOTING_RE.finditer(self.log())]

    def wait_listening(self, address, timeout=START_TIMEOUT):
        """Wait until address accepts connections. Fails if the master exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("alicorn exited before listening on %r\n%s"
                                     % (address, self.describe()))
            if can_connect(address):
                return
            time.sleep(0.05)
        raise AssertionError("alicorn did not listen on %r within %ss\n%s"
                             % (address, timeout, self.describe()))

    def wait_workers(self, count, timeout=START_TIMEOUT, exclude=()):
        """Wait until the master has exactly `count` live children, none of them in `exclude`,
        and returns their pids. Fails if the master exits first or the count is not reached."""
        deadline = time.monotonic() + timeout
        pids = []
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("alicorn exited while waiting for %d workers\n%s"
                                     % (count, self.describe()))
            pids = self.workers()
            if len(pids) == count and not set(pids) & set(exclude):
                return pids
            time.sleep(0.05)
        raise AssertionError("expected %d workers (excluding %r), have %r after %ss\n%s"
                             % (count, sorted(exclude), pids, timeout, self.describe()))

    def wait_log(self, pattern, timeout=START_TIMEOUT, count=1):
        """Wait until the log matches regex `pattern` at least `count` times; returns the
        matches. Fails on timeout."""
        regex = re.compile(pattern, re.M)

        def found():
            matches = list(regex.finditer(self.log()))
            return matches if len(matches) >= count else None

        matches = wait_for(found, timeout)
        if matches is None:
            raise AssertionError("log never matched %r (x%d) within %ss\n%s"
                                 % (pattern, count, timeout, self.describe()))
        return matches

    def workers_gone(self, pids, timeout=EXIT_TIMEOUT):
        """True once none of pids is alive (waits up to timeout)."""
        return bool(wait_for(lambda: not any(pid_alive(p) for p in pids), timeout))


class AlicornTestCase(unittest.TestCase):
    """Base class: starts servers that are always killed when the test ends."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not os.access(ALICORN_BIN, os.X_OK):
            raise AssertionError("alicorn binary not found or not executable: %s "
                                 "(set ALICORN_BIN)" % ALICORN_BIN)

    def make_tmpdir(self):
        path = tempfile.mkdtemp(prefix="alicorn-it-")
        self.addCleanup(shutil.rmtree, path, True)
        return path

    def spawn(self, args, *, cwd=APPS_DIR, env=None, pass_fds=(), program=None):
        """Start alicorn (or `program`) with exactly these arguments; killed at cleanup."""
        server = Server(args, cwd=cwd, env=env, pass_fds=pass_fds, program=program)
        self.addCleanup(server.cleanup)
        return server.start()

    def start_server(self, app="hello:app", args=(), *, workers=1, host="127.0.0.1",
                     cwd=APPS_DIR, env=None, program=None):
        """Start `alicorn -b host:PORT -w workers ARGS APP` on a free port and wait until it
        accepts connections and has its workers. Returns the Server; server.address is set."""
        port = free_port(host)
        bind = "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)
        argv = ["-b", bind, "-w", str(workers)] + list(args)
        if app is not None:
            argv.append(app)
        server = self.spawn(argv, cwd=cwd, env=env, program=program)
        server.address = (host, port)
        server.wait_listening(server.address)
        if workers:
            server.wait_workers(workers)
        return server

    # -- assertions ----------------------------------------------------------------------------
    def get(self, server_or_address, path="/", **kw):
        address = getattr(server_or_address, "address", server_or_address)
        try:
            return http_request(address, path=path, **kw)
        except Exception as exc:  # include the server log in the failure
            extra = server_or_address.describe() if isinstance(server_or_address, Server) else ""
            raise AssertionError("request %s %r to %r failed: %r\n%s"
                                 % (kw.get("method", "GET"), path, address, exc, extra)) from exc

    def get_json(self, server, path="/", **kw):
        status, headers, body, _ = self.get(server, path, **kw)
        self.assertEqual(status, 200, body)
        return json.loads(body)

    def assertServesHello(self, server_or_address, path="/"):
        status, headers, body, _ = self.get(server_or_address, path)
        extra = server_or_address.describe() if isinstance(server_or_address, Server) else ""
        self.assertEqual(status, 200, extra)
        self.assertEqual(body, HELLO, extra)
        self.assertEqual(headers.get("content-length"), "13", extra)
        return headers

    def assertStopsCleanly(self, server, sig=signal.SIGTERM, timeout=EXIT_TIMEOUT):
        """Send sig; the master must exit 0 with every worker gone and the port closed."""
        workers = server.workers()
        self.assertTrue(workers, "no workers before stopping\n" + server.describe())
        server.signal(sig)
        code = server.wait_exit(timeout)
        self.assertEqual(code, 0, "exit code after %s\n%s" % (sig.name, server.describe()))
        self.assertTrue(server.workers_gone(workers, 5),
                        "workers %r still alive after the master exited\n%s"
                        % ([p for p in workers if pid_alive(p)], server.describe()))
        if hasattr(server, "address"):
            self.assertFalse(can_connect(server.address),
                             "port still accepts connections after exit")
        return code

    def assertRefused(self, result, code=None, mentions=(), marker=None):
        """A one-shot run must have exited non-zero (by itself, not by a signal), with each
        regex in `mentions` found in its output (case-insensitive), no worker booted, and the
        marker app never imported."""
        self.assertGreater(result.returncode, 0, result)
        if code is not None:
            self.assertEqual(result.returncode, code, result)
        for pattern in mentions:
            if not re.search(pattern, result.output, re.I):
                self.fail("output does not mention %r\n%r" % (pattern, result))
        self.assertNotIn("Booting worker", result.output, result)
        if marker is not None:
            self.assertFalse(os.path.exists(marker),
                             "the app was imported (a process was forked)\n%r" % result)



def sha256(data):
    return hashlib.sha256(data).hexdigest()


def multipart(fields, files):
    """(body, content type) of a multipart/form-data request: fields [(name, text)], files
    [(field, filename, bytes)]."""
    boundary = "alicorn-%s" % uuid.uuid4().hex
    out = []
    for name, value in fields:
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n"
                    % (boundary, name)).encode() + value.encode("utf-8") + b"\r\n")
    for field, filename, data in files:
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                    "Content-Type: application/octet-stream\r\n\r\n"
                    % (boundary, field, filename)).encode() + data + b"\r\n")
    out.append(("--%s--\r\n" % boundary).encode())
    return b"".join(out), "multipart/form-data; boundary=%s" % boundary
