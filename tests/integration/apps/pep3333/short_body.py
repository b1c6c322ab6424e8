"""The app promises Content-Length: 100 and gives 40 bytes:
  /list       as a list
  /generator  as a generator of 4 x 10 bytes"""

from wsgiref.validate import validator


def gen():
    for i in range(4):
        yield b"%d" % i * 10


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "100")])
    if environ["PATH_INFO"] == "/generator":
        return gen()
    return [b"s" * 40]


application = validator(app)
