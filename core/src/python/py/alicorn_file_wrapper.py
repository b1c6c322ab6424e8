"""wsgi.file_wrapper: iterates a file-like object in blocks (PEP 3333).

Embedded into alicorn at build time (core/src/python/py).
"""


class FileWrapper:
    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration
