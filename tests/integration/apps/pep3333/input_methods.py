"""wsgi.input through the validator (which allows read(size), readline(), readline(size),
readlines() and iteration). The path names the method; the answer is JSON:
  {"parts": [each piece returned, as latin-1 text], "after": [two more reads past the end]}
  /read-n?n=N     read(N) until b""
  /readline       readline() until b""
  /readline-n?n=N readline(N) until b""
  /readlines      readlines()
  /iter           list(iter(wsgi.input))
  /read-past      read(len + 1000) where len is CONTENT_LENGTH (or 1 MiB when absent)"""

import json
from urllib.parse import parse_qs
from wsgiref.validate import validator


def until_empty(fn):
    parts = []
    for _ in range(100000):
        piece = fn()
        if not piece:
            break
        parts.append(piece)
    return parts


def app(environ, start_response):
    inp = environ["wsgi.input"]
    path = environ["PATH_INFO"]
    n = int(parse_qs(environ["QUERY_STRING"]).get("n", ["4"])[0])
    if path == "/read-n":
        parts = until_empty(lambda: inp.read(n))
    elif path == "/readline":
        parts = until_empty(inp.readline)
    elif path == "/readline-n":
        parts = until_empty(lambda: inp.readline(n))
    elif path == "/readlines":
        parts = inp.readlines()
    elif path == "/iter":
        parts = list(inp)
    elif path == "/read-past":
        length = int(environ.get("CONTENT_LENGTH") or 1048576)
        parts = [inp.read(length + 1000)]
    else:
        parts = []
    after = [inp.read(10), inp.readline()]
    doc = {"parts": [p.decode("latin-1") for p in parts],
           "types": sorted({type(p).__name__ for p in parts + after}),
           "after": [p.decode("latin-1") for p in after]}
    out = json.dumps(doc).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(out)))])
    return [out]


application = validator(app)
