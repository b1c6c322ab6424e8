"""A body the server must drop for HEAD:
  /length     1234 bytes with Content-Length
  /generator  a generator without Content-Length"""

from wsgiref.validate import validator

BODY = b"h" * 1234


def gen():
    yield b"generated body, part 1;"
    yield b"generated body, part 2"


def app(environ, start_response):
    if environ["PATH_INFO"] == "/generator":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return gen()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(BODY)))])
    return [BODY]


application = validator(app)
