"""Shared plumbing for the Python benchmark scripts in bench/ (compare.py, gthread_sleep.py).

Starting servers in their own process group and always killing them, probing them over raw
sockets, running wrk and parsing its output, reading worker RSS from /proc. Everything here
is bounded in time: every wait has a deadline, every subprocess a timeout.

This is not a library for anything else; it is imported by scripts run as
`/usr/bin/python3 bench/<script>.py` (their directory is then on sys.path).
"""

from __future__ import annotations

import atexit
import errno
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
APPS_DIR = os.path.join(BENCH_DIR, "apps")
EXAMPLES_DIR = os.path.join(ROOT, "examples")
PYTHON = "/usr/bin/python3"
HOST = "127.0.0.1"


# ---------------------------------------------------------------------------------------------
# progress output (stderr) and small helpers

_T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def raise_nofile(want: int = 65536) -> int:
    """Raises this process's open-file soft limit (inherited by the servers we start)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def run_quiet(argv: list[str], timeout: float = 10.0) -> str:
    """Output (stdout+stderr, first line) of a short command, or '?' on any failure."""
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, stdin=subprocess.DEVNULL, text=True)
        out = p.stdout.strip().splitlines()
        return out[0].strip() if out else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def python_module_version(module: str, dist: str | None = None) -> str | None:
    """Version of a module importable by /usr/bin/python3, or None when it is not installed."""
    code = ("import importlib, importlib.metadata as m, sys\n"
            f"importlib.import_module({module!r})\n"
            f"print(m.version({(dist or module)!r}))")
    try:
        p = subprocess.run([PYTHON, "-c", code], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, timeout=20, text=True,
                           stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    return p.stdout.strip() if p.returncode == 0 else None


def which(name: str, *fallbacks: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for f in fallbacks:
        if os.access(f, os.X_OK):
            return f
    return None


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for servers: ours, minus settings that would change their flags."""
    env = dict(os.environ)
    for k in ("ALICORN_CMD_ARGS", "GUNICORN_CMD_ARGS", "WEB_CONCURRENCY", "PORT",
              "UWSGI_INI", "VIRTUAL_ENV", "PYTHONPATH"):
        env.pop(k, None)
    if extra:
        env.update(extra)
    return env


# ---------------------------------------------------------------------------------------------
# process bookkeeping: every server runs in its own session / process group, and whatever is
# still running is killed on exit, on SIGINT and on SIGTERM.

_running: dict[int, subprocess.Popen] = {}


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def kill_all_servers() -> None:
    for pid, proc in list(_running.items()):
        _kill_group(pid, signal.SIGKILL)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        _running.pop(pid, None)


_tmpdirs: list[str] = []


def remove_tmpdirs_at_exit(path: str) -> None:
    """Registers a temporary directory removed on exit, also after a signal."""
    _tmpdirs.append(path)


def _remove_tmpdirs() -> None:
    while _tmpdirs:
        shutil.rmtree(_tmpdirs.pop(), ignore_errors=True)


def install_signal_handlers() -> None:
    atexit.register(_remove_tmpdirs)
    atexit.register(kill_all_servers)  # atexit runs this one first

    def on_signal(signum, _frame):
        log(f"signal {signum}: stopping servers and exiting")
        kill_all_servers()
        _remove_tmpdirs()
        # 128 + signal number, like a shell
        os._exit(128 + signum)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)


class StartError(Exception):
    """A server that could not be started or does not answer correctly; str() is the reason."""


