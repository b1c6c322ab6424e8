"""/204 and /304 answered with a body the server must not send (no Content-Type: the validator
refuses one on these statuses)."""

from wsgiref.validate import validator


def app(environ, start_response):
    if environ["PATH_INFO"] == "/304":
        start_response("304 Not Modified", [("ETag", '"v1"')])
    else:
        start_response("204 No Content", [("X-Empty", "yes")])
    return [b"this body must not be sent"]


application = validator(app)
