"""A result object with close(): close() appends "closed TAG" to the file named by $MARKER.
The path picks the body (?tag=TAG names the request):
  /ok           three chunks
  /raise-first  raises on the first next() (before anything was sent)
  /raise-later  one chunk, then raises
  /forever      1 KiB every 20 ms, forever (the client disconnects)"""

import os
import time
from urllib.parse import parse_qs
from wsgiref.validate import validator


def record(line):
    with open(os.environ["MARKER"], "a") as f:
        f.write(line + "\n")


class Body:
    def __init__(self, mode, tag):
        self.mode = mode
        self.tag = tag
        self.n = 0

    def __iter__(self):
        return self

    def __next__(self):
        self.n += 1
        if self.mode == "/ok":
            if self.n <= 3:
                return b"chunk%d;" % self.n
            raise StopIteration
        if self.mode == "/raise-first":
            raise RuntimeError("close_called: raising on the first chunk")
        if self.mode == "/raise-later":
            if self.n == 1:
                return b"first;"
            raise RuntimeError("close_called: raising after the first chunk")
        if self.mode == "/forever":
            if self.n > 1:
                time.sleep(0.02)
            return b"f" * 1024
        raise StopIteration

    def close(self):
        record("closed %s" % self.tag)


def app(environ, start_response):
    tag = parse_qs(environ["QUERY_STRING"]).get("tag", ["untagged"])[0]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Body(environ["PATH_INFO"], tag)


application = validator(app)
