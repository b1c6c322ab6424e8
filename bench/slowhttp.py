#!/usr/bin/python3
"""Slow and hostile clients (not a test): Debian's slowhttptest attacks each server while a probe
client keeps asking for the hello page, and the probe's success rate during the attack is
reported beside Gunicorn's and nginx's.

  bench/slowhttp.py                              every attack on every server, 20 s each
  bench/slowhttp.py --servers uv,gunicorn-sync --attacks slowloris --seconds 10

Attacks (slowhttptest modes, 500 connections opened at 200/s):
  slowloris   -H  request headers dribbled, one more header line every 5 s
  slowbody    -B  a POST whose 4 KiB body is dribbled, a few bytes every 5 s
  slowread    -X  the client reads the response at 32 bytes every 3 s (a 64 KiB body, pipelined
                  requests, a small receive window)
The probe opens a fresh connection for every request (GET /, 2 s timeout), one every 50 ms,
from 2 s after the attack starts to its end. Every server runs 2 workers with its own default
timeouts (alicorn and Gunicorn: --keep-alive 2, --timeout 30; nginx: its 60 s client timeouts).
A server "survives" an attack when the probe keeps getting answers: its success rate is what
matters, its median latency shows how long a legitimate client waited.

Tables to stdout, progress to stderr, JSON in bench/results/slowhttp-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402
import run as R  # noqa: E402

ATTACKS = {
    "slowloris": ["-H", "-i", "5"],
    "slowbody": ["-B", "-i", "5", "-s", "4096"],
    "slowread": ["-X", "-k", "8", "-n", "3", "-z", "32", "-w", "512", "-y", "1024"],
}
SERVERS = {
    "nginx": R.BY_KEY["nginx"],
    "uv": R.BY_KEY["uv"],
    "gthread": R.BY_KEY["gthread"],
    "sync": R.Server("sync", "alicorn sync", "alicorn", R._alicorn("sync"),
                     R._alicorn_missing()),
    "gunicorn-sync": R.BY_KEY["gunicorn-sync"],
    "gunicorn-gthread": R.BY_KEY["gunicorn-gthread"],
}
# slowread needs a response larger than the client's window: body64k.py (64 KiB) where there is
# Python; nginx serves its 1 MiB file.
HELLO = R.Scenario("hello", "hello", B.EXAMPLES_DIR, "hello", "/", R._body_is(b"Hello, World!"),
                   nginx_path="/")
BIG = R.Scenario("big", "64 KiB", B.APPS_DIR, "body64k", "/", R._status_ok,
                 nginx_path="/file1m")


def probe(port: int, stop: threading.Event, out: list) -> None:
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            status, _h, body, _c = B.http_request(port, "/", timeout=2.0)
            ok = status == 200
        except OSError:
            ok = False
        out.append((ok, time.monotonic() - t0))
        stop.wait(max(0.0, 0.05 - (time.monotonic() - t0)))


def one(ctx, server, attack: str, seconds: int, logdir: str) -> dict:
    sc = BIG if attack == "slowread" else HELLO
    port = B.free_port()
    argv = server.argv(ctx, sc, port, 2)
    proc = B.ServerProcess(server.key, argv, sc.directory, ctx.env,
                           os.path.join(logdir, f"{server.key}-{attack}.log"), workers=2,
                           single_process=server.single_process)
    path = sc.nginx_path if server.family == "nginx" else sc.path
    try:
        proc.start_ready(port, path, R._status_ok)
    except B.StartError as e:
        return {"error": str(e)}
    url = f"http://{B.HOST}:{port}{path}"
    cmd = ["slowhttptest", "-c", "500", "-r", "200", "-l", str(seconds), "-p", "2", "-u", url,
           *ATTACKS[attack]]
    results: list = []
    stop = threading.Event()
    with open(os.path.join(logdir, f"{server.key}-{attack}.slowhttptest"), "wb") as log:
        attacker = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        time.sleep(2)
        t = threading.Thread(target=probe, args=(port, stop, results), daemon=True)
        t.start()
        try:
            attacker.wait(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            attacker.kill()
        stop.set()
        t.join(5)
    alive = proc.alive()
    proc.stop()
    ok = [d for good, d in results if good]
    return {"probes": len(results), "ok": len(ok),
            "rate": (100.0 * len(ok) / len(results)) if results else 0.0,
            "p50_ms": statistics.median(ok) * 1000 if ok else None,
            "server_alive": alive}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--servers", default=",".join(SERVERS))
    ap.add_argument("--attacks", default=",".join(ATTACKS))
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--alicorn", default=os.path.join(B.ROOT, "build", "bin", "alicorn"))
    ap.add_argument("--results-dir", default=os.path.join(B.BENCH_DIR, "results"))
    args = ap.parse_args(argv)
    if not shutil.which("slowhttptest"):
        print("slowhttp.py: slowhttptest not found (scripts/install-deps.sh --bench)",
              file=sys.stderr)
        return 2
    B.install_signal_handlers()
    B.raise_nofile(65536)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    logdir = os.path.join(args.results_dir, "slowhttp-" + stamp)
    os.makedirs(logdir, exist_ok=True)
    tmpdir = tempfile.mkdtemp(prefix="alicorn-slowhttp-")
    os.chmod(tmpdir, 0o755)
    B.remove_tmpdirs_at_exit(tmpdir)
    bench_file = os.path.join(tmpdir, "file-1m.bin")
    with open(bench_file, "wb") as f:
        f.write(bytes(range(256)) * (1024 * 1024 // 256))
    ctx = R.Ctx(alicorn=os.path.abspath(args.alicorn), baseline=None, tmpdir=tmpdir,
                logdir=logdir, bench_file=bench_file, keep_alive=2,
                env=B.clean_env({"ALICORN_BENCH_FILE": bench_file,
                                 "PYTHONDONTWRITEBYTECODE": "1"}))
    report: dict = {}
    for attack in args.attacks.split(","):
        print(f"== {attack}: slowhttptest {' '.join(ATTACKS[attack])}, 500 connections, "
              f"{args.seconds} s; probe GET / every 50 ms, 2 s timeout")
        print(f"{'server':<22} {'probes':>7} {'answered':>9} {'p50 ms':>8}  note")
        for key in args.servers.split(","):
            server = SERVERS[key]
            why = server.missing(ctx)
            if why:
                print(f"{server.label:<22} skipped: {why}")
                continue
            B.log(f"{attack} on {key}")
            r = one(ctx, server, attack, args.seconds, logdir)
            report.setdefault(attack, {})[key] = r
            if "error" in r:
                print(f"{server.label:<22} failed to start: {r['error'][:80]}")
                continue
            p50 = f"{r['p50_ms']:.1f}" if r["p50_ms"] is not None else "-"
            note = "" if r["server_alive"] else "server died"
            print(f"{server.label:<22} {r['probes']:>7} {r['rate']:>8.1f}% {p50:>8}  {note}",
                  flush=True)
    with open(os.path.join(args.results_dir, f"slowhttp-{stamp}.json"), "w") as f:
        json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
