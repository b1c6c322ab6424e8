"""The `alicorn` Python package, as far as it exists: `alicorn.glogging` (alicorn_glogging.py),
so that `from alicorn.glogging import Logger` works anywhere (a config file, the app, a
logger_class module) without a file on sys.path. Embedded (core/src/python/py); installed at
interpreter start by python/embedded.cpp with `load`, which imports an embedded module."""

import importlib.machinery
import sys

SUBMODULES = {"alicorn.glogging": ("alicorn_logging", "alicorn_glogging")}


class Finder:
    def __init__(self, load):
        self._load = load

    def find_spec(self, name, path=None, target=None):
        if name == "alicorn":
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        if name in SUBMODULES:
            return importlib.machinery.ModuleSpec(name, self)
        return None

    def create_module(self, spec):
        if spec.name in SUBMODULES:
            module = None
            for embedded in SUBMODULES[spec.name]:
                module = self._load(embedded)
            return module
        return None  # the package: a plain module

    def exec_module(self, module):
        if module.__name__ == "alicorn":
            module.__path__ = []


def install(load):
    if not any(isinstance(f, Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, Finder(load))
