"""Sleeps for ?s=SECONDS (default 1) before answering "slept <pid>"."""

import os
import time
from urllib.parse import parse_qs


def app(environ, start_response):
    seconds = float(parse_qs(environ.get("QUERY_STRING", "")).get("s", ["1"])[0])
    time.sleep(seconds)
    body = ("slept %d" % os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
