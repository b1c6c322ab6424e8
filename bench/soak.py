#!/usr/bin/python3
"""Soak run (not a test): mixed traffic against alicorn for a long while, on each worker class,
with a worker killed (SIGKILL) every minute, to find what only time shows: leaks of memory or
descriptors, requests lost outside the kills, a master that stops replacing workers.

  bench/soak.py                          30 minutes on each of sync, gthread and uv (90 min)
  bench/soak.py --minutes 5 --classes uv
  bench/soak.py --minutes 1 --kill-every 15     a quick look

Traffic (client threads, each picking a kind at random per request, new connection each time):
  hello       GET /, expects 200 and the 13-byte body
  upload      POST /upload of 0..2 MiB (over the 1 MiB spool threshold now and then), expects
              its length back
  disconnect  GET /big (4 MiB) and hang up after the first 64 KiB: the worker must cope
  slow        GET / with the request head sent in five pieces 0.2 s apart, then read it all
A failure is any exception, timeout or unexpected answer. Failures within 2 s after a kill (the
requests the killed worker held) are counted apart from the others; the others are the ones
that matter.

Reported per worker class: requests and failures by kind, workers killed and replaced, RSS and
open descriptors of the master and of each worker at the start (after a warm-up) and at the end
(the end's workers are mostly replacements: their figures show a fresh worker after the run's
traffic, the master's show what it accumulated). Tables to stdout, progress to stderr, JSON in
bench/results/soak-<timestamp>.json, the server logs beside it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

KINDS = ("hello", "upload", "disconnect", "slow")
WEIGHTS = (50, 20, 15, 15)
KILL_WINDOW = 2.0  # seconds after a kill in which a failure is put down to it
TIMEOUT = 30.0     # per request


def open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def snapshot(server: B.ServerProcess) -> dict:
    workers = server.worker_pids()
    return {
        "master": {"pid": server.pid, "rss_kb": B.vmrss_kb(server.pid),
                   "fds": open_fds(server.pid)},
        "workers": [{"pid": p, "rss_kb": B.vmrss_kb(p), "fds": open_fds(p)} for p in workers],
    }


# ---- clients --------------------------------------------------------------------------------

def do_hello(port: int, rng: random.Random) -> None:
    c = http.client.HTTPConnection(B.HOST, port, timeout=TIMEOUT)
    try:
        c.request("GET", "/")
        r = c.getresponse()
        body = r.read()
        if r.status != 200 or body != b"Hello, World!":
            raise AssertionError(f"hello: {r.status} {body[:40]!r}")
    finally:
        c.close()


def do_upload(port: int, rng: random.Random) -> None:
    size = rng.choice((0, 1000, 64 * 1024, 900 * 1024, 1200 * 1024, 2 * 1024 * 1024))
    body = os.urandom(size)
    c = http.client.HTTPConnection(B.HOST, port, timeout=TIMEOUT)
    try:
        c.request("POST", "/upload", body=body,
                  headers={"Content-Type": "application/octet-stream"})
        r = c.getresponse()
        got = r.read()
        if r.status != 200 or got != str(size).encode():
            raise AssertionError(f"upload {size}: {r.status} {got[:40]!r}")
    finally:
        c.close()


def do_disconnect(port: int, rng: random.Random) -> None:
    with socket.create_connection((B.HOST, port), timeout=TIMEOUT) as s:
        s.sendall(f"GET /big HTTP/1.1\r\nHost: {B.HOST}:{port}\r\n\r\n".encode())
        got = b""
        while len(got) < 64 * 1024:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        if not got.startswith(b"HTTP/1.1 200"):
            raise AssertionError(f"disconnect: {got[:40]!r}")
        # Hang up with most of the 4 MiB unsent: an RST when unread data is left.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def do_slow(port: int, rng: random.Random) -> None:
    head = (f"GET /slow HTTP/1.1\r\nHost: {B.HOST}:{port}\r\nUser-Agent: soak-slow\r\n"
            f"Connection: close\r\n\r\n").encode()
    cuts = sorted(rng.sample(range(1, len(head)), 4))
    pieces = [head[a:b] for a, b in zip([0] + cuts, cuts + [len(head)])]
    with socket.create_connection((B.HOST, port), timeout=TIMEOUT) as s:
        for i, p in enumerate(pieces):
            if i:
                time.sleep(0.2)
            s.sendall(p)
        got = b""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        if not got.startswith(b"HTTP/1.1 200") or not got.endswith(b"Hello, World!"):
            raise AssertionError(f"slow: {got[:60]!r}")


DO = {"hello": do_hello, "upload": do_upload, "disconnect": do_disconnect, "slow": do_slow}


class Traffic:
    def __init__(self, port: int, threads: int, seed: int):
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ok = {k: 0 for k in KINDS}
        self.failures: list[tuple[float, str, str]] = []  # (monotonic time, kind, reason)
        self.threads = [threading.Thread(target=self.run, args=(seed + i,), daemon=True)
                        for i in range(threads)]

    def run(self, seed: int) -> None:
        rng = random.Random(seed)
        while not self.stop.is_set():
            kind = rng.choices(KINDS, WEIGHTS)[0]
            try:
                DO[kind](self.port, rng)
                with self.lock:
                    self.ok[kind] += 1
            except Exception as e:  # noqa: BLE001 - every failure is counted, with its reason
                with self.lock:
                    self.failures.append((time.monotonic(), kind, f"{type(e).__name__}: {e}"))
                time.sleep(0.05)

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(TIMEOUT + 5)


# ---- one worker class -----------------------------------------------------------------------

def soak(worker_class: str, args, logdir: str) -> dict:
    port = B.free_port()
    argv = [args.alicorn, "-b", f"{B.HOST}:{port}", "-w", str(args.workers), "-k", worker_class,
            "--timeout", "30", "soak_app:app"]
    server = B.ServerProcess(name=f"alicorn-{worker_class}", argv=argv, cwd=B.APPS_DIR,
                             env=B.clean_env(), log_path=os.path.join(logdir, f"{worker_class}.log"),
                             workers=args.workers, stop_signal=signal.SIGTERM)
    check = lambda status, _h, body: None if status == 200 else f"status {status}"  # noqa: E731
    server.start_ready(port, "/", check)
    for _ in range(50):  # warm-up: imports, caches, first spool file
        do_hello(port, random.Random(0))
        do_upload(port, random.Random(1))
    start = snapshot(server)
    B.log(f"{worker_class}: start {json.dumps(start)}")

    traffic = Traffic(port, args.clients, seed=hash(worker_class) & 0xffff)
    traffic.start()
    kills: list[tuple[float, int]] = []
    t0 = time.monotonic()
    end = t0 + args.minutes * 60
    next_kill = t0 + args.kill_every
    master_died = None
    while time.monotonic() < end:
        time.sleep(min(1.0, max(0.0, end - time.monotonic())))
        if not server.alive():
            master_died = f"master exited with {server.proc.returncode}"
            break
        if time.monotonic() >= next_kill:
            next_kill += args.kill_every
            workers = server.worker_pids()
            if workers:
                victim = random.choice(workers)
                try:
                    os.kill(victim, signal.SIGKILL)
                    kills.append((time.monotonic(), victim))
                    B.log(f"{worker_class}: killed worker {victim} "
                          f"({time.monotonic() - t0:.0f} s, ok so far {sum(traffic.ok.values())}, "
                          f"failures {len(traffic.failures)})")
                except ProcessLookupError:
                    pass
    traffic.finish()
    elapsed = time.monotonic() - t0
    # The last kill's replacement: wait until the worker count is back.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(server.worker_pids()) < args.workers:
        time.sleep(0.2)
    final = snapshot(server)
    B.log(f"{worker_class}: end {json.dumps(final)}")
    server.stop()

    def near_kill(t: float) -> bool:
        return any(k <= t <= k + KILL_WINDOW for k, _ in kills)

    by_kind = {k: {"ok": traffic.ok[k], "failed": 0, "failed_near_kill": 0} for k in KINDS}
    other_reasons: dict[str, int] = {}
    for t, kind, reason in traffic.failures:
        if near_kill(t):
            by_kind[kind]["failed_near_kill"] += 1
        else:
            by_kind[kind]["failed"] += 1
            key = f"{kind}: {reason[:120]}"
            other_reasons[key] = other_reasons.get(key, 0) + 1
    try:
        with open(server.log_path, errors="replace") as f:
            log_text = f.read()
    except OSError:
        log_text = ""
    return {
        "class": worker_class, "seconds": round(elapsed, 1), "workers": args.workers,
        "clients": args.clients, "kills": len(kills), "master_died": master_died,
        "by_kind": by_kind, "other_failure_reasons": other_reasons,
        "error_log_lines": log_text.count("[ERROR]"), "start": start, "end": final,
    }


def fmt_proc(p: dict) -> str:
    rss = "n/a" if p.get("rss_kb") is None else f"{p['rss_kb'] / 1024:.1f} MB"
    return f"{rss}, {p.get('fds', 'n/a')} fds"


def report(results: list[dict]) -> str:
    out = []
    rows = []
    for r in results:
        ok = sum(v["ok"] for v in r["by_kind"].values())
        near = sum(v["failed_near_kill"] for v in r["by_kind"].values())
        other = sum(v["failed"] for v in r["by_kind"].values())
        rows.append([r["class"], f"{r['seconds'] / 60:.1f}", str(ok), str(other), str(near),
                     str(r["kills"]), str(r["error_log_lines"]), r["master_died"] or "no"])
    out.append(B.table(["class", "minutes", "ok", "failed", "failed near a kill", "kills",
                        "ERROR lines", "master died"], rows, right={1, 2, 3, 4, 5, 6}))
    out.append("")
    rows = []
    for r in results:
        for kind, v in r["by_kind"].items():
            rows.append([r["class"], kind, str(v["ok"]), str(v["failed"]),
                         str(v["failed_near_kill"])])
    out.append(B.table(["class", "kind", "ok", "failed", "failed near a kill"], rows,
                       right={2, 3, 4}))
    out.append("")
    rows = []
    for r in results:
        rows.append([r["class"], "master", fmt_proc(r["start"]["master"]),
                     fmt_proc(r["end"]["master"])])
        s, e = r["start"]["workers"], r["end"]["workers"]
        for i in range(max(len(s), len(e))):
            a = f"pid {s[i]['pid']}: {fmt_proc(s[i])}" if i < len(s) else "-"
            b = f"pid {e[i]['pid']}: {fmt_proc(e[i])}" if i < len(e) else "-"
            rows.append([r["class"], f"worker {i}", a, b])
    out.append(B.table(["class", "process", "start (after warm-up)", "end"], rows))
    for r in results:
        if r["other_failure_reasons"]:
            out.append("")
            out.append(f"{r['class']}: failures outside the kills")
            for reason, n in sorted(r["other_failure_reasons"].items(), key=lambda x: -x[1])[:10]:
                out.append(f"  {n:5d}  {reason}")
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30.0, help="per worker class (default 30)")
    p.add_argument("--classes", default="sync,gthread,uv")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--clients", type=int, default=6, help="client threads")
    p.add_argument("--kill-every", type=float, default=60.0, help="seconds between kills")
    p.add_argument("--alicorn", default=os.path.join(B.ROOT, "build", "bin", "alicorn"))
    p.add_argument("--results-dir", default=os.path.join(B.BENCH_DIR, "results"))
    args = p.parse_args()
    if not os.access(args.alicorn, os.X_OK):
        print(f"no alicorn binary at {args.alicorn} (build first, or --alicorn)", file=sys.stderr)
        return 2
    B.install_signal_handlers()
    B.raise_nofile()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    logdir = os.path.join(args.results_dir, "soak-" + stamp)
    os.makedirs(logdir, exist_ok=True)
    B.log(f"soak: {args.minutes} min per class, classes {args.classes}, load {B.loadavg()}")
    results = []
    for cls in [c.strip() for c in args.classes.split(",") if c.strip()]:
        try:
            results.append(soak(cls, args, logdir))
        except B.StartError as e:
            B.log(f"{cls}: did not start: {e}")
    text = report(results)
    print(text)
    B.log(f"soak: done, load {B.loadavg()}; logs in {logdir}")
    with open(os.path.join(args.results_dir, f"soak-{stamp}.json"), "w") as f:
        json.dump({"args": vars(args), "results": results}, f, indent=1)
    with open(os.path.join(args.results_dir, f"soak-{stamp}.txt"), "w") as f:
        f.write(text + "\n")
    bad = any(r["master_died"] or any(v["failed"] for v in r["by_kind"].values())
              for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
