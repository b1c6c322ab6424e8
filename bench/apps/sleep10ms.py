"""Sleeps 10 ms per request, then answers "slept" (an I/O-bound request, e.g. a DB call).

Used by bench/gthread_sleep.py: with 2 workers x 8 threads the ideal is 16 / 0.010 s =
1600 requests per second, whatever the server's own overhead.
"""

import time

BODY = b"slept"
HEADERS = [
    ("Content-Type", "text/plain"),
    ("Content-Length", str(len(BODY))),
]


def app(environ, start_response):
    time.sleep(0.010)
    start_response("200 OK", HEADERS)
    return [BODY]


application = app
