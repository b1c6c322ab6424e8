"""An app for the gthread worker tests. Routes (GET unless noted):

    /info          JSON: pid, REMOTE_PORT, PATH_INFO, wsgi.multithread/multiprocess, thread id
    /sleep?s=SEC   sleeps SEC seconds (default 0.5), then JSON like /info plus "slept"
    /spin?s=SEC    computes for SEC seconds holding the GIL (no I/O), JSON like /sleep
    /echo  (POST)  the request body, read whole from wsgi.input, as the response body
    /stream?n=N    N chunks "chunk <i>\\n" from a generator (no Content-Length: chunked)
    /file?path=P   the file at P through wsgi.file_wrapper (the server may use sendfile)
    /local         JSON: a counter kept in threading.local, and the thread id
    anything else  JSON like /info
"""

import json
import os
import threading
import time
from urllib.parse import parse_qs


def _info(environ):
    return {
        "pid": os.getpid(),
        "path": environ.get("PATH_INFO"),
        "remote_port": environ.get("REMOTE_PORT"),
        "multithread": environ.get("wsgi.multithread"),
        "multiprocess": environ.get("wsgi.multiprocess"),
        "thread": threading.get_ident(),
    }


def _json(start_response, doc, status="200 OK"):
    body = json.dumps(doc).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


_local = threading.local()


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if path == "/sleep":
        seconds = float(query.get("s", ["0.5"])[0])
        started = time.monotonic()
        time.sleep(seconds)
        doc = _info(environ)
        doc["slept"] = time.monotonic() - started
        doc["began"], doc["ended"] = started, time.monotonic()  # CLOCK_MONOTONIC: one per machine
        return _json(start_response, doc)
    if path == "/spin":
        seconds = float(query.get("s", ["0.5"])[0])
        started = time.monotonic()
        n = 0
        while time.monotonic() - started < seconds:
            n += sum(range(1000))  # pure Python: the GIL is held but for its 5 ms switches
        doc = _info(environ)
        doc["began"], doc["ended"] = started, time.monotonic()
        return _json(start_response, doc)
    if path == "/echo":
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if path == "/stream":
        n = int(query.get("n", ["3"])[0])

        def chunks():
            for i in range(n):
                yield ("chunk %d\n" % i).encode()

        start_response("200 OK", [("Content-Type", "text/plain")])
        return chunks()
    if path == "/file":
        f = open(query["path"][0], "rb")
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](f, 32768)
    if path == "/local":
        _local.n = getattr(_local, "n", 0) + 1
        return _json(start_response, {"n": _local.n, "thread": threading.get_ident()})
    return _json(start_response, _info(environ))


application = app
