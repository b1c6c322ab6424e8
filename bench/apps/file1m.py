"""A 1 MiB file sent through wsgi.file_wrapper (servers may use sendfile for it).

Used by bench/compare.py ("file" app); the same module is served by every Python server.
The file is $ALICORN_BENCH_FILE (compare.py creates it in its temporary directory); without
that variable a 1 MiB file is created once in the system temporary directory.
"""

import os
import tempfile

SIZE = 1024 * 1024


def _bench_file():
    path = os.environ.get("ALICORN_BENCH_FILE")
    if not path:
        path = os.path.join(tempfile.gettempdir(), "alicorn-bench-1m.bin")
    if not os.path.exists(path) or os.path.getsize(path) != SIZE:
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(bytes(range(256)) * (SIZE // 256))
        os.replace(tmp, path)
    return path


PATH = _bench_file()
HEADERS = [
    ("Content-Type", "application/octet-stream"),
    ("Content-Length", str(SIZE)),
]
BLOCK = 64 * 1024


def app(environ, start_response):
    f = open(PATH, "rb")
    start_response("200 OK", HEADERS)
    wrapper = environ.get("wsgi.file_wrapper")
    if wrapper is not None:
        return wrapper(f, BLOCK)
    return _chunks(f)


def _chunks(f):
    try:
        while True:
            block = f.read(BLOCK)
            if not block:
                return
            yield block
    finally:
        f.close()


application = app
