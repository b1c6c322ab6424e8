#!/usr/bin/python3
"""alicorn against nginx and the Python peers: server CPU µs per request beside req/s.

For every scenario and every server, in rounds (each round starts every server afresh, one at a
time, so drift in the machine's load spreads over all of them), it starts the server on
loopback, warms it up with wrk, samples the CPU time (user+sys) of every process of the server
(the master and all its descendants, walked from /proc) before and after a measured wrk run,
and divides by the requests wrk counted. Medians over the rounds; ratios to nginx and to the
best peer (the non-alicorn Python servers) of the same run.

CPU per request is the steadier figure on this 2-core box, where wrk competes with the server
for the cores: req/s moves with whatever else runs, CPU per request much less.

Scenarios (--scenarios):
  hello     examples/hello.py, 13 bytes, wrk -c64
  pipeline  hello pipelined 16 deep (bench/lua/pipeline.lua), wrk -c64
  flask     examples/flask_app.py GET /json (Debian's Flask), wrk -c64; + Flask's in-process cost
  django    bench/apps/django_app.py GET /json (Debian's Django), wrk -c64; + in-process cost
  file      bench/apps/file1m.py, 1 MiB through wsgi.file_wrapper; nginx serves the same file
            (+ wrk's CPU and server+wrk: loopback charges receive work to either side)
  fileonce  the same with bench/apps/file1m_once.py: the app opens the file once per process
  upload    bench/apps/upload.py reads a 10 MiB POST body (bench/lua/upload.lua), wrk -c8
  idle      1,000 idle keep-alive connections (asyncio client): RSS and PSS delta per connection
  workers4  4 workers, bench/apps/whoami.py (X-Worker: pid; bench/lua/whoami.lua counts): the
            share of requests per worker, min and max
  accesslog hello, the cost of access logging: alicorn uv with no access log, the native one
            to a file, logconfig_dict routing gunicorn.access to a logging.FileHandler, and a
            logger_class (an alicorn.glogging.Logger subclass writing the file); gunicorn
            gthread without and with --access-logfile

Usage:
  bench/run.py --quick                        # every scenario, short runs (~15 min)
  bench/run.py                                # full: 3 rounds of 5 s (~40 min)
  bench/run.py --scenarios hello,flask --servers nginx,uv,gthread,uwsgi-http11
  bench/run.py --alicorn-baseline /work/wt/baseline/build/bin/alicorn --scenarios hello

Tables to stdout; progress to stderr; JSON and text in bench/results/run-<timestamp>.*.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable

sys.dont_write_bytecode = True
import benchlib as B  # noqa: E402

LUA_DIR = os.path.join(B.BENCH_DIR, "lua")
CLK_TCK = os.sysconf("SC_CLK_TCK")

# ---------------------------------------------------------------------------------------------
# /proc: the process tree, its CPU time and memory


def process_tree(root: int) -> list[int]:
    """root and all its descendants."""
    parents = B.ppid_map()
    kids: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        if p in parents or p == root:
            out.append(p)
        todo.extend(kids.get(p, []))
    return sorted(set(out))


def cpu_ticks(pid: int) -> int | None:
    """utime+stime of the process (all its threads), in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    rest = stat[stat.rfind(b")") + 2:].split()
    return int(rest[11]) + int(rest[12])


def cpu_sample(root: int) -> dict[int, int]:
    out = {}
    for pid in process_tree(root):
        t = cpu_ticks(pid)
        if t is not None:
            out[pid] = t
    return out


def cpu_delta_us(before: dict[int, int], after: dict[int, int]) -> tuple[float, dict[int, float]]:
    per = {}
    for pid, t in after.items():
        per[pid] = (t - before.get(pid, 0)) * 1e6 / CLK_TCK
    return sum(per.values()), per


def mem_kb(pid: int) -> tuple[int, int] | None:
    """(RSS, PSS) in KiB."""
    rss = pss = None
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        return None
    if rss is None or pss is None:
        return None
    return rss, pss


def tree_mem_kb(root: int) -> tuple[int, int, int]:
    rss = pss = n = 0
    for pid in process_tree(root):
        m = mem_kb(pid)
        if m:
            rss += m[0]
            pss += m[1]
            n += 1
    return rss, pss, n


# ---------------------------------------------------------------------------------------------
# scenarios


@dataclass
class Scenario:
    key: str
    title: str
    directory: str
    module: str
    path: str
    check: Callable[[int, dict, bytes], str | None]
    nginx_path: str | None = None     # None: nginx does not take part
    connections: int = 64
    lua: list[str] | None = None      # wrk -s script + args
    kind: str = "wrk"                 # wrk | idle | balance
    workers: int | None = None        # None: --workers
    framework: str | None = None      # bench/inproc.py app
    baseline: bool = False            # alicorn-baseline takes part
    servers: tuple[str, ...] | None = None  # only these servers (None: every one that applies)


