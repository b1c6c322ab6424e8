"""For the arbiter operations tests (test_arbiter_ops.py).

    /            "<pid>" of the worker serving the request
    /sleep?s=N   sleeps N seconds, then "slept <pid>"
    /exit?code=N the worker process exits at once with code N (no response)
"""

import os
import time
from urllib.parse import parse_qs


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if path == "/exit":
        os._exit(int(query.get("code", ["7"])[0]))
    if path == "/sleep":
        time.sleep(float(query.get("s", ["1"])[0]))
        body = ("slept %d" % os.getpid()).encode()
    else:
        body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
