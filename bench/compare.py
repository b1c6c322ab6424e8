#!/usr/bin/python3
"""alicorn side by side with its peers: throughput, p99 latency and worker memory.

One invocation starts each server in turn (never two at once), on loopback, with 2 workers,
and drives it with wrk on the same 2-core box (64 keep-alive connections, a 1 s warm-up, then
a measured run with --latency). Servers:

  nginx             nginx answering the same 13 bytes itself, no Python: the ceiling
  uv                alicorn -k uv
  gthread           alicorn -k gthread --threads 4
  sync              alicorn -k sync
  gunicorn-sync     gunicorn -k sync
  gunicorn-gthread  gunicorn -k gthread --threads 4
  gunicorn-gevent   gunicorn -k gevent --worker-connections 1000
  uwsgi-http11      uwsgi --master --processes 2 --http11-socket (keep-alive)
  uwsgi-http        uwsgi --master --processes 2 --http-socket (closes every connection)
  waitress          waitress-serve --threads 4 (one process: waitress does not fork)

Apps (identical WSGI modules for every Python server; nginx serves only hello):

  hello   examples/hello.py       13-byte list body with Content-Length
  64k     bench/apps/body64k.py   a 64 KiB list body
  file    bench/apps/file1m.py    a 1 MiB file through wsgi.file_wrapper
  flask   examples/flask_app.py   the Flask route "/"

Memory: worker RSS (sum of VmRSS over the worker processes) idle after the hello run, and with
1,000 idle keep-alive connections open (each sent one request and got its answer), for the
servers that can hold idle keep-alive connections.

Progress goes to stderr; the tables go to stdout and, with everything else, to
bench/results/<timestamp>.json (+ .txt, + a directory with server logs and raw wrk output).
A server that is not installed or fails to start is reported as n/a with the reason.

Usage: bench/compare.py [--duration 5] [--servers uv,gunicorn-sync,...]
                        [--apps hello,64k,file,flask] [--connections 64]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Callable

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import benchlib as B  # noqa: E402

# ---------------------------------------------------------------------------------------------
# apps


@dataclass
class App:
    key: str
    directory: str
    module: str
    description: str
    expect_body: bytes | None = None
    expect_len: int | None = None
    path: str = "/"

    @property
    def file(self) -> str:
        return os.path.join(self.directory, self.module + ".py")

    @property
    def size(self) -> int:
        return self.expect_len if self.expect_len is not None else len(self.expect_body or b"")

    def check(self, status, headers, body) -> str | None:
        if status != 200:
            return f"status {status}"
        if self.expect_body is not None and body != self.expect_body:
            return f"unexpected body {body[:40]!r}"
        if self.expect_len is not None and len(body) != self.expect_len:
            return f"body of {len(body)} bytes, expected {self.expect_len}"
        return None


APPS = {
    "hello": App("hello", B.EXAMPLES_DIR, "hello",
                 "13-byte list body with Content-Length (examples/hello.py)",
                 expect_body=b"Hello, World!"),
    "64k": App("64k", B.APPS_DIR, "body64k", "64 KiB list body (bench/apps/body64k.py)",
               expect_len=65536),
    "file": App("file", B.APPS_DIR, "file1m",
                "1 MiB file through wsgi.file_wrapper (bench/apps/file1m.py)",
                expect_len=1024 * 1024),
    "flask": App("flask", B.EXAMPLES_DIR, "flask_app",
                 'Flask route "/" (examples/flask_app.py)',
                 expect_body=b"Hello from Flask!"),
}

# ---------------------------------------------------------------------------------------------
# servers


@dataclass
class Ctx:
    alicorn: str
    workers: int
    tmpdir: str
    logdir: str
    env: dict[str, str]
    keep_alive: int = 30


@dataclass
class Launch:
    argv: list[str]
    cwd: str
    single_process: bool = False
    env: dict[str, str] | None = None


@dataclass
class ServerSpec:
    key: str
    label: str
    family: str                      # nginx, alicorn, gunicorn, uwsgi, waitress
    build: Callable[[Ctx, App, int], Launch]
    missing: Callable[[Ctx], str | None]   # None when runnable, else why not
    apps: tuple[str, ...] | None = None    # None: every app
    hold: str | None = None          # None: can hold idle keep-alive connections; else why not
    note: str = ""


def _alicorn(kind: str, *extra: str):
    def build(ctx: Ctx, app: App, port: int) -> Launch:
        return Launch([ctx.alicorn, "-w", str(ctx.workers), "-k", kind, *extra,
                       "-b", f"{B.HOST}:{port}", "--keep-alive", str(ctx.keep_alive),
                       "--chdir", app.directory, f"{app.module}:app"], app.directory)
    return build


def _gunicorn(kind: str, *extra: str):
    def build(ctx: Ctx, app: App, port: int) -> Launch:
        return Launch([_GUNICORN or "gunicorn", "-w", str(ctx.workers), "-k", kind, *extra,
                       "-b", f"{B.HOST}:{port}", "--keep-alive", str(ctx.keep_alive),
                       "--chdir", app.directory, f"{app.module}:app"], app.directory)
    return build


def _uwsgi(socket_opt: str):
    def build(ctx: Ctx, app: App, port: int) -> Launch:
        return Launch([_UWSGI or "uwsgi", "--plugin", "python3", "--master",
                       "--processes", str(ctx.workers), socket_opt, f"{B.HOST}:{port}",
                       "--wsgi-file", app.file, "--callable", "app", "--disable-logging",
                       "--die-on-term", "--need-app", "--listen", "1024",
                       "--chdir", app.directory], app.directory)
    return build


def _waitress(ctx: Ctx, app: App, port: int) -> Launch:
    # --connection-limit (default 100) and --asyncore-use-poll (select() stops at fd 1024) only
    # so that it can hold the 1,000 idle connections of the memory test; 64 clients never
    # reach either limit.
    return Launch([_WAITRESS or "waitress-serve", "--threads", "4",
                   "--listen", f"{B.HOST}:{port}", "--connection-limit", "2000",
                   "--asyncore-use-poll", f"{app.module}:app"], app.directory,
                  single_process=True)


def _nginx(ctx: Ctx, app: App, port: int) -> Launch:
    prefix = os.path.join(ctx.tmpdir, f"nginx-{port}")
    os.makedirs(os.path.join(prefix, "tmp"), exist_ok=True)
    with open(os.path.join(B.BENCH_DIR, "nginx.conf.in")) as f:
        conf = f.read()
    conf = (conf.replace("@WORKERS@", str(ctx.workers)).replace("@PORT@", str(port))
            .replace("@PREFIX@", prefix)
            .replace("@FILE@", ctx.env.get("ALICORN_BENCH_FILE", "/nonexistent")))
    with open(os.path.join(prefix, "nginx.conf"), "w") as f:
        f.write(conf)
    return Launch([_NGINX or "nginx", "-p", prefix + "/", "-c", "nginx.conf",
                   "-e", os.path.join(prefix, "error.log")], prefix)


_GUNICORN = B.which("gunicorn", "/usr/bin/gunicorn")
_UWSGI = B.which("uwsgi", "/usr/bin/uwsgi")
_WAITRESS = B.which("waitress-serve", "/usr/bin/waitress-serve")
_NGINX = B.which("nginx", "/usr/sbin/nginx")


def _need(path, what):
    return lambda ctx: None if path else f"{what} not installed"


def _alicorn_missing(kind):
    def missing(ctx: Ctx):
        if not os.access(ctx.alicorn, os.X_OK):
            return f"no alicorn binary at {ctx.alicorn}"
        listed = B.run_quiet([ctx.alicorn, "--list-workers"], timeout=10)
        return None if listed != "?" else "alicorn --list-workers failed"
    return missing


def _gevent_missing(ctx: Ctx):
    if not _GUNICORN:
        return "gunicorn not installed"
    return None if B.python_module_version("gevent") else "python3-gevent not installed"


def _uwsgi_missing(ctx: Ctx):
    if not _UWSGI:
        return "uwsgi not installed"
    for d in ("/usr/lib/uwsgi/plugins", "/usr/lib/uwsgi"):
        if os.path.exists(os.path.join(d, "python3_plugin.so")):
            return None
    return "uwsgi-plugin-python3 not installed"


SERVERS = [
    ServerSpec("nginx", "nginx (no Python)", "nginx", _nginx, _need(_NGINX, "nginx"),
               apps=("hello",), note="static return, the ceiling"),
    ServerSpec("uv", "alicorn uv", "alicorn", _alicorn("uv"), _alicorn_missing("uv")),
    ServerSpec("gthread", "alicorn gthread", "alicorn", _alicorn("gthread", "--threads", "4"),
               _alicorn_missing("gthread"), note="4 threads"),
    ServerSpec("sync", "alicorn sync", "alicorn", _alicorn("sync"), _alicorn_missing("sync"),
               hold="the sync worker closes every connection after one response"),
    ServerSpec("gunicorn-sync", "gunicorn sync", "gunicorn", _gunicorn("sync"),
               _need(_GUNICORN, "gunicorn"),
               hold="the sync worker closes every connection after one response"),
    ServerSpec("gunicorn-gthread", "gunicorn gthread", "gunicorn",
               _gunicorn("gthread", "--threads", "4"), _need(_GUNICORN, "gunicorn"),
               note="4 threads"),
    ServerSpec("gunicorn-gevent", "gunicorn gevent", "gunicorn",
               _gunicorn("gevent", "--worker-connections", "1000"), _gevent_missing),
    ServerSpec("uwsgi-http11", "uWSGI http11-socket", "uwsgi", _uwsgi("--http11-socket"),
               _uwsgi_missing,
               hold="a uWSGI process (no threads/async) serves one connection at a time"),
    ServerSpec("uwsgi-http", "uWSGI http-socket", "uwsgi", _uwsgi("--http-socket"),
               _uwsgi_missing, hold="--http-socket closes every connection after one response"),
    ServerSpec("waitress", "waitress", "waitress", _waitress, _need(_WAITRESS, "waitress"),
               note="1 process x 4 threads (no fork)"),
]
SERVER_KEYS = [s.key for s in SERVERS]
GUNICORN_KEYS = [s.key for s in SERVERS if s.family == "gunicorn"]
PEER_KEYS = [s.key for s in SERVERS if s.family not in ("alicorn", "nginx")]

# ---------------------------------------------------------------------------------------------
# one server + app


def run_case(ctx: Ctx, spec: ServerSpec, app: App, args, want_memory: bool) -> tuple[dict, dict | None]:
    """Starts spec serving app, measures it, stops it. Returns (app result, memory result)."""
    port = B.free_port()
    launch = spec.build(ctx, app, port)
    env = dict(ctx.env)
    if launch.env:
        env.update(launch.env)
    server = B.ServerProcess(name=f"{spec.key}-{app.key}", argv=launch.argv, cwd=launch.cwd,
                             env=env, log_path=os.path.join(ctx.logdir,
                                                            f"{spec.key}-{app.key}.log"),
                             workers=ctx.workers, single_process=launch.single_process)
    res: dict = {"status": "n/a", "command": " ".join(launch.argv)}
    mem: dict | None = None
    url = f"http://{B.HOST}:{port}{app.path}"
    try:
        first_failure = server.start_ready(port, app.path, app.check, args.start_timeout)
        if first_failure:
            res["first_start_failure"] = first_failure
        res["processes"] = len(server.worker_pids())
        if app.key == "hello":
            res["connection_check"] = B.connection_check(port, app.path, args.connections)
            B.log(f"  connections: {B.describe_connection_check(res['connection_check'])}")
        raw = os.path.join(ctx.logdir, f"{spec.key}-{app.key}")
        B.run_wrk(url, args.connections, args.warmup, args.wrk_threads, latency=False,
                  raw_path=raw + ".warmup.txt")
        if not server.alive():
            raise B.StartError(f"died during the warm-up: {server.log_tail()}")
        w = B.run_wrk(url, args.connections, args.duration, args.wrk_threads,
                      raw_path=raw + ".wrk.txt")
        res.update({k: w[k] for k in ("rps", "p50_ms", "p99_ms", "requests", "bytes",
                                      "seconds", "errors")})
        res["wrk"] = " ".join(w["argv"])
        if w["requests"]:
            res["avg_response_bytes"] = round(w["bytes"] / w["requests"])
        if w["rps"] is None:
            res["reason"] = "wrk printed no result (see the raw output)"
        else:
            res["status"] = "ok"
        if not server.alive():
            res["status"] = "n/a"
            res["reason"] = f"died during the run: {server.log_tail()}"
        B.log(f"  {B.fmt_rps(res.get('rps'))} req/s, p99 {B.fmt_ms(res.get('p99_ms'))}"
              + (f", errors: {B.errors_text(res['errors'])}" if res.get("errors") else ""))
        if want_memory and server.alive():
            mem = measure_memory(server, spec, port, app, args)
    except B.StartError as e:
        res["reason"] = str(e)
        B.log(f"  n/a: {e}")
    except Exception as e:  # a benchmark must go on to the next server
        res["reason"] = f"{type(e).__name__}: {e}"
        B.log(f"  n/a: {res['reason']}")
    finally:
        server.stop()
    return res, mem


def measure_memory(server: B.ServerProcess, spec: ServerSpec, port: int, app: App, args) -> dict:
    time.sleep(1.0)
    idle_kb, nproc = server.rss_kb()
    mem: dict = {"idle_kb": idle_kb, "processes": nproc, "connections": args.memory_connections}
    if spec.hold:
        mem["reason"] = spec.hold
        B.log(f"  idle RSS {B.fmt_mb(idle_kb)} over {nproc} process(es); "
              f"no idle-connection test: {spec.hold}")
        return mem
    conns = B.IdleConnections(port, app.path, args.memory_connections,
                              timeout=args.memory_timeout)
    try:
        time.sleep(0.5)
        held_kb, _ = server.rss_kb()
        open_now = conns.still_open()
        mem.update({"held_kb": held_kb, "delta_kb": held_kb - idle_kb,
                    "opened": len(conns.socks), "answered": conns.answered,
                    "still_open": open_now})
        if conns.error:
            mem["client_error"] = conns.error
    finally:
        conns.close()
    B.log(f"  RSS idle {B.fmt_mb(idle_kb)}, with {open_now}/{args.memory_connections} idle "
          f"connections {B.fmt_mb(held_kb)} (+{B.fmt_mb(held_kb - idle_kb)})")
    return mem


# ---------------------------------------------------------------------------------------------
# report


def rps_of(results, server, app):
    r = results.get(server, {}).get("apps", {}).get(app)
    return r.get("rps") if r and r.get("status") == "ok" else None


def best_of(results, keys, app):
    best = None
    for k in keys:
        v = rps_of(results, k, app)
        if v is not None and (best is None or v > best[1]):
            best = (k, v)
    return best


def ratio(a, b):
    return a / b if a is not None and b else None


def short(text: str, n: int = 90) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n - 3] + "..."


def app_table(results, app: App, server_keys) -> str:
    nginx = rps_of(results, "nginx", "hello") if app.key == "hello" else None
    best_g = best_of(results, GUNICORN_KEYS, app.key)
    headers = ["server", "req/s", "p99", "x nginx", "x best gunicorn"]
    if app.key == "hello":
        headers.append("connections")
    headers.append("notes")
    rows = []
    for key in server_keys:
        spec = next(s for s in SERVERS if s.key == key)
        if spec.apps is not None and app.key not in spec.apps:
            continue
        r = results.get(key, {}).get("apps", {}).get(app.key)
        if r is None:
            continue
        notes = []
        if r.get("status") != "ok":
            notes.append("n/a: " + short(r.get("reason", "?")))
        if spec.note:
            notes.append(spec.note)
        if r.get("errors"):
            notes.append("wrk errors: " + B.errors_text(r["errors"]))
        avg = r.get("avg_response_bytes")
        if avg is not None and avg < 0.98 * app.size:  # wrk rounds its byte count
            notes.append(f"short responses? avg {avg} B read per response")
        cc = r.get("connection_check")
        if cc and 0 < cc["first_answered"] < cc["connections"]:
            notes.append(f"only {cc['first_answered']} of {cc['connections']} connections "
                         "served at once: the figures come from those")
        row = [spec.label, B.fmt_rps(r.get("rps")) if r.get("status") == "ok" else "n/a",
               B.fmt_ms(r.get("p99_ms")) if r.get("status") == "ok" else "n/a",
               B.fmt_ratio(ratio(r.get("rps"), nginx)) if r.get("status") == "ok" else "-",
               B.fmt_ratio(ratio(r.get("rps"), best_g[1] if best_g else None))
               if r.get("status") == "ok" else "-"]
        if app.key == "hello":
            row.append(B.describe_connection_check(cc))
        row.append("; ".join(notes))
        rows.append(row)
    title = f"== {app.key}: {app.description}"
    if best_g:
        title += f"; best gunicorn: {next(s.label for s in SERVERS if s.key == best_g[0])}"
    return title + "\n" + B.table(headers, rows, right={1, 2, 3, 4})


def memory_table(results, server_keys, n) -> str:
    headers = ["server", "procs", "idle RSS", f"RSS, {n:,} idle conns", "delta", "held",
               "notes"]
    rows = []
    for key in server_keys:
        spec = next(s for s in SERVERS if s.key == key)
        m = results.get(key, {}).get("memory")
        if m is None:
            continue
        if m.get("idle_kb") is None:
            rows.append([spec.label, "-", "n/a", "n/a", "-", "-", short(m.get("reason", ""))])
            continue
        held = m.get("held_kb")
        notes = [short(m["reason"])] if m.get("reason") else []
        if spec.family == "waitress":
            notes.append("1 process")
        if m.get("client_error"):
            notes.append("client: " + short(m["client_error"], 50))
        if held is not None and m.get("still_open", n) < n:
            notes.append(f"only {m['still_open']} connections still open when measured")
        rows.append([spec.label, str(m.get("processes", "-")), B.fmt_mb(m["idle_kb"]),
                     B.fmt_mb(held) if held is not None else "-",
                     ("+" + B.fmt_mb(m["delta_kb"])) if held is not None else "-",
                     f"{m['still_open']}/{n}" if held is not None else "-",
                     "; ".join(notes)])
    return ("== memory: worker RSS (sum of VmRSS over worker processes; shared pages count "
            "in each)\n" + B.table(headers, rows, right={1, 2, 3, 4, 5}))


def goals(results, n) -> list[dict]:
    out = []

    def add(text, value, ok):
        out.append({"goal": text, "value": value,
                    "result": "n/a" if ok is None else ("PASS" if ok else "MISS")})

    uv_hello = rps_of(results, "uv", "hello")
    nginx = rps_of(results, "nginx", "hello")
    r = ratio(uv_hello, nginx)
    add("alicorn uv hello >= 0.85x nginx", B.fmt_ratio(r), None if r is None else r >= 0.85)

    best_g = best_of(results, GUNICORN_KEYS, "hello")
    r = ratio(uv_hello, best_g[1] if best_g else None)
    add("alicorn uv hello >= 7x best Gunicorn worker",
        B.fmt_ratio(r) + (f" (vs {best_g[0]})" if best_g and r is not None else ""),
        None if r is None else r >= 7)

    uv_flask = rps_of(results, "uv", "flask")
    best_p = best_of(results, PEER_KEYS, "flask")
    r = ratio(uv_flask, best_p[1] if best_p else None)
    add("alicorn uv Flask ahead of every peer",
        B.fmt_ratio(r) + (f" of the best peer ({best_p[0]})" if best_p and r is not None
                          else ""),
        None if r is None else r > 1.0)

    r = ratio(rps_of(results, "gthread", "hello"), rps_of(results, "gunicorn-gthread", "hello"))
    add("alicorn gthread hello >= 3x gunicorn gthread", B.fmt_ratio(r),
        None if r is None else r >= 3)

    m = results.get("uv", {}).get("memory") or {}
    delta = m.get("delta_kb")
    value = "n/a" if delta is None else f"+{B.fmt_mb(delta)} with {m.get('still_open')}/{n} open"
    ok = None if delta is None else (delta < 25 * 1024 and m.get("still_open", 0) >= n)
    add(f"alicorn uv RSS delta with {n:,} idle keep-alive connections < 25 MB", value, ok)
    return out


# ---------------------------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="alicorn vs nginx, gunicorn, uWSGI and waitress, one server at a time.",
        epilog=f"servers: {', '.join(SERVER_KEYS)}; apps: {', '.join(APPS)}")
    p.add_argument("--duration", type=float, default=5, help="measured seconds per run (5)")
    p.add_argument("--warmup", type=float, default=1, help="warm-up seconds per run (1)")
    p.add_argument("--servers", default=",".join(SERVER_KEYS),
                   help="comma-separated servers to run (default: all)")
    p.add_argument("--apps", default=",".join(APPS), help="comma-separated apps (default: all)")
    p.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    p.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (2)")
    p.add_argument("--workers", type=int, default=2, help="worker processes per server (2)")
    p.add_argument("--memory-connections", type=int, default=1000,
                   help="idle keep-alive connections for the memory test (1000; 0 skips it)")
    p.add_argument("--memory-timeout", type=float, default=30,
                   help="seconds allowed to open the idle connections (30)")
    p.add_argument("--start-timeout", type=float, default=30,
                   help="seconds a server gets to answer after starting (30)")
    p.add_argument("--alicorn", default=os.environ.get(
        "ALICORN_BIN", os.path.join(B.ROOT, "build", "bin", "alicorn")),
        help="alicorn binary (default: $ALICORN_BIN or build/bin/alicorn)")
    p.add_argument("--results-dir", default=os.path.join(B.BENCH_DIR, "results"),
                   help="where the JSON, the text report and raw logs go (bench/results)")
    args = p.parse_args(argv)

    def split(text, known, what):
        items = [x.strip() for x in text.split(",") if x.strip()]
        bad = [x for x in items if x not in known]
        if bad:
            p.error(f"unknown {what}: {', '.join(bad)} (known: {', '.join(known)})")
        return [k for k in known if k in items]  # canonical order

    args.servers = split(args.servers, SERVER_KEYS, "server")
    args.apps = split(args.apps, list(APPS), "app")
    if args.duration < 1 or args.warmup < 1 or args.connections < 1:
        p.error("--duration and --warmup need >= 1 s, --connections >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    B.install_signal_handlers()
    nofile = B.raise_nofile(max(65536, args.memory_connections * 2 + 1024))
    if not B.which("wrk"):
        print("compare.py: wrk not found (scripts/install-deps.sh --bench)", file=sys.stderr)
        return 2

    stamp = time.strftime("%Y%m%d-%H%M%S")
    os.makedirs(args.results_dir, exist_ok=True)
    logdir = os.path.join(args.results_dir, stamp)
    os.makedirs(logdir, exist_ok=True)
    tmpdir = tempfile.mkdtemp(prefix="alicorn-bench-")
    B.remove_tmpdirs_at_exit(tmpdir)
    bench_file = os.path.join(tmpdir, "file-1m.bin")
    with open(bench_file, "wb") as f:
        f.write(bytes(range(256)) * (1024 * 1024 // 256))
    ctx = Ctx(alicorn=os.path.abspath(args.alicorn), workers=args.workers, tmpdir=tmpdir,
              logdir=logdir, env=B.clean_env({"ALICORN_BENCH_FILE": bench_file,
                                              "PYTHONDONTWRITEBYTECODE": "1"}))

    load_start = B.loadavg()
    started = time.strftime("%Y-%m-%d %H:%M:%S %z")
    versions = {
        "alicorn": B.run_quiet([ctx.alicorn, "--version"]),
        "gunicorn": B.run_quiet([_GUNICORN, "--version"]) if _GUNICORN else None,
        "uwsgi": B.run_quiet([_UWSGI, "--version"]) if _UWSGI else None,
        "waitress": B.python_module_version("waitress"),
        "nginx": B.run_quiet([_NGINX, "-v"]) if _NGINX else None,
        "wrk": " ".join(B.run_quiet(["wrk", "--version"]).split()[:2]),
        "python": B.run_quiet([B.PYTHON, "--version"]),
        "flask": B.python_module_version("flask"),
        "gevent": B.python_module_version("gevent"),
    }
    B.log(f"compare.py: load average at start {load_start}; results in {logdir}")
    results: dict = {}
    want_memory = args.memory_connections > 0 and "hello" in args.apps
    try:
        for spec in SERVERS:
            if spec.key not in args.servers:
                continue
            entry = results.setdefault(spec.key, {"label": spec.label, "apps": {}})
            apps = [a for a in args.apps if spec.apps is None or a in spec.apps]
            why_not = spec.missing(ctx)
            if why_not:
                B.log(f"{spec.label}: n/a ({why_not})")
                for a in apps:
                    entry["apps"][a] = {"status": "n/a", "reason": why_not}
                if want_memory:
                    entry["memory"] = {"reason": why_not}
                continue
            for a in apps:
                B.log(f"{spec.label} / {a} (load {B.loadavg()})")
                res, mem = run_case(ctx, spec, APPS[a], args, want_memory and a == "hello")
                entry["apps"][a] = res
                if a == "hello" and want_memory:
                    entry["memory"] = mem or {"reason": res.get("reason", "not measured")}
    finally:
        B.kill_all_servers()
        shutil.rmtree(tmpdir, ignore_errors=True)

    load_end = B.loadavg()
    goal_list = goals(results, args.memory_connections) if args.memory_connections else \
        goals(results, 1000)
    lines = [
        f"alicorn compare.py  {started}",
        f"load average at start: {load_start}   at end: {load_end}   "
        f"(cpus: {os.cpu_count()}; wrk runs on the same machine)",
        f"{args.workers} workers per server, wrk -t{args.wrk_threads} -c{args.connections} "
        f"-d{args.duration:g}s --latency after a {args.warmup:g}s warm-up; "
        f"keep-alive timeout {ctx.keep_alive}s; open-file limit {nofile}",
        "versions: " + ", ".join(v if k in v.lower() else f"{k} {v}"
                                 for k, v in versions.items() if v),
        "",
    ]
    for a in args.apps:
        lines += [app_table(results, APPS[a], args.servers), ""]
    if want_memory:
        lines += [memory_table(results, args.servers, args.memory_connections), ""]
    lines.append("== goals (informational: benchmarks are not tests)")
    lines.append(B.table(["goal", "value", "result"],
                         [[g["goal"], g["value"], g["result"]] for g in goal_list]))
    lines += ["", f"JSON: {os.path.join(args.results_dir, stamp + '.json')}",
              f"server logs and raw wrk output: {logdir}"]
    report = "\n".join(lines)
    print(report, flush=True)

    with open(os.path.join(args.results_dir, stamp + ".json"), "w") as f:
        json.dump({"started": started, "finished": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                   "loadavg_start": load_start, "loadavg_end": load_end,
                   "cpus": os.cpu_count(), "settings": {
                       "duration": args.duration, "warmup": args.warmup,
                       "connections": args.connections, "wrk_threads": args.wrk_threads,
                       "workers": args.workers, "keep_alive": ctx.keep_alive,
                       "memory_connections": args.memory_connections,
                       "servers": args.servers, "apps": args.apps},
                   "versions": versions,
                   "apps": {k: {"description": APPS[k].description, "file": APPS[k].file}
                            for k in args.apps},
                   "results": results, "goals": goal_list}, f, indent=2)
    with open(os.path.join(args.results_dir, stamp + ".txt"), "w") as f:
        f.write(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
