"""Echo app for the HTTP/1.1 conformance suite (tests/integration/test_http_conformance.py).

Default: 200 with a JSON body describing the request as the app saw it:
    method   REQUEST_METHOD
    path     PATH_INFO (the decoded path, a latin-1 str)
    query    QUERY_STRING
    raw_uri  RAW_URI (the request target exactly as sent)
    protocol SERVER_PROTOCOL
    headers  every HTTP_* and CONTENT_* environ entry
    body     everything read from wsgi.input, decoded as latin-1

Special paths (chosen by PATH_INFO):
    /stream  a generator body with no Content-Length (the server picks the framing:
             chunked on HTTP/1.1, close-delimited on HTTP/1.0)
"""

import json

STREAM_PARTS = [b"part-one;", b"part-two;", b"part-three"]


def _stream():
    for part in STREAM_PARTS:
        yield part


def app(environ, start_response):
    body = environ["wsgi.input"].read()
    path = environ.get("PATH_INFO", "")
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _stream()
    doc = {
        "method": environ.get("REQUEST_METHOD"),
        "path": path,
        "query": environ.get("QUERY_STRING"),
        "raw_uri": environ.get("RAW_URI"),
        "protocol": environ.get("SERVER_PROTOCOL"),
        "headers": {k: v for k, v in environ.items()
                    if k.startswith("HTTP_") or k.startswith("CONTENT_")},
        "body": body.decode("latin-1"),
    }
    out = json.dumps(doc).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(out)))])
    return [out]


application = app
