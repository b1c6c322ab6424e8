"""The app promises Content-Length: 10 and gives more; only 10 bytes may go out:
  /list       [b"0123456789EXTRA"]
  /generator  b"01234", b"56789EX", b"TRA" """

from wsgiref.validate import validator


def gen():
    yield b"01234"
    yield b"56789EX"
    yield b"TRA"


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
    if environ["PATH_INFO"] == "/generator":
        return gen()
    return [b"0123456789EXTRA"]


application = validator(app)
