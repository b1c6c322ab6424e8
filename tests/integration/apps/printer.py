"""For test_ops_logging.py: prints to stdout and stderr on every request."""

import os
import sys


def app(environ, start_response):
    print("printed by the app in %d" % os.getpid(), flush=True)
    print("stderr of the app", file=sys.stderr, flush=True)
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]
