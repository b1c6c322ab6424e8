"""For the zero-loss tests (test_zero_loss_*.py): every request the app runs is written down.

    /r/<id>      appends "<id>\\n" to $ALICORN_LEDGER (one O_APPEND write, which survives a
                 kill -9 of the worker), then answers "<pid>"
    anything else  "<pid>"

The ledger tells a test whether a request whose response never arrived was run by the app (a
lost response: a failure) or never accepted (safe for the client to retry).
"""

import os

LEDGER = os.environ.get("ALICORN_LEDGER")


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if LEDGER and path.startswith("/r/"):
        fd = os.open(LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (path[3:] + "\n").encode())
        finally:
            os.close(fd)
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
