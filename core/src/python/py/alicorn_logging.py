"""logconfig, logconfig_dict, logconfig_json: alicorn's error and access logs through Python's
logging, as Gunicorn's glogging.Logger does it (the loggers gunicorn.error and gunicorn.access,
a dict merged over CONFIG_DEFAULTS). python/py_logging.cpp calls configure() once per
configuration and emit() for every line; reopen_files() on USR1 (every FileHandler of every
logger, as Gunicorn's reopen_files); and for logger_class, make_logger() once, emit_logger() for
every error line and call_access() for every request (from the WSGI adapter)."""

import copy
from datetime import timedelta as _timedelta
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


# ---- USR1: reopen the files of the logging handlers (Gunicorn's Logger.reopen_files) --------

def _all_loggers(logging_module):
    manager = logging_module.root.manager
    found = [logging_module.root]
    for logger in list(manager.loggerDict.values()):
        if isinstance(logger, logging_module.Logger):
            found.append(logger)
    return found


def reopen_handler_files():
    """Reopen the stream of every logging.FileHandler of every logger (the app's too), as
    Gunicorn's reopen_files does after logrotate moved the files. Nothing when the process
    never imported logging."""
    import sys
    logging_module = sys.modules.get("logging")
    if logging_module is None:
        return
    seen = set()
    for logger in _all_loggers(logging_module):
        for handler in list(logger.handlers):
            if id(handler) in seen or not isinstance(handler, logging_module.FileHandler):
                continue
            seen.add(id(handler))
            handler.acquire()
            try:
                if handler.stream:
                    handler.close()
                    handler.stream = handler._open()
            finally:
                handler.release()


def reopen_files():
    """USR1 in the master and in every worker (python/py_logging.cpp)."""
    if _logger is not None and callable(getattr(_logger, "reopen_files", None)):
        _logger.reopen_files()  # Gunicorn's reopens every logger's FileHandlers itself
    else:
        reopen_handler_files()


# ---- logger_class: a Python class with Gunicorn's glogging.Logger interface ------------------

_logger = None  # the instance, once make_logger succeeded
_METHODS = {10: "debug", 20: "info", 30: "warning", 40: "error", 50: "critical"}


class GunicornConfig:
    """The cfg a glogging.Logger reads (cfg.errorlog, cfg.accesslog, cfg.loglevel, cfg.syslog*,
    cfg.logconfig*, cfg.access_log_format, cfg.user, cfg.group, cfg.proc_name, ...): every
    alicorn setting under its Gunicorn name, with Gunicorn's types where they differ."""

    def __init__(self, settings):
        self.__dict__.update(settings)
        text = settings.get("logconfig_dict")
        self.logconfig_dict = json.loads(text) if text else {}
        self.capture_output = False  # alicorn's own capture_output already points fds 1 and 2
        self.user = _uid(settings.get("user"))
        self.group = _gid(settings.get("group"), self.user)
        self.proc_name = (settings.get("proc_name") or settings.get("default_proc_name")
                          or settings.get("wsgi_app") or "alicorn")
        self.is_ssl = bool(settings.get("certfile"))
        self.address = settings.get("bind", [])
        self.settings = settings

    def __getattr__(self, name):  # only for names that are not settings
        raise AttributeError("alicorn has no setting %r (the logger_class cfg has every "
                             "alicorn setting under its Gunicorn name)" % name)


def _uid(spec):
    if spec in (None, ""):
        return os.geteuid()
    if str(spec).isdigit():
        return int(spec)
    import pwd
    return pwd.getpwnam(spec).pw_uid


def _gid(spec, uid):
    if spec in (None, ""):
        try:
            import pwd
            return pwd.getpwuid(uid).pw_gid
        except KeyError:
            return os.getegid()
    if str(spec).isdigit():
        return int(spec)
    import grp
    return grp.getgrnam(spec).gr_gid


def _load_class(path):
    import importlib
    module_name, sep, name = path.partition(":") if ":" in path else path.rpartition(".")
    if not module_name or not name:
        raise ValueError("logger_class: %r is not module.Class" % path)
    module = importlib.import_module(module_name)
    obj = module
    for part in name.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, type):
        raise TypeError("logger_class: %r is a %s, not a class" % (path, type(obj).__name__))
    return obj


def make_logger(path, settings_json):
    """Import and instantiate the class; returns (instance.access, error level). Raises with
    the cause (the C++ side logs the traceback and refuses to start)."""
    global _logger
    cls = _load_class(path)
    if hasattr(cls, "install"):
        cls.install()  # as Gunicorn's Config.logger_class does
    cfg = GunicornConfig(json.loads(settings_json))
    logger = cls(cfg)
    access = getattr(logger, "access", None)
    if not callable(access):
        raise TypeError("logger_class: %s has no access(resp, req, environ, request_time) "
                        "method" % path)
    for name in ("debug", "info", "warning", "error", "critical"):
        if not callable(getattr(logger, name, None)):
            raise TypeError("logger_class: %s has no %s() method" % (path, name))
    error_log = getattr(logger, "error_log", None)
    if isinstance(error_log, logging.Logger):
        level = error_log.getEffectiveLevel()
    else:
        level = LEVELS.get(str(cfg.loglevel).lower(), logging.INFO)
    _logger = logger
    return access, level


def clear_logger():
    global _logger
    _logger = None


def emit_logger(access, level, message):
    """The server's error lines, through the instance's error()/info()/... methods."""
    getattr(_logger, _METHODS.get(level, "error" if level > 30 else "info"))(message)


class AccessResponse:
    """resp as Gunicorn's Logger.access() sees it."""

    def __init__(self, status, status_code, headers, sent):
        self.status = status                 # "200 OK"
        self.status_code = status_code       # 200
        self.headers = headers               # [(name, value)] as the app sent them
        self.sent = sent                     # body bytes sent
        self.response_length = sent

    def __repr__(self):
        return "<alicorn AccessResponse %s>" % self.status


class AccessRequest:
    """req as Gunicorn's Logger.access() sees it (gunicorn.http.message.Request's fields)."""

    def __init__(self, method, uri, version, headers, scheme, remote_addr):
        self.method = method
        self.uri = uri
        path, _, query = uri.partition("?")
        path, _, fragment = path.partition("#")
        self.path = path
        self.query = query
        self.fragment = fragment
        self.version = version               # (1, 1)
        self.headers = headers               # [("USER-AGENT", value)], names upper-cased
        self.trailers = []
        self.scheme = scheme
        self.remote_addr = remote_addr
        self.peer_addr = remote_addr

    def __repr__(self):
        return "<alicorn AccessRequest %s %s>" % (self.method, self.uri)


def call_access(access, status, code, headers, sent, method, uri, major, minor, req_headers,
                environ, duration_us):
    access(AccessResponse(status, code, headers, sent),
           AccessRequest(method, uri, (major, minor), req_headers,
                         environ.get("wsgi.url_scheme", "http"), environ.get("REMOTE_ADDR")),
           environ, _timedelta(microseconds=duration_us))

