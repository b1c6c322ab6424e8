"""A CPU-bound request: a pure-Python loop (about 1 ms on the bench machine), holding the GIL.

Used by bench/gthread_sleep.py to compare the gthread and sync worker classes when threads
cannot overlap. The loop count is $BENCH_CPU_LOOPS (gthread_sleep.py calibrates it to ~1 ms
and passes the same value to every server), default 20000.
"""

import os

LOOPS = int(os.environ.get("BENCH_CPU_LOOPS", "20000"))
HEADERS = [("Content-Type", "text/plain")]


def work(loops=LOOPS):
    total = 0
    for i in range(loops):
        total += i * i % 7
    return total


def app(environ, start_response):
    body = str(work()).encode()
    start_response("200 OK", HEADERS + [("Content-Length", str(len(body)))])
    return [body]


application = app
