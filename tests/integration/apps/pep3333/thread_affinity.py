"""The response iterable is advanced in the same thread, and the same context (contextvars),
as the application call, as Gunicorn's workers do. Flask's stream_with_context and any
thread-local or contextvar state set by the app (Django's, for one) depend on it. The app sets a
threading.local and a ContextVar, then its generator reports, at each step, whether it runs on
the calling thread and still sees both; the last chunk is that report as JSON."""

import contextvars
import json
import threading
from wsgiref.validate import validator

LOCAL = threading.local()
VAR = contextvars.ContextVar("alicorn_test_var", default=None)


def body(token, caller):
    seen = []
    for i in range(5):
        seen.append({"same_thread": threading.get_ident() == caller,
                     "local": getattr(LOCAL, "token", None) == token,
                     "contextvar": VAR.get() == token})
        yield b" " * 1024  # padding chunks, so the server pulls several times
    yield json.dumps(seen).encode()


def app(environ, start_response):
    token = environ["QUERY_STRING"] or "t"
    LOCAL.token = token
    VAR.set(token)
    start_response("200 OK", [("Content-Type", "application/json")])
    return body(token, threading.get_ident())


application = validator(app)
