"""A header value containing CR LF (response splitting): the server must refuse it (500) and
never emit the injected header. Not wrapped in the validator, which would refuse it itself."""


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("X-Split", "harmless\r\nX-Injected: yes")])
    return [b"should not be sent"]
