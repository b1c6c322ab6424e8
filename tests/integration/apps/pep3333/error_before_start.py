"""/boom raises before start_response (500, traceback in the error log); /pid answers with the
serving pid."""

import os
from wsgiref.validate import validator


def app(environ, start_response):
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("error_before_start: boom before the response started")
    out = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(out)))])
    return [out]


application = validator(app)