def _body_is(expect: bytes):
    def check(status, headers, body):
        if status != 200:
            return f"status {status}"
        return None if body == expect else f"unexpected body {body[:40]!r}"
    return check


def _body_has(expect: bytes):
    def check(status, headers, body):
        if status != 200:
            return f"status {status}"
        return None if expect in body else f"unexpected body {body[:40]!r}"
    return check


def _body_len(n: int):
    def check(status, headers, body):
        if status != 200:
            return f"status {status}"
        return None if len(body) == n else f"body of {len(body)} bytes, expected {n}"
    return check


def _status_ok(status, headers, body):
    return None if status == 200 else f"status {status}"


EX = B.EXAMPLES_DIR
AP = B.APPS_DIR
UPLOAD = 10 * 1024 * 1024
SCENARIOS = {s.key: s for s in [
    Scenario("hello", "hello world (13 bytes), wrk -c64", EX, "hello", "/",
             _body_is(b"Hello, World!"), nginx_path="/", baseline=True),
    Scenario("pipeline", "hello pipelined 16 deep, wrk -c64", EX, "hello", "/",
             _body_is(b"Hello, World!"), nginx_path="/",
             lua=[os.path.join(LUA_DIR, "pipeline.lua"), "16"], baseline=True),
    Scenario("flask", "Flask JSON route GET /json (examples/flask_app.py), wrk -c64", EX,
             "flask_app", "/json", _body_has(b"Hello from Flask!"), framework="flask",
             baseline=True),
    Scenario("django", "Django JSON view GET /json (bench/apps/django_app.py), wrk -c64", AP,
             "django_app", "/json", _body_has(b"Hello from Django!"), framework="django"),
    Scenario("file", "1 MiB through wsgi.file_wrapper (nginx: the same file), wrk -c16", AP,
             "file1m", "/", _body_len(1024 * 1024), nginx_path="/file1m", connections=16,
             baseline=True),
    Scenario("fileonce", "the same, the app opening the file once per process "
             "(bench/apps/file1m_once.py), wrk -c16", AP,
             "file1m_once", "/", _body_len(1024 * 1024), nginx_path="/file1m", connections=16,
             baseline=True),
    # no nginx row: `return 200` answers before the body is in, which wrk cannot time
    Scenario("upload", "10 MiB POST read by the app, wrk -c4", AP,
             "upload", "/upload", _status_ok, connections=4,
             lua=[os.path.join(LUA_DIR, "upload.lua"), str(UPLOAD)]),
    Scenario("idle", "1,000 idle keep-alive connections: memory per connection", EX, "hello",
             "/", _body_is(b"Hello, World!"), nginx_path="/", kind="idle"),
    Scenario("workers4", "4 workers, hello naming its worker (X-Worker), wrk -c64", AP,
             "whoami", "/", _body_is(b"Hello, World!"), nginx_path="/whoami", kind="balance",
             workers=4, lua=[os.path.join(LUA_DIR, "whoami.lua")]),
    Scenario("accesslog", "hello world, access logging to a file, wrk -c64", EX, "hello", "/",
             _body_is(b"Hello, World!"),
             servers=("uv", "uv-accesslog", "uv-logconfig", "uv-loggerclass",
                      "gunicorn-gthread", "gunicorn-gthread-accesslog")),
]}

# ---------------------------------------------------------------------------------------------
# servers


@dataclass
class Ctx:
    alicorn: str
    baseline: str | None
    tmpdir: str
    logdir: str
    env: dict[str, str]
    bench_file: str
    keep_alive: int = 30


@dataclass
class Server:
    key: str
    label: str
    family: str        # nginx, alicorn, baseline, peer
    argv: Callable[[Ctx, Scenario, int, int], list[str]]
    missing: Callable[[Ctx], str | None]
    single_process: bool = False
    holds_idle: bool = True
    note: str = ""
    scenarios: tuple[str, ...] | None = None  # only in these scenarios (None: any)


GUNICORN = B.which("gunicorn", "/usr/bin/gunicorn")
UWSGI = B.which("uwsgi", "/usr/bin/uwsgi")
WAITRESS = B.which("waitress-serve", "/usr/bin/waitress-serve")
NGINX = B.which("nginx", "/usr/sbin/nginx")


