"""A 64 KiB response: one bytes object in a list, with Content-Length.

Used by bench/compare.py ("64k" app); the same module is served by every Python server.
"""

BODY = b"x" * 65536
HEADERS = [
    ("Content-Type", "application/octet-stream"),
    ("Content-Length", str(len(BODY))),
]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]


application = app
