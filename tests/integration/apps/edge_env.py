"""What the edge settings changed, as JSON: the scheme, the script name and path, the client's
address (tests/integration/test_edge_proxies.py)."""

import json

KEYS = ("wsgi.url_scheme", "SCRIPT_NAME", "PATH_INFO", "REMOTE_ADDR", "REMOTE_PORT",
        "REMOTE_USER", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_FOR")


def app(environ, start_response):
    body = json.dumps({k: environ.get(k) for k in KEYS}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
