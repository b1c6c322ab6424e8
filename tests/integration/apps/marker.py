"""Hello world that, when imported, appends the importing pid to the file named by
$ALICORN_TEST_MARKER. Tests use it to prove that nothing was forked (and no app loaded) when
a configuration is refused, and to see which process imported the app."""

import os

_marker = os.environ.get("ALICORN_TEST_MARKER")
if _marker:
    with open(_marker, "a") as f:
        f.write("%d\n" % os.getpid())

BODY = b"Hello, World!"


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(BODY)))])
    return [BODY]
