#!/usr/bin/python3
"""The framework's own cost per request, in-process: no server, no socket.

Calls the WSGI app directly with a PEP 3333 environ like a server builds it for
`GET <path> HTTP/1.1` (fresh dict and wsgi.input per call), consumes the body and calls
close(), N times per round; prints JSON {"app": ..., "us_per_call": median CPU µs, ...}.
bench/run.py subtracts this from a server's CPU per request: "server overhead".

Usage: bench/inproc.py flask|django|hello [--calls 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time

sys.dont_write_bytecode = True
BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)

APPS = {
    "flask": (os.path.join(ROOT, "examples"), "flask_app", "/json", b"Hello from Flask!"),
    "django": (os.path.join(BENCH_DIR, "apps"), "django_app", "/json", b"Hello from Django!"),
    "hello": (os.path.join(ROOT, "examples"), "hello", "/", b"Hello, World!"),
}


def environ_for(path: str) -> dict:
    return {
        "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "40000", "RAW_URI": path,
        "HTTP_HOST": "127.0.0.1:8000", "HTTP_USER_AGENT": "wrk", "HTTP_ACCEPT": "*/*",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
        "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("app", choices=sorted(APPS))
    p.add_argument("--calls", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    directory, module, path, expect = APPS[a.app]
    sys.path.insert(0, directory)
    app = getattr(__import__(module), "app")
    base = environ_for(path)
    status_seen = []

    def start_response(status, headers, exc_info=None):
        status_seen.append(status)
        return lambda data: None

    def call():
        env = dict(base)
        env["wsgi.input"] = io.BytesIO(b"")
        body = app(env, start_response)
        try:
            out = b"".join(body)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        return out

    first = call()
    if expect not in first or not status_seen[0].startswith("200"):
        print(f"inproc: unexpected answer {status_seen[0]!r} {first[:60]!r}", file=sys.stderr)
        return 1
    for _ in range(min(2000, a.calls)):  # warm up
        call()
    per_call = []
    for _ in range(a.rounds):
        t0 = time.process_time()
        for _ in range(a.calls):
            call()
        per_call.append((time.process_time() - t0) * 1e6 / a.calls)
    print(json.dumps({"app": a.app, "path": path, "calls": a.calls, "rounds": a.rounds,
                      "us_per_call": statistics.median(per_call),
                      "us_per_call_rounds": [round(x, 2) for x in per_call]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
