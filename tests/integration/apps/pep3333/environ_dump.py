"""environ: answers with a JSON view of the environ as the app saw it. Every CGI variable
(keys without a dot) is reported as is (the validator has already checked they are str); the
wsgi.* entries are reported by type and value. With ?errors=TEXT the app writes TEXT plus a
newline to wsgi.errors and flushes it."""

import json
import os
from urllib.parse import parse_qs
from wsgiref.validate import validator


def app(environ, start_response):
    doc = {k: v for k, v in environ.items() if "." not in k}
    doc["wsgi.version"] = repr(environ.get("wsgi.version"))
    doc["wsgi.version.type"] = type(environ.get("wsgi.version")).__name__
    doc["wsgi.url_scheme"] = environ.get("wsgi.url_scheme")
    for key in ("wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once",
                "wsgi.input_terminated"):
        value = environ.get(key, "<missing>")
        doc[key] = value if isinstance(value, bool) else repr(value)
    doc["wsgi.input.has_read"] = hasattr(environ.get("wsgi.input"), "read")
    doc["wsgi.errors.has_write"] = hasattr(environ.get("wsgi.errors"), "write")
    wrapper = environ.get("wsgi.file_wrapper")
    doc["wsgi.file_wrapper.present"] = wrapper is not None
    doc["wsgi.file_wrapper.callable"] = callable(wrapper)
    doc["pid"] = os.getpid()
    text = parse_qs(environ.get("QUERY_STRING", "")).get("errors")
    if text:
        environ["wsgi.errors"].write(text[0] + "\n")
        environ["wsgi.errors"].flush()
    out = json.dumps(doc).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(out)))])
    return [out]


application = validator(app)
