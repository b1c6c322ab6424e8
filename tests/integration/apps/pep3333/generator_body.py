"""A generator result without Content-Length: chunks 0..N-1 of increasing size (?n=N)."""

from urllib.parse import parse_qs
from wsgiref.validate import validator


def chunks(n):
    for i in range(n):
        yield (b"%d:" % i) + b"g" * (i * 100) + b";"


def app(environ, start_response):
    n = int(parse_qs(environ["QUERY_STRING"]).get("n", ["20"])[0])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return chunks(n)


def expected(n=20):
    return b"".join(chunks(n))


application = validator(app)
