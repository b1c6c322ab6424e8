"""Hello world that names the worker process: the X-Worker header carries its pid.

Used by bench/run.py ("workers4" scenario) to count the share of requests per worker.
"""

import os

BODY = b"Hello, World!"


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(BODY))),
                              ("X-Worker", str(os.getpid()))])
    return [BODY]


application = app
