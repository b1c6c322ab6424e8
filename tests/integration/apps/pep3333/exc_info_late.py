"""start_response with exc_info after the headers went out: start_response must re-raise the
exception, the generator lets it propagate, and the server can only cut the connection. /pid
answers with the serving pid (to check the worker survived)."""

import os
import sys
from wsgiref.validate import validator


def body(start_response):
    yield b"first chunk;"
    try:
        raise ValueError("late failure after the headers were sent")
    except ValueError:
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")],
                       sys.exc_info())
    yield b"must never be sent"


def app(environ, start_response):
    if environ["PATH_INFO"] == "/pid":
        out = str(os.getpid()).encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(out)))])
        return [out]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return body(start_response)


application = validator(app)
