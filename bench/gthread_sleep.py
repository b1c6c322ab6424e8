#!/usr/bin/python3
"""The gthread worker class under two kinds of load, on loopback, one server at a time.

sleep  An app that sleeps 10 ms per request (I/O-bound: a database or API call). 2 workers x
       8 threads, so the ideal is 2 * 8 / 0.010 s = 1600 requests per second whatever the
       server's own overhead. alicorn -k gthread versus gunicorn -k gthread, same flags.
cpu    An app that runs a pure-Python loop of about 1 ms per request (CPU-bound: the GIL never
       lets the threads overlap). alicorn -k gthread (2 x 8 threads) versus alicorn -k sync
       (2 workers): threads must not cost much when they cannot help (goal: gthread within
       10% of sync). The loop count is calibrated here to ~1 ms and passed to both servers.

wrk drives each server (64 keep-alive connections, 1 s warm-up, measured run with --latency).
Progress goes to stderr, the table to stdout and to bench/results/<timestamp>-gthread.json.

Usage: bench/gthread_sleep.py [--duration 5] [--parts sleep,cpu] [--connections 64]
                              [--threads 8] [--cpu-ms 1.0]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import benchlib as B  # noqa: E402

PARTS = ("sleep", "cpu")


def calibrate_loops(target_ms: float) -> tuple[int, float]:
    """Loop count of bench/apps/cpu1ms.work() that takes ~target_ms of CPU time here (process
    CPU time, best of a few runs, so that a busy machine does not inflate it)."""
    sys.path.insert(0, B.APPS_DIR)
    import cpu1ms  # noqa: E402  (the same code the servers run)
    n = 20000
    best = None
    for _ in range(3):
        runs = []
        for _ in range(15):
            t = time.process_time()
            cpu1ms.work(n)
            runs.append(time.process_time() - t)
        best = min(runs) * 1000.0
        n = max(1000, int(n * target_ms / best))
    t = time.process_time()
    for _ in range(10):
        cpu1ms.work(n)
    return n, (time.process_time() - t) * 100.0  # CPU ms per call


def check_body(expected):
    def check(status, headers, body):
        if status != 200:
            return f"status {status}"
        if not expected(body):
            return f"unexpected body {body[:40]!r}"
        return None
    return check


def run_one(name, argv, cwd, env, workers, path, check, args, logdir) -> dict:
    port = B.free_port()
    argv = [a.replace("@PORT@", str(port)) for a in argv]
    server = B.ServerProcess(name=name, argv=argv, cwd=cwd, env=env,
                             log_path=os.path.join(logdir, f"{name}.log"), workers=workers)
    res: dict = {"status": "n/a", "command": " ".join(argv)}
    url = f"http://{B.HOST}:{port}{path}"
    B.log(f"{name} (load {B.loadavg()})")
    try:
        first_failure = server.start_ready(port, path, check, args.start_timeout)
        if first_failure:
            res["first_start_failure"] = first_failure
        B.run_wrk(url, args.connections, args.warmup, args.wrk_threads, latency=False,
                  raw_path=os.path.join(logdir, f"{name}.warmup.txt"))
        w = B.run_wrk(url, args.connections, args.duration, args.wrk_threads,
                      raw_path=os.path.join(logdir, f"{name}.wrk.txt"))
        res.update({k: w[k] for k in ("rps", "p50_ms", "p99_ms", "requests", "errors")})
        if w["rps"] is not None and server.alive():
            res["status"] = "ok"
        else:
            res["reason"] = "no wrk result" if server.alive() else \
                f"died during the run: {server.log_tail()}"
        B.log(f"  {B.fmt_rps(res.get('rps'))} req/s, p99 {B.fmt_ms(res.get('p99_ms'))}")
    except B.StartError as e:
        res["reason"] = str(e)
        B.log(f"  n/a: {e}")
    except Exception as e:
        res["reason"] = f"{type(e).__name__}: {e}"
        B.log(f"  n/a: {res['reason']}")
    finally:
        server.stop()
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="gthread under I/O-bound and CPU-bound apps.")
    p.add_argument("--duration", type=float, default=5)
    p.add_argument("--warmup", type=float, default=1)
    p.add_argument("--parts", default="sleep,cpu", help="sleep,cpu (default: both)")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--wrk-threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=8, help="threads per gthread worker (8)")
    p.add_argument("--cpu-ms", type=float, default=1.0, help="CPU time per request (1.0 ms)")
    p.add_argument("--start-timeout", type=float, default=30)
    p.add_argument("--alicorn", default=os.environ.get(
        "ALICORN_BIN", os.path.join(B.ROOT, "build", "bin", "alicorn")))
    p.add_argument("--results-dir", default=os.path.join(B.BENCH_DIR, "results"))
    args = p.parse_args(argv)
    parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    if not parts or any(x not in PARTS for x in parts):
        p.error(f"--parts takes a comma-separated subset of {', '.join(PARTS)}")
    if args.duration < 1 or args.warmup < 1:
        p.error("--duration and --warmup need >= 1 s")

    B.install_signal_handlers()
    B.raise_nofile()
    if not B.which("wrk"):
        print("gthread_sleep.py: wrk not found (scripts/install-deps.sh --bench)",
              file=sys.stderr)
        return 2
    alicorn = os.path.abspath(args.alicorn)
    gunicorn = B.which("gunicorn", "/usr/bin/gunicorn")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    logdir = os.path.join(args.results_dir, stamp + "-gthread")
    os.makedirs(logdir, exist_ok=True)
    load_start = B.loadavg()
    started = time.strftime("%Y-%m-%d %H:%M:%S %z")
    B.log(f"gthread_sleep.py: load average at start {load_start}; results in {logdir}")

    w, t = str(args.workers), str(args.threads)
    bind = ["-b", f"{B.HOST}:@PORT@"]
    ideal = args.workers * args.threads / 0.010
    results: dict = {}
    cpu_loops = cpu_ms = None
    rows = []
    goal_rows = []

    def gthread_alicorn(module):
        return [alicorn, "-w", w, "-k", "gthread", "--threads", t, *bind,
                "--chdir", B.APPS_DIR, f"{module}:app"]

    def add_row(part, label, r, extra):
        ok = r.get("status") == "ok"
        rows.append([part, label, B.fmt_rps(r.get("rps")) if ok else "n/a",
                     B.fmt_ms(r.get("p99_ms")) if ok else "n/a", extra,
                     ("n/a: " + " ".join(r.get("reason", "").split())[:90]) if not ok else
                     (("wrk errors: " + B.errors_text(r["errors"])) if r.get("errors") else "")])

    try:
        if "sleep" in parts:
            env = B.clean_env()
            check = check_body(lambda b: b == b"slept")
            cases = [("alicorn-gthread-sleep", "alicorn gthread",
                      gthread_alicorn("sleep10ms") if os.access(alicorn, os.X_OK) else None,
                      f"no alicorn binary at {alicorn}"),
                     ("gunicorn-gthread-sleep", "gunicorn gthread",
                      [gunicorn, "-w", w, "-k", "gthread", "--threads", t, *bind,
                       "--chdir", B.APPS_DIR, "sleep10ms:app"] if gunicorn else None,
                      "gunicorn not installed")]
            for key, label, cmd, why in cases:
                r = run_one(key, cmd, B.APPS_DIR, env, args.workers, "/", check, args,
                            logdir) if cmd else {"status": "n/a", "reason": why}
                results[key] = r
                pct = f"{100 * r['rps'] / ideal:.0f}% of ideal" if r.get("rps") else "-"
                add_row("sleep 10 ms", f"{label} ({w}x{t})", r, pct)
            a = results["alicorn-gthread-sleep"].get("rps")
            g = results["gunicorn-gthread-sleep"].get("rps")
            goal_rows.append(["sleep: alicorn gthread near the ideal "
                              f"{ideal:,.0f} req/s (>= 90%)",
                              f"{100 * a / ideal:.0f}%" if a else "n/a",
                              "n/a" if not a else ("PASS" if a >= 0.9 * ideal else "MISS")])
            goal_rows.append(["sleep: alicorn gthread >= gunicorn gthread",
                              f"{a / g:.2f}x" if a and g else "n/a",
                              "n/a" if not (a and g) else ("PASS" if a >= g else "MISS")])
        if "cpu" in parts:
            cpu_loops, cpu_ms = calibrate_loops(args.cpu_ms)
            B.log(f"cpu app: {cpu_loops} loops ~ {cpu_ms:.2f} ms per request here")
            env = B.clean_env({"BENCH_CPU_LOOPS": str(cpu_loops)})
            check = check_body(lambda b: b.isdigit())
            have = os.access(alicorn, os.X_OK)
            cases = [("alicorn-gthread-cpu", f"alicorn gthread ({w}x{t})",
                      gthread_alicorn("cpu1ms")),
                     ("alicorn-sync-cpu", f"alicorn sync ({w})",
                      [alicorn, "-w", w, "-k", "sync", *bind, "--chdir", B.APPS_DIR,
                       "cpu1ms:app"])]
            for key, label, cmd in cases:
                r = run_one(key, cmd, B.APPS_DIR, env, args.workers, "/", check, args,
                            logdir) if have else {"status": "n/a",
                                                  "reason": f"no alicorn binary at {alicorn}"}
                results[key] = r
                add_row(f"cpu ~{cpu_ms:.1f} ms", label, r, "")
            a = results["alicorn-gthread-cpu"].get("rps")
            s = results["alicorn-sync-cpu"].get("rps")
            for row in rows:
                if row[1].startswith("alicorn gthread") and row[0].startswith("cpu") and a and s:
                    row[4] = f"{a / s:.2f}x sync"
            goal_rows.append(["cpu: alicorn gthread within 10% of alicorn sync",
                              f"{a / s:.2f}x" if a and s else "n/a",
                              "n/a" if not (a and s) else ("PASS" if a >= 0.9 * s else "MISS")])
    finally:
        B.kill_all_servers()

    load_end = B.loadavg()
    lines = [
        f"alicorn gthread_sleep.py  {started}",
        f"load average at start: {load_start}   at end: {load_end}   (cpus: {os.cpu_count()}; "
        "wrk runs on the same machine)",
        f"wrk -t{args.wrk_threads} -c{args.connections} -d{args.duration:g}s --latency after a "
        f"{args.warmup:g}s warm-up; {w} workers, {t} threads per gthread worker"
        + (f"; cpu app: {cpu_loops} loops ~ {cpu_ms:.2f} ms" if cpu_loops else ""),
        "",
        B.table(["app", "server", "req/s", "p99", "", "notes"], rows, right={2, 3}),
        "",
        "== goals (informational: benchmarks are not tests)",
        B.table(["goal", "value", "result"], goal_rows),
        "",
        f"JSON: {logdir}.json",
    ]
    report = "\n".join(lines)
    print(report, flush=True)
    with open(logdir + ".json", "w") as f:
        json.dump({"started": started, "loadavg_start": load_start, "loadavg_end": load_end,
                   "settings": vars(args), "ideal_sleep_rps": ideal, "cpu_loops": cpu_loops,
                   "cpu_ms": cpu_ms, "results": results,
                   "goals": [dict(zip(("goal", "value", "result"), g)) for g in goal_rows]},
                  f, indent=2)
    with open(logdir + ".txt", "w") as f:
        f.write(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
