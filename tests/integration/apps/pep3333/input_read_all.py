"""wsgi.input.read() and read(-1) (whole body), then two more reads that must give b"".
Not wrapped in the validator: its input wrapper refuses read() without a size.
  /read     read()
  /read-m1  read(-1)"""

import json


def application(environ, start_response):
    inp = environ["wsgi.input"]
    if environ["PATH_INFO"] == "/read-m1":
        body = inp.read(-1)
    else:
        body = inp.read()
    after = [inp.read(), inp.read(10)]
    doc = {"body": body.decode("latin-1"), "type": type(body).__name__,
           "after": [a.decode("latin-1") for a in after]}
    out = json.dumps(doc).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(out)))])
    return [out]
