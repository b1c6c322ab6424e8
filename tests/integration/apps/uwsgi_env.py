"""The request as the app saw it, as JSON: the environ's str values, the body's length and
SHA-256 (tests/integration/test_uwsgi.py). /stream answers without a Content-Length, in pieces."""

import hashlib
import json


def app(environ, start_response):
    body = environ["wsgi.input"].read()
    if environ.get("PATH_INFO") == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iter([b"part1-", b"part2-", b"end"])
    doc = {k: v for k, v in environ.items() if isinstance(v, str)}
    doc["wsgi.url_scheme"] = environ["wsgi.url_scheme"]
    doc["body_length"] = len(body)
    doc["body_sha256"] = hashlib.sha256(body).hexdigest()
    out = json.dumps(doc).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(out)))])
    return [out]
