"""/boom sends the headers and a first chunk, then raises (the connection must be cut);
/pid answers with the serving pid."""

import os
from wsgiref.validate import validator


def body():
    yield b"partial body;"
    raise RuntimeError("error_after_start: boom after the headers went out")


def app(environ, start_response):
    if environ["PATH_INFO"] == "/boom":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body()
    out = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(out)))])
    return [out]


application = validator(app)
