"""For test_ops_metrics.py: an app that leaks memory on purpose.

    /            keeps 256 KiB more per request (written, so it is resident), sleeps 10 ms so
                 a load client cannot outrun the master's memory sampling, answers "<pid>"
    /status?code=N  answers with that status (no leak)
    /log         logs a warning to stderr through the app (no leak)
"""

import os
import time
from urllib.parse import parse_qs

_kept = []


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/status":
        code = int(parse_qs(environ.get("QUERY_STRING", "")).get("code", ["200"])[0])
        body = b"status %d" % code
        start_response("%d Whatever" % code, [("Content-Length", str(len(body)))])
        return [body]
    _kept.append(b"x" * (256 * 1024))
    time.sleep(0.01)
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
