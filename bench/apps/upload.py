"""Reads the whole request body (in 64 KiB reads) and answers with its length in bytes.

Used by bench/run.py ("upload" scenario: a 10 MB POST); the same module for every server.
"""

BLOCK = 64 * 1024


def app(environ, start_response):
    stream = environ["wsgi.input"]
    total = 0
    while True:
        block = stream.read(BLOCK)
        if not block:
            break
        total += len(block)
    body = str(total).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


application = app
