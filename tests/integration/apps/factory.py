"""Application factories, for the `module:factory()` and `module:factory(args)` app specs.
There is deliberately no `app` or `application` attribute here."""


def _make(body):
    def wsgi(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    return wsgi


def create_app():
    return _make(b"Hello from the factory!")


def make_app(greeting, punctuation="!"):
    return _make(("%s from the factory%s" % (greeting, punctuation)).encode())
