"""The legacy write() callable: bytes written through it come before the iterable's bytes."""

from wsgiref.validate import validator


def app(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"from-write-1;")
    write(b"from-write-2;")
    return [b"from-iterable-1;", b"from-iterable-2"]


application = validator(app)
