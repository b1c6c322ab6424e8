"""The app of bench/soak.py: one module, a few routes.

  /         13-byte hello
  /upload   reads the whole body in 64 KiB reads, answers its length
  /big      4 MiB in 64 KiB pieces (the soak's clients hang up part way)
"""

import upload  # bench/apps/upload.py: reads the body in 64 KiB reads, answers its length

BLOCK = 64 * 1024
HELLO = b"Hello, World!"
PIECE = b"x" * BLOCK
BIG_PIECES = 64


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/upload":
        return upload.app(environ, start_response)
    if path == "/big":
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(BLOCK * BIG_PIECES))])
        return (PIECE for _ in range(BIG_PIECES))
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(HELLO)))])
    return [HELLO]


application = app
