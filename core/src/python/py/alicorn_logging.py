"""logconfig, logconfig_dict, logconfig_json: alicorn's error and access logs through Python's
logging, as Gunicorn's glogging.Logger does it (the loggers gunicorn.error and gunicorn.access,
a dict merged over CONFIG_DEFAULTS). python/py_logging.cpp calls configure() once per
configuration and emit() for every line."""

import copy
import json
import logging
import logging.config
import os

CONFIG_DEFAULTS = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {
            "level": "INFO",
            "handlers": ["error_console"],
            "propagate": True,
            "qualname": "gunicorn.error",
        },
        "gunicorn.access": {
            "level": "INFO",
            "handlers": ["console"],
            "propagate": False,
            "qualname": "gunicorn.access",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "generic",
            "stream": "ext://sys.stdout",
        },
        "error_console": {
            "class": "logging.StreamHandler",
            "formatter": "generic",
            "stream": "ext://sys.stderr",
        },
    },
    "formatters": {
        "generic": {
            "format": "%(asctime)s [%(process)d] [%(levelname)s] %(message)s",
            "datefmt": "[%Y-%m-%d %H:%M:%S %z]",
            "class": "logging.Formatter",
        }
    },
}

LEVELS = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}

_error = logging.getLogger("gunicorn.error")
_access = logging.getLogger("gunicorn.access")


def _dict_config(setting, config):
    if not isinstance(config, dict):
        raise ValueError("%s: expected a dict, got %s" % (setting, type(config).__name__))
    merged = copy.deepcopy(CONFIG_DEFAULTS)
    merged.update(config)
    # Gunicorn merges the top-level keys only, so a dict with its own "handlers" and no "root"
    # left the default root naming the missing "console" handler, which dictConfig refuses.
    # Drop such dangling names from the defaults kept (every dict Gunicorn accepts still works).
    if "handlers" in config:
        names = set(merged["handlers"] or {})
        kept = [("root", merged.get("root"))] if "root" not in config else []
        if "loggers" not in config:
            kept += list(merged["loggers"].items())
        for _, logger in kept:
            if isinstance(logger, dict) and "handlers" in logger:
                logger["handlers"] = [h for h in logger["handlers"] if h in names]
    try:
        logging.config.dictConfig(merged)
    except (ValueError, TypeError, AttributeError, ImportError, KeyError) as e:
        why = str(e)
        if e.__cause__ is not None:
            why += " (%s: %s)" % (type(e.__cause__).__name__, e.__cause__)
        raise ValueError("%s: dictConfig refused it: %s" % (setting, why)) from e


def configure(kind, value, loglevel):
    """kind: "ini" (a file), "dict" (JSON text), "json" (a file). Returns the effective levels
    of gunicorn.error and gunicorn.access."""
    _error.setLevel(LEVELS.get(loglevel.lower(), logging.INFO))
    _access.setLevel(logging.INFO)
    if kind == "ini":
        if not os.path.exists(value):
            raise RuntimeError("logconfig: log config '%s' not found" % value)
        defaults = {"__file__": value, "here": os.path.dirname(value)}
        try:
            logging.config.fileConfig(value, defaults=defaults, disable_existing_loggers=False)
        except Exception as e:
            raise RuntimeError("logconfig: %s: fileConfig refused it: %s: %s"
                               % (value, type(e).__name__, e)) from e
    elif kind == "dict":
        _dict_config("logconfig_dict", json.loads(value))
    else:
        try:
            with open(value, encoding="utf-8") as f:
                config = json.load(f)
        except OSError as e:
            raise RuntimeError("logconfig_json: cannot read '%s': %s" % (value, e.strerror)) from e
        except ValueError as e:
            raise RuntimeError("logconfig_json: %s is not JSON: %s" % (value, e)) from e
        _dict_config("logconfig_json: " + value, config)
    return _error.getEffectiveLevel(), _access.getEffectiveLevel()


def emit(access, level, message):
    (_access if access else _error).log(level, message)
