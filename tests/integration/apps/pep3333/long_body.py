"""The app promises Content-Length: 10 and gives more; only 10 bytes may go out:
  /list       [b"0123456789EXTRA"]
  /generator  b"01234", b"56789EX", b"TRA"
  /exact      b"01234", b"56789", then (after its last yield) notes that it ran to the end
  /endless    b"0123456789" forever (the server must stop at the Content-Length)
  /finished   JSON: how many /exact generators ran to their end, how many /endless closed"""

import itertools
import json

from wsgiref.validate import validator


def gen():
    yield b"01234"
    yield b"56789EX"
    yield b"TRA"


STATE = {"exact_finished": 0, "endless_closed": 0}


def exact():
    yield b"01234"
    yield b"56789"
    STATE["exact_finished"] += 1  # code after the last yield: the server asked once more


def endless():
    try:
        for _ in itertools.count():
            yield b"0123456789"
    finally:
        STATE["endless_closed"] += 1


def app(environ, start_response):
    if environ["PATH_INFO"] == "/finished":
        out = json.dumps(STATE).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(out)))])
        return [out]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
    if environ["PATH_INFO"] == "/generator":
        return gen()
    if environ["PATH_INFO"] == "/exact":
        return exact()
    if environ["PATH_INFO"] == "/endless":
        return endless()
    return [b"0123456789EXTRA"]


application = validator(app)
