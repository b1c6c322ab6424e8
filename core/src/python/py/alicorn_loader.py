"""Resolve MODULE:ATTRIBUTE[(ARGS)] to the WSGI application, as Gunicorn does.

Embedded into alicorn at build time (core/src/python/py).
"""

import ast
import importlib


def load_app(module, attribute, call, call_args):
    mod = importlib.import_module(module)
    obj = mod
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AttributeError(
                "Failed to find attribute %r in %r." % (attribute, module)) from None
    if call:
        try:
            expr = ast.parse("f(%s)" % call_args, mode="eval").body
            args = [ast.literal_eval(a) for a in expr.args]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in expr.keywords}
        except (SyntaxError, ValueError) as e:
            raise ValueError(
                "Failed to parse %r as literal function arguments: %s" % (call_args, e)) from None
        obj = obj(*args, **kwargs)
    if obj is None:
        raise TypeError("Failed to find application object: %r resolved to None." % attribute)
    if not callable(obj):
        raise TypeError("Application object must be callable (%s:%s is %s)."
                        % (module, attribute, type(obj).__name__))
    return obj


def load_paste(paste_file, global_conf):
    """--paste FILE[#name]: the app PasteDeploy builds from the ini file, as Gunicorn's
    paste loader does (config:FILE, relative to the working directory, with global_conf)."""
    try:
        from paste.deploy import loadapp
    except ImportError:
        raise ImportError("--paste needs PasteDeploy (Debian: python3-pastedeploy)") from None
    path, _, name = paste_file.partition("#")
    import os
    return loadapp("config:%s" % path, name=name or None, relative_to=os.getcwd(),
                   global_conf=dict(global_conf))