def _alicorn(kind: str, *extra: str, baseline: bool = False):
    def argv(ctx, sc, port, workers):
        binary = ctx.baseline if baseline else ctx.alicorn
        return [binary, "-w", str(workers), "-k", kind, *extra, "-b", f"{B.HOST}:{port}",
                "--keep-alive", str(ctx.keep_alive), "--chdir", sc.directory,
                f"{sc.module}:app"]
    return argv


def _gunicorn(kind: str, *extra: str):
    def argv(ctx, sc, port, workers):
        return [GUNICORN or "gunicorn", "-w", str(workers), "-k", kind, *extra,
                "-b", f"{B.HOST}:{port}", "--keep-alive", str(ctx.keep_alive),
                "--chdir", sc.directory, f"{sc.module}:app"]
    return argv


# accesslog: the same hello, the access log written to a file four ways.
LOGCONFIG_DICT = """logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"line": {"format": "%%(message)s"},
                   "generic": {"format": "%%(asctime)s [%%(process)d] [%%(levelname)s] %%(message)s"}},
    "handlers": {"file": {"class": "logging.FileHandler", "filename": %r,
                          "formatter": "line"},
                 "stderr": {"class": "logging.StreamHandler", "formatter": "generic",
                            "stream": "ext://sys.stderr"}},
    "loggers": {"gunicorn.access": {"level": "INFO", "handlers": ["file"],
                                    "propagate": False},
                "gunicorn.error": {"level": "INFO", "handlers": ["stderr"],
                                   "propagate": False}},
}
"""
BENCH_LOGGER = """from alicorn.glogging import Logger

class BenchLogger(Logger):
    \"\"\"The base class's access() (access_log_format through gunicorn.access), as a
    subclass that only adds fields would keep it.\"\"\"
"""


def _alicorn_access(how: str):
    def argv(ctx, sc, port, workers):
        path = os.path.join(ctx.tmpdir, f"access-{how}-{port}.log")
        extra = []
        if how == "native":
            extra = ["--access-logfile", path]
        elif how == "logconfig":
            conf = os.path.join(ctx.tmpdir, f"logconfig-{port}.py")
            with open(conf, "w") as f:
                f.write(LOGCONFIG_DICT % path)
            extra = ["-c", conf]
        elif how == "loggerclass":
            with open(os.path.join(ctx.tmpdir, "bench_logger.py"), "w") as f:
                f.write(BENCH_LOGGER)
            extra = ["--pythonpath", ctx.tmpdir, "--logger-class", "bench_logger.BenchLogger",
                     "--access-logfile", path]
        return _alicorn("uv", *extra)(ctx, sc, port, workers)
    return argv


def _gunicorn_access(ctx, sc, port, workers):
    path = os.path.join(ctx.tmpdir, f"access-gunicorn-{port}.log")
    return _gunicorn("gthread", "--threads", "4", "--access-logfile", path)(ctx, sc, port,
                                                                              workers)


def _uwsgi(ctx, sc, port, workers):
    return [UWSGI or "uwsgi", "--plugin", "python3", "--master", "--processes", str(workers),
            "--http11-socket", f"{B.HOST}:{port}",
            "--wsgi-file", os.path.join(sc.directory, sc.module + ".py"), "--callable", "app",
            "--disable-logging", "--die-on-term", "--need-app", "--listen", "1024",
            "--chdir", sc.directory]


def _waitress(ctx, sc, port, workers):
    return [WAITRESS or "waitress-serve", "--threads", "4", "--listen", f"{B.HOST}:{port}",
            "--connection-limit", "2000", "--asyncore-use-poll", f"{sc.module}:app"]


def _nginx(ctx, sc, port, workers):
    prefix = os.path.join(ctx.tmpdir, f"nginx-{port}")
    os.makedirs(os.path.join(prefix, "tmp"), exist_ok=True)
    with open(os.path.join(B.BENCH_DIR, "nginx.conf.in")) as f:
        conf = f.read()
    conf = (conf.replace("@WORKERS@", str(workers)).replace("@PORT@", str(port))
            .replace("@PREFIX@", prefix).replace("@FILE@", ctx.bench_file))
    with open(os.path.join(prefix, "nginx.conf"), "w") as f:
        f.write(conf)
    return [NGINX or "nginx", "-p", prefix + "/", "-c", "nginx.conf",
            "-e", os.path.join(prefix, "error.log")]


def _need(path, what):
    return lambda ctx: None if path else f"{what} not installed"


def _alicorn_missing(baseline=False):
    def missing(ctx):
        binary = ctx.baseline if baseline else ctx.alicorn
        if not binary:
            return "no --alicorn-baseline given"
        return None if os.access(binary, os.X_OK) else f"no alicorn binary at {binary}"
    return missing


def _gevent_missing(ctx):
    if not GUNICORN:
        return "gunicorn not installed"
    return None if B.python_module_version("gevent") else "python3-gevent not installed"