def ppid_map() -> dict[int, int]:
    """pid -> parent pid of every process, from /proc/*/stat."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rfind(b")") + 2:].split()
        if len(rest) > 1:
            out[int(entry)] = int(rest[1])
    return out


def proc_children(pid: int) -> list[int]:
    """Direct children of pid, from /proc/*/stat."""
    return sorted(child for child, parent in ppid_map().items() if parent == pid)


def vmrss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


@dataclass
class ServerProcess:
    """One running server: the master (or only) process in a new session, output to a log."""

    name: str
    argv: list[str]
    cwd: str
    env: dict[str, str]
    log_path: str
    workers: int                # worker processes expected (children of the master)
    single_process: bool = False  # the process itself serves (waitress)
    stop_signal: int = signal.SIGINT
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        try:
            with open(self.log_path, "ab") as out:
                out.write(("$ " + " ".join(self.argv) + "\n").encode())
                out.flush()
                self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env,
                                             stdin=subprocess.DEVNULL, stdout=out,
                                             stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as e:
            raise StartError(f"cannot run {self.argv[0]}: {e.strerror}") from None
        _running[self.proc.pid] = self.proc

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def worker_pids(self) -> list[int]:
        if self.single_process:
            return [self.pid]
        return proc_children(self.pid)

    def rss_kb(self) -> tuple[int, int]:
        """(sum of VmRSS over the worker processes in KiB, number of processes counted)."""
        total, n = 0, 0
        for pid in self.worker_pids():
            kb = vmrss_kb(pid)
            if kb is not None:
                total += kb
                n += 1
        return total, n

    def log_tail(self, lines: int = 6) -> str:
        try:
            with open(self.log_path, "rb") as f:
                text = f.read()[-4000:].decode(errors="replace")
        except OSError:
            return ""
        tail = [l for l in text.strip().splitlines() if l.strip()][-lines:]
        return " | ".join(t.strip() for t in tail)

    def wait_ready(self, port: int, path: str, check, timeout: float = 30.0) -> None:
        """Waits until the server answers `path` with a response `check` accepts and all its
        workers are up. check(status, headers, body) returns None when fine, else a reason."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not self.alive():
                raise StartError(f"exited with status {self.proc.returncode} during startup: "
                                 f"{self.log_tail()}")
            try:
                status, headers, body, _closed = http_request(port, path, timeout=3.0)
                problem = check(status, headers, body)
                if problem is None:
                    if self.single_process or len(self.worker_pids()) >= self.workers:
                        return
                    last = f"{len(self.worker_pids())}/{self.workers} workers up"
                else:
                    last = problem
            except OSError as e:
                last = f"{type(e).__name__}: {e}"
            time.sleep(0.1)
        raise StartError(f"not ready within {timeout:.0f}s ({last}): {self.log_tail()}")

    def start_ready(self, port: int, path: str, check, timeout: float = 30.0) -> str | None:
        """start() + wait_ready(), with one more try after 2 s if the first fails (on a shared
        machine the binary may be mid-rebuild for a moment). Returns the first failure, if
        any; raises StartError when the second try fails too."""
        try:
            self.start()
            self.wait_ready(port, path, check, timeout=timeout)
            return None
        except StartError as e:
            first = str(e)
        log(f"  start failed ({' '.join(first.split())[:160]}); retrying once in 2 s")
        self.stop()
        time.sleep(2)
        self.start()
        self.wait_ready(port, path, check, timeout=timeout)
        return first

    def stop(self, grace: float = 5.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, self.stop_signal)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        # whatever is left of the group (workers that outlived the master, or a stuck master)
        _kill_group(self.proc.pid, signal.SIGKILL)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        _running.pop(self.proc.pid, None)
        # give the kernel a moment to release the port and the workers to be reaped
        time.sleep(0.2)


# ---------------------------------------------------------------------------------------------
# raw HTTP/1.1 client pieces, for readiness checks, keep-alive checks and idle connections

def request_bytes(port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUser-Agent: alicorn-bench\r\n\r\n".encode()


class ResponseReader:
    """Incremental reader of one HTTP/1.1 response (Content-Length, chunked, or until close)."""

    def __init__(self) -> None:
        self.buf = b""
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.body_start: int | None = None
        self.length: int | None = None
        self.chunked = False
        self.complete = False
        self.eof = False

    def feed(self, data: bytes) -> None:
        if not data:
            self.eof = True
            if self.body_start is not None and self.length is None and not self.chunked:
                self.complete = True
            return
        self.buf += data
        if self.body_start is None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1").split("\r\n")
            try:
                self.status = int(head[0].split()[1])
            except (IndexError, ValueError):
                self.status = 0
            for line in head[1:]:
                k, _, v = line.partition(":")
                self.headers[k.strip().lower()] = v.strip()
            self.body_start = end + 4
            if "content-length" in self.headers:
                self.length = int(self.headers["content-length"])
            elif "chunked" in self.headers.get("transfer-encoding", "").lower():
                self.chunked = True
        if self.length is not None:
            if len(self.buf) - self.body_start >= self.length:
                self.complete = True
        elif self.chunked and self.buf.endswith(b"0\r\n\r\n"):
            self.complete = True

    def body(self) -> bytes:
        if self.body_start is None:
            return b""
        raw = self.buf[self.body_start:]
        if self.length is not None:
            return raw[:self.length]
        if self.chunked:
            out, pos = b"", 0
            while True:
                eol = raw.find(b"\r\n", pos)
                if eol < 0:
                    return out
                size = int(raw[pos:eol].split(b";")[0], 16)
                if size == 0:
                    return out
                out += raw[eol + 2:eol + 2 + size]
                pos = eol + 2 + size + 2
        return raw


def http_request(port: int, path: str, timeout: float = 3.0):
    """One GET on a fresh connection: (status, headers, body, server_closed_afterwards)."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(request_bytes(port, path))
        r = ResponseReader()
        deadline = time.monotonic() + timeout
        while not r.complete:
            if time.monotonic() > deadline:
                raise TimeoutError("response not complete")
            r.feed(s.recv(262144))
            if r.eof and not r.complete:
                raise ConnectionError("connection closed before the response was complete")
        closed = r.eof or r.headers.get("connection", "").lower() == "close"
        return r.status, r.headers, r.body(), closed


def _read_responses(socks: list[socket.socket], deadline: float) -> list[ResponseReader]:
    """Reads one response on each (non-blocking) socket until all are complete or the deadline."""
    readers = [ResponseReader() for _ in socks]
    sel = selectors.DefaultSelector()
    for i, s in enumerate(socks):
        sel.register(s, selectors.EVENT_READ, i)
    pending = len(socks)
    try:
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=max(0.0, min(0.2, deadline - time.monotonic()))):
                i = key.data
                try:
                    data = socks[i].recv(262144)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                readers[i].feed(data)
                if readers[i].complete or readers[i].eof:
                    sel.unregister(socks[i])
                    pending -= 1
    finally:
        sel.close()
    return readers


def _still_open(s: socket.socket) -> bool:
    try:
        data = s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        return bool(data)  # unexpected bytes, but the connection is up
    except BlockingIOError:
        return True
    except OSError:
        return False


def _connect(port: int, timeout: float) -> socket.socket:
    s = socket.create_connection((HOST, port), timeout=timeout)
    s.setblocking(False)
    return s


def _send_all(s: socket.socket, data: bytes, timeout: float) -> bool:
    s.settimeout(timeout)
    try:
        s.sendall(data)
        return True
    except OSError:
        return False
    finally:
        s.setblocking(False)


def connection_check(port: int, path: str, n: int, timeout: float = 3.0) -> dict:
    """How a server treats n simultaneous keep-alive clients: opens n connections, sends one
    request on each, counts those answered within `timeout` (concurrency); then sends a second
    request on each connection still open and counts those answered (keep-alive)."""
    socks: list[socket.socket] = []
    result = {"connections": n, "first_answered": 0, "second_answered": 0, "connect_errors": 0}
    try:
        req = request_bytes(port, path)
        connect_deadline = time.monotonic() + 10.0
        for _ in range(n):
            if time.monotonic() > connect_deadline:
                break
            try:
                s = _connect(port, timeout=2.0)
            except OSError:
                result["connect_errors"] += 1
                continue
            socks.append(s)
            _send_all(s, req, 2.0)
        first = _read_responses(socks, time.monotonic() + timeout)
        answered = [s for s, r in zip(socks, first) if r.complete and r.status == 200]
        result["first_answered"] = len(answered)
        time.sleep(0.1)  # let a server that closes after each response do so
        again = [s for s in answered if _still_open(s) and _send_all(s, req, 2.0)]
        second = _read_responses(again, time.monotonic() + timeout)
        result["second_answered"] = sum(1 for r in second if r.complete and r.status == 200)
    finally:
        for s in socks:
            s.close()
    return result


def describe_connection_check(c: dict | None) -> str:
    if not c:
        return "-"
    ka = "keep-alive" if c["second_answered"] > 0 else "closes"
    return f"{c['first_answered']}/{c['connections']} {ka}"


class IdleConnections:
    """Opens n keep-alive connections, sends one request on each and reads its response, and
    keeps them open until close(). Opened in batches so the accept queue never overflows."""

    def __init__(self, port: int, path: str, n: int, batch: int = 100,
                 timeout: float = 30.0) -> None:
        self.socks: list[socket.socket] = []
        self.answered = 0
        self.connect_errors = 0
        self.error: str | None = None
        req = request_bytes(port, path)
        deadline = time.monotonic() + timeout
        try:
            while len(self.socks) < n and time.monotonic() < deadline:
                fresh = []
                for _ in range(min(batch, n - len(self.socks))):
                    if time.monotonic() > deadline:
                        self.error = f"could not open {n} connections within {timeout:.0f}s"
                        break
                    try:
                        s = _connect(port, timeout=3.0)
                    except OSError as e:
                        self.connect_errors += 1
                        self.error = f"connect: {e}"
                        if e.errno in (errno.EMFILE, errno.ENFILE):
                            break
                        continue
                    fresh.append(s)
                    _send_all(s, req, 3.0)
                self.socks.extend(fresh)
                readers = _read_responses(fresh, min(deadline, time.monotonic() + 10.0))
                self.answered += sum(1 for r in readers if r.complete and r.status == 200)
                if not fresh or self.connect_errors > n // 10:
                    break
        except BaseException:
            self.close()
            raise

    def still_open(self) -> int:
        return sum(1 for s in self.socks if _still_open(s))

    def close(self) -> None:
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass
        self.socks = []


# ---------------------------------------------------------------------------------------------
# wrk

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}
_UNITS_B = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}


def _latency_ms(text: str) -> float | None:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    return float(m.group(1)) * _UNITS_MS[m.group(2)] if m else None


def parse_wrk(out: str) -> dict:
    r: dict = {"rps": None, "p50_ms": None, "p99_ms": None, "requests": None,
               "bytes": None, "seconds": None, "errors": {}}
    m = re.search(r"^Requests/sec:\s*([\d.]+)", out, re.M)
    if m:
        r["rps"] = float(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s*{pct}%\s+(\S+)", out, re.M)
        if m:
            r[key] = _latency_ms(m.group(1))
    m = re.search(r"^\s*(\d+) requests in ([\d.]+)(\w+), ([\d.]+)(\w+) read", out, re.M)
    if m:
        r["requests"] = int(m.group(1))
        r["seconds"] = float(m.group(2)) * _UNITS_MS.get(m.group(3), 1000.0) / 1000.0
        r["bytes"] = float(m.group(4)) * _UNITS_B.get(m.group(5), 1)
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        for k, v in zip(("connect", "read", "write", "timeout"), m.groups()):
            if int(v):
                r["errors"][k] = int(v)
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        r["errors"]["non-2xx"] = int(m.group(1))
    return r


def run_wrk(url: str, connections: int, duration: float, threads: int = 2,
            latency: bool = True, raw_path: str | None = None) -> dict:
    threads = max(1, min(threads, connections))
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s"]
    if latency:
        argv.append("--latency")
    argv.append(url)
    # its own process group too, registered like a server, so a signal kills it with them
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    _running[p.pid] = p
    try:
        out, _ = p.communicate(timeout=duration + 30)
    except subprocess.TimeoutExpired:
        _kill_group(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        out = (out or "") + "\n[wrk timed out]\n"
    finally:
        _running.pop(p.pid, None)
    if raw_path:
        with open(raw_path, "w") as f:
            f.write("$ " + " ".join(argv) + "\n" + out)
    r = parse_wrk(out)
    r["argv"] = argv
    return r


def errors_text(errors: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in errors.items())


# ---------------------------------------------------------------------------------------------
# formatting

def fmt_rps(v) -> str:
    return "n/a" if v is None else f"{v:,.0f}"


def fmt_ms(v) -> str:
    if v is None:
        return "n/a"
    if v < 1:
        return f"{v * 1000:.0f}us"
    if v < 100:
        return f"{v:.2f}ms"
    return f"{v:.0f}ms"


def fmt_ratio(v) -> str:
    return "-" if v is None else f"{v:.2f}x"


def fmt_mb(kb) -> str:
    return "n/a" if kb is None else f"{kb / 1024:.1f} MB"


def table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    """Plain-text table; columns in `right` are right-aligned."""
    right = right or set()
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells):
        out = []
        for i, c in enumerate(cells):
            out.append(c.rjust(widths[i]) if i in right else c.ljust(widths[i]))
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep] + [line(r) for r in rows])
