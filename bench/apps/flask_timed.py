"""examples/flask_app.py wrapped in a timer: how long Flask itself takes *inside* a server.

Each request to any path but /__stats runs the Flask app and adds its thread CPU time
(time.thread_time_ns, the body joined and close() called inside the timed span) to per-process
totals; GET /__stats answers {"n": requests, "ns": total, "pid": ...} for the process that
serves it. Serve it with one worker (-w 1) so /__stats sees every request, e.g.

    alicorn -w 1 -k uv -b 127.0.0.1:8000 --chdir bench/apps flask_timed:app
    wrk -t1 -c32 -d6s http://127.0.0.1:8000/json; curl http://127.0.0.1:8000/__stats

and compare ns/n with the worker's CPU per request (utime+stime from /proc) and with
bench/inproc.py flask: see docs/performance.md ("Flask inside the server").
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "examples"))
from flask_app import app as flask_app  # noqa: E402

stats = {"n": 0, "ns": 0}


def app(environ, start_response):
    if environ["PATH_INFO"] == "/__stats":
        body = json.dumps(dict(stats, pid=os.getpid())).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    t0 = time.thread_time_ns()
    body = flask_app(environ, start_response)
    try:
        out = b"".join(body)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    stats["ns"] += time.thread_time_ns() - t0
    stats["n"] += 1
    return [out]


application = app