def _uwsgi_missing(ctx):
    if not UWSGI:
        return "uwsgi not installed"
    for d in ("/usr/lib/uwsgi/plugins", "/usr/lib/uwsgi"):
        if os.path.exists(os.path.join(d, "python3_plugin.so")):
            return None
    return "uwsgi-plugin-python3 not installed"


def _fastwsgi_missing(ctx):
    return None if B.python_module_version("fastwsgi") else "FastWSGI is not in Debian"


def _fastwsgi(ctx, sc, port, workers):
    code = (f"import sys; sys.path.insert(0, {sc.directory!r}); import fastwsgi, {sc.module} as m;"
            f" fastwsgi.run(m.app, host={B.HOST!r}, port={port})")
    return [B.PYTHON, "-c", code]


SERVERS = [
    Server("nginx", "nginx (no Python)", "nginx", _nginx, _need(NGINX, "nginx"),
           note="static answer: the ceiling"),
    Server("uv", "alicorn uv", "alicorn", _alicorn("uv"), _alicorn_missing()),
    Server("gthread", "alicorn gthread", "alicorn", _alicorn("gthread", "--threads", "4"),
           _alicorn_missing(), note="4 threads"),
    Server("uv-accesslog", "alicorn uv, native access log", "alicorn", _alicorn_access("native"),
           _alicorn_missing(), note="--access-logfile FILE", scenarios=("accesslog",)),
    Server("uv-logconfig", "alicorn uv, logconfig_dict", "alicorn",
           _alicorn_access("logconfig"), _alicorn_missing(),
           note="gunicorn.access -> logging.FileHandler", scenarios=("accesslog",)),
    Server("uv-loggerclass", "alicorn uv, logger_class", "alicorn",
           _alicorn_access("loggerclass"), _alicorn_missing(),
           note="alicorn.glogging.Logger subclass, access() in Python", scenarios=("accesslog",)),
    Server("baseline-uv", "alicorn-baseline uv", "baseline", _alicorn("uv", baseline=True),
           _alicorn_missing(True)),
    Server("baseline-gthread", "alicorn-baseline gthread", "baseline",
           _alicorn("gthread", "--threads", "4", baseline=True), _alicorn_missing(True)),
    Server("gunicorn-sync", "gunicorn sync", "peer", _gunicorn("sync"),
           _need(GUNICORN, "gunicorn"), holds_idle=False,
           note="closes after each response"),
    Server("gunicorn-gthread", "gunicorn gthread", "peer",
           _gunicorn("gthread", "--threads", "4"), _need(GUNICORN, "gunicorn"),
           note="4 threads"),
    Server("gunicorn-gthread-accesslog", "gunicorn gthread, access log", "peer",
           _gunicorn_access, _need(GUNICORN, "gunicorn"), note="4 threads, --access-logfile FILE",
           scenarios=("accesslog",)),
    Server("gunicorn-gevent", "gunicorn gevent", "peer",
           _gunicorn("gevent", "--worker-connections", "2000"), _gevent_missing),
    Server("uwsgi", "uWSGI --http11-socket", "peer", _uwsgi, _uwsgi_missing, holds_idle=False,
           note="one connection at a time per process"),
    Server("waitress", "waitress", "peer", _waitress, _need(WAITRESS, "waitress"),
           single_process=True, note="1 process x 4 threads"),
    Server("fastwsgi", "FastWSGI", "peer", _fastwsgi, _fastwsgi_missing, single_process=True,
           note="1 process"),
]
SERVER_KEYS = [s.key for s in SERVERS]
BY_KEY = {s.key: s for s in SERVERS}


def applies(server: Server, sc: Scenario) -> bool:
    if server.scenarios is not None and sc.key not in server.scenarios:
        return False
    if sc.servers is not None and server.key not in sc.servers:
        return False
    if server.family == "nginx":
        return sc.nginx_path is not None
    if server.family == "baseline":
        return sc.baseline
    if sc.kind == "idle" and not server.holds_idle:
        return False
    if sc.kind == "balance" and server.single_process:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# wrk


