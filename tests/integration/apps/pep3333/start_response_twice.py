"""start_response called twice without exc_info: an application error (the server answers
500)."""

from wsgiref.validate import validator


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    start_response("201 Created", [("Content-Type", "text/plain")])
    return [b"should not be sent"]


application = validator(app)
