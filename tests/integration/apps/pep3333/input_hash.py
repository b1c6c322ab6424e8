"""Reads wsgi.input in 64 KiB blocks until b"" and answers with the length and SHA-256."""

import hashlib
import json
from wsgiref.validate import validator


def app(environ, start_response):
    inp = environ["wsgi.input"]
    h = hashlib.sha256()
    total = 0
    while True:
        block = inp.read(65536)
        if not block:
            break
        h.update(block)
        total += len(block)
    out = json.dumps({"length": total, "sha256": h.hexdigest(),
                      "content_length": environ.get("CONTENT_LENGTH")}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(out)))])
    return [out]


application = validator(app)
