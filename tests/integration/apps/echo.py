"""Answers with a JSON view of the request as the app saw it: the CGI variables of the
environ, the HTTP_* headers, and the body (read whole from wsgi.input)."""

import hashlib
import json

KEYS = ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_PROTOCOL",
        "CONTENT_TYPE", "CONTENT_LENGTH", "SERVER_NAME", "SERVER_PORT", "REMOTE_ADDR",
        "wsgi.url_scheme")


def app(environ, start_response):
    body = environ["wsgi.input"].read()
    doc = {key: environ.get(key) for key in KEYS}
    doc["headers"] = {k: v for k, v in environ.items() if k.startswith("HTTP_")}
    doc["body"] = body.decode("latin-1")
    doc["body_length"] = len(body)
    doc["body_sha256"] = hashlib.sha256(body).hexdigest()
    out = json.dumps(doc).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(out)))])
    return [out]


application = app
