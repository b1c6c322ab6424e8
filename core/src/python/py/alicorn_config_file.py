"""Python config files, run as Gunicorn runs them: `-c gunicorn.conf.py`, `-c python:pkg.mod`.

alicorn runs the file in the master's embedded interpreter before anything is forked. Its
module-level names that are settings are taken (the C++ side converts and validates them against
the settings table); its server hooks (on_starting, post_fork, ...) are checked here and become
the hooks. Embedded into alicorn at build time (core/src/python/py); tested in tests/python.
"""
import importlib
import importlib.machinery
import importlib.util
import inspect
import os
import sys
import types

# Gunicorn's server hooks and the number of arguments each is called with.
HOOK_ARITY = {
    "on_starting": 1, "on_reload": 1, "when_ready": 1, "pre_fork": 2, "post_fork": 2,
    "post_worker_init": 1, "worker_int": 1, "worker_abort": 1, "pre_exec": 1,
    "pre_request": 2, "post_request": 4, "child_exit": 2, "worker_exit": 2,
    "nworkers_changed": 3, "on_exit": 1, "ssl_context": 2,
}

MODULE_NAME = "__config__"


class ConfigFileError(Exception):
    """A problem with the file itself (missing, a hook of the wrong shape): no traceback."""


def run(spec):
    """Execute the config file (a path, or python:MODULE) and return its namespace (a dict)."""
    if spec.startswith("python:"):
        name = spec[len("python:"):]
        cwd = os.getcwd()
        if cwd not in sys.path:
            sys.path.insert(0, cwd)
        if name in sys.modules:
            return vars(importlib.reload(sys.modules[name]))
        return vars(importlib.import_module(name))
    if not os.path.exists(spec):
        raise ConfigFileError("cannot read config file: it does not exist")
    if os.path.isdir(spec):
        raise ConfigFileError("cannot read config file: it is a directory")
    path = os.path.abspath(spec)
    loader = importlib.machinery.SourceFileLoader(MODULE_NAME, path)
    found = importlib.util.spec_from_file_location(MODULE_NAME, path, loader=loader)
    module = importlib.util.module_from_spec(found)
    previous = sys.modules.get(MODULE_NAME)
    sys.modules[MODULE_NAME] = module
    try:
        loader.exec_module(module)
    except BaseException:
        if previous is not None:
            sys.modules[MODULE_NAME] = previous
        else:
            sys.modules.pop(MODULE_NAME, None)
        raise
    return vars(module)


def public_names(namespace):
    """(name, value) for the names a setting could be: no _private names, no modules."""
    return [(k, v) for k, v in namespace.items()
            if not k.startswith("_") and not isinstance(v, types.ModuleType)]


def accepts(fn, count):
    """True when fn can be called with `count` positional arguments."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: trust it
        return True
    try:
        signature.bind(*([None] * count))
    except TypeError:
        return False
    return True


def _adapt_post_request(fn):
    # Gunicorn accepts post_request(worker, req), (worker, req, environ) and the full form.
    for count in (4, 3, 2):
        if accepts(fn, count):
            break
    else:
        raise ConfigFileError("post_request: %r must accept 2 to 4 arguments "
                              "(worker, req, environ, resp)" % (fn,))
    if count == 4:
        return fn

    def post_request(worker, req, environ, resp):
        return fn(*(worker, req, environ, resp)[:count])
    post_request.__wrapped__ = fn
    return post_request


def make_hooks(namespace):
    """The file's server hooks, checked, as an object the hooks machinery calls; None when the
    file defines none."""
    hooks = types.SimpleNamespace()
    found = False
    for name, count in HOOK_ARITY.items():
        fn = namespace.get(name)
        if fn is None:
            continue
        if not callable(fn):
            raise ConfigFileError("%s: a server hook must be callable, got %s (%r)"
                                  % (name, type(fn).__name__, fn))
        if name == "post_request":
            fn = _adapt_post_request(fn)
        elif not accepts(fn, count):
            raise ConfigFileError("%s: %r must accept %d argument%s, as Gunicorn calls it"
                                  % (name, fn, count, "" if count == 1 else "s"))
        setattr(hooks, name, fn)
        found = True
    return hooks if found else None
