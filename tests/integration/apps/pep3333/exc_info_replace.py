"""start_response with exc_info before anything was sent: the second call replaces the status
and headers of the first (PEP 3333), so the client sees 503 and X-Which: second."""

import sys
from wsgiref.validate import validator


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Which", "first")])
    try:
        raise ValueError("the app changed its mind")
    except ValueError:
        start_response("503 Service Unavailable",
                       [("Content-Type", "text/plain"), ("X-Which", "second")], sys.exc_info())
    return [b"second response"]


application = validator(app)
