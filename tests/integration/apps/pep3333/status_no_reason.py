"""A status without a reason phrase ("200"): PEP 3333 requires one (500). Not wrapped in the
validator, which only warns about it."""


def application(environ, start_response):
    start_response("200", [("Content-Type", "text/plain")])
    return [b"should not be sent"]