def run_wrk(url: str, connections: int, duration: float, threads: int, lua: list[str] | None,
            raw_path: str | None = None) -> tuple[dict, str]:
    threads = max(1, min(threads, connections))
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s",
            "--timeout", "10s"]
    if lua:
        argv += ["-s", lua[0]]
    argv.append(url)
    if lua and len(lua) > 1:
        argv += ["--", *lua[1:]]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    B._running[p.pid] = p
    try:
        out, _ = p.communicate(timeout=duration + 30)
    except subprocess.TimeoutExpired:
        B._kill_group(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        out = (out or "") + "\n[wrk timed out]\n"
    finally:
        B._running.pop(p.pid, None)
    if raw_path:
        with open(raw_path, "a") as f:
            f.write("$ " + " ".join(argv) + "\n" + out + "\n")
    r = B.parse_wrk(out)
    r["argv"] = argv
    return r, out


# ---------------------------------------------------------------------------------------------
# idle connections (asyncio client)


async def _open_idle(port: int, path: str, n: int, batch: int, timeout: float):
    req = B.request_bytes(port, path)
    conns = []
    errors = 0

    async def one():
        r, w = await asyncio.wait_for(asyncio.open_connection(B.HOST, port), 5)
        w.write(req)
        head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)
        m = re.search(rb"content-length:\s*(\d+)", head, re.I)
        if m:
            await asyncio.wait_for(r.readexactly(int(m.group(1))), 5)
        if not head.startswith(b"HTTP/1.1 200"):
            raise ConnectionError(head[:40])
        return r, w

    deadline = time.monotonic() + timeout
    while len(conns) < n and time.monotonic() < deadline:
        k = min(batch, n - len(conns))
        res = await asyncio.gather(*(one() for _ in range(k)), return_exceptions=True)
        for x in res:
            if isinstance(x, BaseException):
                errors += 1
            else:
                conns.append(x)
        if errors > n // 10:
            break
    return conns, errors


def measure_idle(server: B.ServerProcess, port: int, path: str, n: int) -> dict:
    # a few requests first, so lazily set-up state is there before the baseline
    for _ in range(20):
        B.http_request(port, path)
    time.sleep(0.5)
    rss0, pss0, nproc = tree_mem_kb(server.pid)
    loop = asyncio.new_event_loop()
    try:
        conns, errors = loop.run_until_complete(_open_idle(port, path, n, 100, 60))
        time.sleep(1.0)
        rss1, pss1, _ = tree_mem_kb(server.pid)

        async def still_open():
            alive = 0
            for r, w in conns:
                if not r.at_eof() and not w.is_closing():
                    alive += 1
            return alive
        alive = loop.run_until_complete(still_open())
        for _, w in conns:
            w.close()
        loop.run_until_complete(asyncio.sleep(0.2))
    finally:
        loop.close()
    held = max(1, len(conns))
    return {"processes": nproc, "opened": len(conns), "errors": errors, "still_open": alive,
            "rss_before_kb": rss0, "rss_after_kb": rss1, "pss_before_kb": pss0,
            "pss_after_kb": pss1,
            "rss_per_conn_b": (rss1 - rss0) * 1024 / held,
            "pss_per_conn_b": (pss1 - pss0) * 1024 / held}


# ---------------------------------------------------------------------------------------------
# one server, one scenario, one round


