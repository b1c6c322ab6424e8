"""bench/apps/file1m.py with the file opened once per process instead of once per request.

For measuring what the app's own open() (and close()) costs: every response is still a
wsgi.file_wrapper over the same 1 MiB file, sent with sendfile from the shared descriptor at
the response's own offset (0). The wrapper's close() leaves the shared file open.
"""

import os

from file1m import BLOCK, HEADERS, PATH

FD = os.open(PATH, os.O_RDONLY | os.O_CLOEXEC)


class SharedFile:
    """A file-like over the shared descriptor with a position of its own."""

    __slots__ = ("pos",)

    def __init__(self):
        self.pos = 0

    def fileno(self):
        return FD

    def tell(self):
        return self.pos

    def read(self, size=-1):
        if size is None or size < 0:
            size = os.fstat(FD).st_size - self.pos
        data = os.pread(FD, size, self.pos)
        self.pos += len(data)
        return data

    def close(self):
        pass  # the descriptor is the process's, not the response's


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    f = SharedFile()
    wrapper = environ.get("wsgi.file_wrapper")
    if wrapper is not None:
        return wrapper(f, BLOCK)
    return iter(lambda: f.read(BLOCK), b"")


application = app
