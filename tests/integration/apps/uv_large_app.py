"""Routes for the large-transfer tests of the uv worker (tests/integration/test_uv_large.py).

    /                     "Hello, World!"
    /upload               reads wsgi.input in 64 KB reads; answers "<sha256 hex> <length>"
    /download?n=N         a generator of N chunks of 64 KB (chunk i is block(i), see below),
                          with a Content-Length
    /file?path=P          the file P through wsgi.file_wrapper (sendfile on the uv worker)
    /endless              a generator that never ends; its close() appends "endless" to the
                          file named by $MARKER (set with -e MARKER=...)
    /file-marked?path=P   like /file, but the file object's close() appends "file" to $MARKER
"""

import hashlib
import os
from urllib.parse import parse_qs

CHUNK = 64 * 1024
_BASE = bytes(range(256)) * (CHUNK // 256)


def block(i):
    """The i-th download chunk: a fixed 64 KB pattern stamped with its index."""
    return i.to_bytes(8, "big") + _BASE[8:]


def _text(start_response, body, status="200 OK"):
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _mark(what):
    marker = os.environ.get("MARKER")
    if marker:
        with open(marker, "a") as f:
            f.write(what + "\n")


class Endless:
    def __init__(self):
        self.chunk = b"e" * CHUNK

    def __iter__(self):
        return self

    def __next__(self):
        return self.chunk

    def close(self):
        _mark("endless")


class MarkedFile:
    """A real file (fileno() and tell() work, so the uv worker sendfiles it) whose close()
    leaves a mark. Not an io class: garbage collection alone never calls close(), so the mark
    proves the server closed the iterable."""

    def __init__(self, name):
        self.f = open(name, "rb")

    def fileno(self):
        return self.f.fileno()

    def tell(self):
        return self.f.tell()

    def read(self, n=-1):
        return self.f.read(n)

    def close(self):
        if not self.f.closed:
            _mark("file")
        self.f.close()


def app(environ, start_response):
    path = environ["PATH_INFO"]
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if path == "/":
        return _text(start_response, b"Hello, World!")
    if path == "/upload":
        h = hashlib.sha256()
        total = 0
        stream = environ["wsgi.input"]
        while True:
            data = stream.read(CHUNK)
            if not data:
                break
            h.update(data)
            total += len(data)
        return _text(start_response, ("%s %d" % (h.hexdigest(), total)).encode())
    if path == "/download":
        n = int(query["n"][0])
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(n * CHUNK))])
        return (block(i) for i in range(n))
    if path in ("/file", "/file-marked"):
        name = query["path"][0]
        f = MarkedFile(name) if path == "/file-marked" else open(name, "rb")
        size = os.fstat(f.fileno()).st_size
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(size))])
        return environ["wsgi.file_wrapper"](f, CHUNK)
    if path == "/endless":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return Endless()
    return _text(start_response, b"not found", "404 Not Found")