def run_one(ctx: Ctx, server: Server, sc: Scenario, args, rnd: int) -> dict:
    port = B.free_port()
    workers = sc.workers or args.workers
    argv = server.argv(ctx, sc, port, workers)
    name = f"{sc.key}-{server.key}-r{rnd}"
    proc = B.ServerProcess(name=name, argv=argv, cwd=sc.directory, env=ctx.env,
                           log_path=os.path.join(ctx.logdir, f"{sc.key}-{server.key}.log"),
                           workers=workers, single_process=server.single_process)
    path = sc.nginx_path if server.family == "nginx" else sc.path
    url = f"http://{B.HOST}:{port}{path}"
    raw = os.path.join(ctx.logdir, f"{sc.key}-{server.key}.wrk.txt")
    res: dict = {"status": "n/a", "command": " ".join(argv)}
    try:
        proc.start_ready(port, path, sc.check, args.start_timeout)
        if sc.kind == "idle":
            res.update(measure_idle(proc, port, path, args.idle_connections))
            res["status"] = "ok"
            B.log(f"  {server.label}: {res['opened']} open, RSS +"
                  f"{res['rss_per_conn_b']:.0f} B/conn, PSS +{res['pss_per_conn_b']:.0f} B/conn")
            return res
        run_wrk(url, sc.connections, args.warmup, args.wrk_threads, sc.lua)
        if not proc.alive():
            raise B.StartError(f"died during the warm-up: {proc.log_tail()}")
        before = cpu_sample(proc.pid)
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk is the only child reaped
        w, out = run_wrk(url, sc.connections, args.duration, args.wrk_threads, sc.lua, raw)
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        after = cpu_sample(proc.pid)
        total_us, per = cpu_delta_us(before, after)
        if not proc.alive():
            raise B.StartError(f"died during the run: {proc.log_tail()}")
        if not w["requests"]:
            raise B.StartError("wrk counted no request (see the raw output)")
        res.update({k: w[k] for k in ("rps", "requests", "p99_ms", "errors")})
        res["cpu_us"] = total_us
        res["cpu_us_per_req"] = total_us / w["requests"]
        # The client's CPU too: on loopback the receiver's TCP work is charged to whichever side
        # runs the softirq, which moves with timing (see docs/performance.md, "1 MB
        # file_wrapper"), so server + client is the steadier figure for large bodies.
        client_s = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        res["client_us_per_req"] = client_s * 1e6 / w["requests"]
        res["sum_us_per_req"] = res["cpu_us_per_req"] + res["client_us_per_req"]
        res["processes"] = len(after)
        if sc.kind == "balance":
            counts = {int(m.group(1)): int(m.group(2))
                      for m in re.finditer(r"^WORKER (\d+) (\d+)$", out, re.M)}
            total = sum(counts.values()) or 1
            shares = sorted(v / total for v in counts.values())
            if len(shares) < workers:
                shares = [0.0] * (workers - len(shares)) + shares
            res["request_shares"] = shares
            wpids = [p for p in per if p != proc.pid] or list(per)
            wcpu = sum(per[p] for p in wpids) or 1
            res["cpu_shares"] = sorted(per[p] / wcpu for p in wpids)
        res["status"] = "ok"
        B.log(f"  {server.label}: {B.fmt_rps(w['rps'])} req/s, "
              f"{res['cpu_us_per_req']:.1f} CPU µs/req"
              + (f", errors {B.errors_text(w['errors'])}" if w["errors"] else ""))
    except B.StartError as e:
        res["reason"] = str(e)
        B.log(f"  {server.label}: n/a: {' '.join(str(e).split())[:200]}")
    except Exception as e:  # a benchmark goes on to the next server
        res["reason"] = f"{type(e).__name__}: {e}"
        B.log(f"  {server.label}: n/a: {res['reason']}")
    finally:
        proc.stop()
    return res


# ---------------------------------------------------------------------------------------------
# summary


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(rounds: list[dict]) -> dict:
    ok = [r for r in rounds if r.get("status") == "ok"]
    s: dict = {"rounds": len(rounds), "ok": len(ok)}
    if not ok:
        s["reason"] = next((r.get("reason") for r in rounds if r.get("reason")), "no round")
        return s
    for k in ("rps", "cpu_us_per_req", "rss_per_conn_b", "pss_per_conn_b", "p99_ms",
              "client_us_per_req", "sum_us_per_req"):
        vals = [r[k] for r in ok if r.get(k) is not None]
        if vals:
            s[k] = statistics.median(vals)
            s[k + "_min"] = min(vals)
            s[k + "_max"] = max(vals)
    errs: dict = {}
    for r in ok:
        for k, v in (r.get("errors") or {}).items():
            errs[k] = errs.get(k, 0) + v
    s["errors"] = errs
    if any("request_shares" in r for r in ok):
        s["share_min"] = med([min(r["request_shares"]) for r in ok if r.get("request_shares")])
        s["share_max"] = med([max(r["request_shares"]) for r in ok if r.get("request_shares")])
        s["cpu_share_min"] = med([min(r["cpu_shares"]) for r in ok if r.get("cpu_shares")])
        s["cpu_share_max"] = med([max(r["cpu_shares"]) for r in ok if r.get("cpu_shares")])
    if any("opened" in r for r in ok):
        s["opened"] = min(r["opened"] for r in ok)
        s["still_open"] = min(r["still_open"] for r in ok)
    return s


def f1(v, unit=""):
    return "n/a" if v is None else f"{v:.1f}{unit}"


def fpct(v):
    return "n/a" if v is None else f"{v * 100:.1f}%"


