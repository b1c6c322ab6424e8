"""The smallest WSGI application: 200 "Hello, World!" as text/plain.

Serve it with either server, from this folder:

    alicorn -w 2 -b 127.0.0.1:8000 hello:app
    gunicorn -w 2 -b 127.0.0.1:8000 hello:app

This is also the app the benchmarks in bench/ use.
"""

BODY = b"Hello, World!"
HEADERS = [
    ("Content-Type", "text/plain"),
    ("Content-Length", str(len(BODY))),
]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]


# Gunicorn's (and alicorn's) default attribute name when only the module is given.
application = app
