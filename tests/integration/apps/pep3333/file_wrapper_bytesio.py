"""wsgi.file_wrapper over an in-memory file (io.BytesIO, no file descriptor): the server has to
read it in blocks. The environ is checked with wsgiref.validate.check_environ.
  /file?path=P   the contents of P, loaded into a BytesIO, through the file wrapper (block 4096)
  /closed        JSON list, one per BytesIO served: {"closed": bool, "reads": [size args]}"""

import io
import json
from urllib.parse import parse_qs
from wsgiref.validate import check_environ

SERVED = []


class RecordingBytesIO(io.BytesIO):
    def __init__(self, data):
        super().__init__(data)
        self.reads = []

    def read(self, *args):
        self.reads.append(args[0] if args else "no-argument")
        return super().read(*args)


def application(environ, start_response):
    check_environ(environ)
    if environ["PATH_INFO"] == "/closed":
        out = json.dumps([{"closed": b.closed, "reads": b.reads} for b in SERVED]).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(out)))])
        return [out]
    path = parse_qs(environ["QUERY_STRING"])["path"][0]
    with open(path, "rb") as f:
        buf = RecordingBytesIO(f.read())
    SERVED.append(buf)
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](buf, 4096)