def scenario_table(sc: Scenario, summ: dict[str, dict], framework_us: float | None) -> str:
    if sc.kind == "idle":
        headers = ["server", "open", "RSS B/conn", "PSS B/conn", "RSS range", "notes"]
        rows = []
        for key, s in summ.items():
            srv = BY_KEY[key]
            if "rss_per_conn_b" not in s:
                rows.append([srv.label, "-", "n/a", "n/a", "-", s.get("reason", "")[:80]])
                continue
            rows.append([srv.label, f"{s.get('still_open')}/{s.get('opened')}",
                         f"{s['rss_per_conn_b']:.0f}", f"{s['pss_per_conn_b']:.0f}",
                         f"{s['rss_per_conn_b_min']:.0f}..{s['rss_per_conn_b_max']:.0f}",
                         srv.note])
        return f"== {sc.key}: {sc.title}\n" + B.table(headers, rows, right={1, 2, 3, 4})

    nginx = summ.get("nginx", {}).get("cpu_us_per_req")
    peers = [(k, s["cpu_us_per_req"]) for k, s in summ.items()
             if BY_KEY[k].family == "peer" and s.get("cpu_us_per_req") is not None]
    best = min(peers, key=lambda x: x[1]) if peers else None
    headers = ["server", "req/s", "CPU µs/req", "range", "x nginx", "x best peer"]
    with_client = sc.key in ("file", "fileonce")
    nginx_sum = summ.get("nginx", {}).get("sum_us_per_req")
    if with_client:
        headers += ["wrk µs/req", "server+wrk", "x nginx"]
    if framework_us is not None:
        headers.append("overhead µs")
    if sc.kind == "balance":
        headers += ["req share min..max", "CPU share min..max"]
    headers.append("notes")
    rows = []
    for key, s in summ.items():
        srv = BY_KEY[key]
        cpu = s.get("cpu_us_per_req")
        if cpu is None:
            row = [srv.label, "n/a", "n/a", "-", "-", "-"]
            if with_client:
                row += ["-", "-", "-"]
            if framework_us is not None:
                row.append("-")
            if sc.kind == "balance":
                row += ["-", "-"]
            row.append(" ".join(str(s.get("reason", "")).split())[:90])
            rows.append(row)
            continue
        row = [srv.label, B.fmt_rps(s.get("rps")), f1(cpu),
               f"{s['cpu_us_per_req_min']:.1f}..{s['cpu_us_per_req_max']:.1f}",
               B.fmt_ratio(cpu / nginx) if nginx else "-",
               B.fmt_ratio(cpu / best[1]) if best else "-"]
        if with_client:
            both = s.get("sum_us_per_req")
            row += [f1(s.get("client_us_per_req")), f1(both),
                    B.fmt_ratio(both / nginx_sum) if both and nginx_sum else "-"]
        if framework_us is not None:
            row.append(f1(cpu - framework_us))
        if sc.kind == "balance":
            row.append(f"{fpct(s.get('share_min'))}..{fpct(s.get('share_max'))}"
                       if srv.family != "nginx" or s.get("share_min") else "-")
            row.append(f"{fpct(s.get('cpu_share_min'))}..{fpct(s.get('cpu_share_max'))}")
        notes = [srv.note] if srv.note else []
        if s.get("errors"):
            notes.append("wrk errors: " + B.errors_text(s["errors"]))
        if s["ok"] < s["rounds"]:
            notes.append(f"{s['ok']}/{s['rounds']} rounds ok")
        row.append("; ".join(notes))
        rows.append(row)
    title = f"== {sc.key}: {sc.title}"
    if best:
        title += f"; best peer: {BY_KEY[best[0]].label}"
    if framework_us is not None:
        title += (f"\n   framework in-process: {framework_us:.1f} µs/request "
                  "(bench/inproc.py); overhead = CPU µs/req - that")
    n = len(headers)
    return title + "\n" + B.table(headers, rows, right=set(range(1, n - 1)))


def framework_cost(app: str) -> float | None:
    try:
        p = subprocess.run([B.PYTHON, os.path.join(B.BENCH_DIR, "inproc.py"), app],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=300, stdin=subprocess.DEVNULL)
        return json.loads(p.stdout)["us_per_call"] if p.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        return None


# ---------------------------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="alicorn vs nginx and peers: CPU µs per request.",
                                epilog=f"servers: {', '.join(SERVER_KEYS)}; "
                                       f"scenarios: {', '.join(SCENARIOS)}")
    p.add_argument("--quick", action="store_true",
                   help="short runs: 3 rounds of 2 s after a 1 s warm-up (default 3 x 5 s)")
    p.add_argument("--rounds", type=int)
    p.add_argument("--duration", type=float, help="measured seconds per round")
    p.add_argument("--warmup", type=float, default=1)
    p.add_argument("--servers", default=",".join(SERVER_KEYS))
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--wrk-threads", type=int, default=2)
    p.add_argument("--idle-connections", type=int, default=1000)
    p.add_argument("--start-timeout", type=float, default=30)
    p.add_argument("--alicorn", default=os.environ.get(
        "ALICORN_BIN", os.path.join(B.ROOT, "build", "bin", "alicorn")))
    p.add_argument("--alicorn-baseline", default=None,
                   help="a second alicorn build, shown as alicorn-baseline uv/gthread")
    p.add_argument("--results-dir", default=os.path.join(B.BENCH_DIR, "results"))
    a = p.parse_args(argv)
    a.rounds = a.rounds or 3
    a.duration = a.duration or (2 if a.quick else 5)

    def split(text, known, what):
        items = [x.strip() for x in text.split(",") if x.strip()]
        bad = [x for x in items if x not in known]
        if bad:
            p.error(f"unknown {what}: {', '.join(bad)} (known: {', '.join(known)})")
        return [k for k in known if k in items]
    a.servers = split(a.servers, SERVER_KEYS, "server")
    a.scenarios = split(a.scenarios, list(SCENARIOS), "scenario")
    return a


