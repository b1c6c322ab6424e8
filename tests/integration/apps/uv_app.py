"""Routes for the uv worker tests (tests/integration/test_uv_worker.py).

    /                  "Hello, World!"
    /path/...          the request path, as text (to check pipelined answers come in order)
    /peer              "<pid> <REMOTE_PORT>": which process and which client connection served it
    /echo              the request body, whatever the method
    /slow?s=SECONDS    sleeps, then answers "slept"
    /stream?n=N&size=S a generator of N chunks of S bytes (no Content-Length: chunked)
    /endless           a generator that never ends; its close() writes the file named by
                       ?marker=PATH, so a test can see the server closed it
"""

import os
import time
from urllib.parse import parse_qs


def _text(start_response, body, status="200 OK"):
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


class Endless:
    def __init__(self, marker, size):
        self.marker = marker
        self.chunk = b"e" * size

    def __iter__(self):
        return self

    def __next__(self):
        return self.chunk

    def close(self):
        if self.marker:
            with open(self.marker, "w") as f:
                f.write("closed")


def app(environ, start_response):
    path = environ["PATH_INFO"]
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if path == "/":
        return _text(start_response, b"Hello, World!")
    if path.startswith("/path/"):
        return _text(start_response, path.encode())
    if path == "/peer":
        return _text(start_response, ("%d %s" % (os.getpid(), environ["REMOTE_PORT"])).encode())
    if path == "/echo":
        return _text(start_response, environ["wsgi.input"].read())
    if path == "/slow":
        time.sleep(float(query.get("s", ["1"])[0]))
        return _text(start_response, b"slept")
    if path == "/stream":
        n = int(query.get("n", ["100"])[0])
        size = int(query.get("size", ["100"])[0])
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (bytes([65 + i % 26]) * size for i in range(n))
    if path == "/endless":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return Endless(query.get("marker", [""])[0], int(query.get("size", ["65536"])[0]))
    return _text(start_response, b"not found", "404 Not Found")
