"""A header value that is not latin-1 (a snowman): not representable on the wire (500)."""

from wsgiref.validate import validator


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Snowman", "caf\u00e9 \u2603")])
    return [b"should not be sent"]


application = validator(app)