def main(argv=None) -> int:
    args = parse_args(argv)
    B.install_signal_handlers()
    nofile = B.raise_nofile(max(65536, args.idle_connections * 2 + 1024))
    if not B.which("wrk"):
        print("run.py: wrk not found (scripts/install-deps.sh --bench)", file=sys.stderr)
        return 2
    stamp = time.strftime("%Y%m%d-%H%M%S")
    logdir = os.path.join(args.results_dir, "run-" + stamp)
    os.makedirs(logdir, exist_ok=True)
    tmpdir = tempfile.mkdtemp(prefix="alicorn-bench-")
    os.chmod(tmpdir, 0o755)  # nginx's workers (nobody, when run as root) read the file there
    B.remove_tmpdirs_at_exit(tmpdir)
    bench_file = os.path.join(tmpdir, "file-1m.bin")
    with open(bench_file, "wb") as f:
        f.write(bytes(range(256)) * (1024 * 1024 // 256))
    ctx = Ctx(alicorn=os.path.abspath(args.alicorn),
              baseline=os.path.abspath(args.alicorn_baseline) if args.alicorn_baseline else None,
              tmpdir=tmpdir, logdir=logdir, bench_file=bench_file,
              env=B.clean_env({"ALICORN_BENCH_FILE": bench_file,
                               "PYTHONDONTWRITEBYTECODE": "1"}))
    servers = [BY_KEY[k] for k in args.servers]
    missing = {s.key: s.missing(ctx) for s in servers}
    for k, why in missing.items():
        if why:
            B.log(f"{BY_KEY[k].label}: skipped ({why})")
    servers = [s for s in servers if not missing[s.key]]
    load_start = B.loadavg()
    started = time.strftime("%Y-%m-%d %H:%M:%S %z")
    B.log(f"run.py: load average {load_start}; {args.rounds} rounds x {args.duration:g}s; "
          f"results in {logdir}")

    framework = {}
    for key in args.scenarios:
        sc = SCENARIOS[key]
        if sc.framework and sc.framework not in framework:
            framework[sc.framework] = framework_cost(sc.framework)
            B.log(f"{sc.framework} in-process: {f1(framework[sc.framework])} µs/request")

    raw: dict = {}
    loads: dict = {}
    try:
        for key in args.scenarios:
            sc = SCENARIOS[key]
            these = [s for s in servers if applies(s, sc)]
            raw[key] = {s.key: [] for s in these}
            loads[key] = [B.loadavg()]
            for rnd in range(args.rounds):
                B.log(f"{key} round {rnd + 1}/{args.rounds} (load {B.loadavg()})")
                for s in these:
                    raw[key][s.key].append(run_one(ctx, s, sc, args, rnd))
            loads[key].append(B.loadavg())
    finally:
        B.kill_all_servers()

    summary = {k: {s: summarize(v) for s, v in per.items()} for k, per in raw.items()}
    lines = [f"alicorn bench/run.py  {started}",
             f"load average at start {load_start}, at end {B.loadavg()} "
             f"(cpus: {os.cpu_count()}; wrk runs on the same machine)",
             f"{args.rounds} rounds x {args.duration:g} s after {args.warmup:g} s warm-up, "
             f"medians; {args.workers} workers (workers4: 4); wrk -t{args.wrk_threads}; "
             f"open-file limit {nofile}",
             f"alicorn: {ctx.alicorn}" + (f"; baseline: {ctx.baseline}" if ctx.baseline else ""),
             "CPU µs/req = user+sys of every process of the server over the measured run / "
             "requests wrk counted", ""]
    for key in args.scenarios:
        sc = SCENARIOS[key]
        fw = framework.get(sc.framework) if sc.framework else None
        lines.append(scenario_table(sc, summary[key], fw))
        lines.append(f"   load average: {loads[key][0]} -> {loads[key][1]}")
        lines.append("")
    report = "\n".join(lines)
    print(report, flush=True)
    with open(os.path.join(args.results_dir, f"run-{stamp}.txt"), "w") as f:
        f.write(report + "\n")
    with open(os.path.join(args.results_dir, f"run-{stamp}.json"), "w") as f:
        json.dump({"started": started, "settings": {k: v for k, v in vars(args).items()},
                   "framework_us": framework, "summary": summary, "rounds": raw,
                   "loadavg": loads}, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
