"""wsgi.file_wrapper over a real file (open(path, "rb")), returned as is so the server can
use sendfile. The environ is still checked with wsgiref.validate.check_environ.
  /file?path=P[&cl=1][&offset=N][&length=N]
                        the file, with Content-Length set by the app to the file's size when
                        cl=1, or to N with length=N; offset=N seeks there first (what is left
                        of the file from N is the body, cut to the Content-Length)
  /closed               JSON list: for each file served so far, whether it was closed"""

import json
import os
from urllib.parse import parse_qs
from wsgiref.validate import check_environ

OPENED = []  # keeps the files alive so only the server can close them


def application(environ, start_response):
    check_environ(environ)
    qs = parse_qs(environ["QUERY_STRING"])
    if environ["PATH_INFO"] == "/closed":
        out = json.dumps([f.closed for f in OPENED]).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(out)))])
        return [out]
    path = qs["path"][0]
    f = open(path, "rb")
    OPENED.append(f)
    if "offset" in qs:
        f.seek(int(qs["offset"][0]))
    headers = [("Content-Type", "application/octet-stream")]
    if qs.get("cl") == ["1"]:
        headers.append(("Content-Length", str(os.path.getsize(path))))
    elif "length" in qs:
        headers.append(("Content-Length", qs["length"][0]))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](f, 32768)
