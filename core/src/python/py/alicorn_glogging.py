"""alicorn.glogging: Gunicorn's glogging.Logger interface in pure Python, for a logger_class
subclass when the gunicorn package is not installed:

    from alicorn.glogging import Logger

    class JsonLogger(Logger):
        def access(self, resp, req, environ, request_time):
            ...

Same methods and attributes as gunicorn.glogging.Logger (error_log and access_log on the
loggers gunicorn.error and gunicorn.access, access(), atoms(), now(), reopen_files(),
critical/error/warning/info/debug/exception/log), set up from the same cfg attributes.
Embedded into alicorn (core/src/python/py) and registered as alicorn.glogging by
python/py_logging.cpp when logger_class is set.
"""
import base64
import binascii
import logging
import logging.handlers
import os
import re
import socket
import sys
import threading
import time
import traceback

import alicorn_logging

CONFIG_DEFAULTS = alicorn_logging.CONFIG_DEFAULTS

SYSLOG_FACILITIES = {
    "auth": 4, "authpriv": 10, "cron": 9, "daemon": 3, "ftp": 11, "kern": 0, "lpr": 6,
    "mail": 2, "news": 7, "security": 4, "syslog": 5, "user": 1, "uucp": 8,
    "local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21,
    "local6": 22, "local7": 23,
}


_ATOM_RE = re.compile(r"%\(([^)]*)\)")
_FORMAT_KEYS = {}  # access_log_format -> the atom names it uses


def loggers():
    """Every logger (as gunicorn.glogging.loggers())."""
    return [logging.getLogger(name) for name in logging.root.manager.loggerDict.keys()]


class SafeAtoms(dict):
    """Atoms for %-formatting: quotes escaped, missing atoms '-', {header} names any case."""

    def __init__(self, atoms):
        dict.__init__(self)
        for key, value in atoms.items():
            self[key] = value.replace('"', '\\"') if isinstance(value, str) else value

    def __getitem__(self, k):
        if k.startswith("{"):
            k = k.lower()
        if k in self:
            return super().__getitem__(k)
        return "-"


def parse_syslog_address(addr):
    """unix://PATH, udp://HOST:PORT, tcp://HOST:PORT -> (socktype, address)."""
    if addr.startswith("unix://"):
        return socket.SOCK_DGRAM, addr[len("unix://"):]
    if addr.startswith("unix:"):
        return socket.SOCK_DGRAM, addr[len("unix:"):]
    socktype = socket.SOCK_DGRAM
    if addr.startswith("udp://"):
        addr = addr[len("udp://"):]
    elif addr.startswith("tcp://"):
        addr = addr[len("tcp://"):]
        socktype = socket.SOCK_STREAM
    host, _, port = addr.rpartition(":") if ":" in addr else (addr, "", "514")
    host = host.strip("[]") or "localhost"
    return socktype, (host, int(port or 514))


class Logger:
    LOG_LEVELS = {
        "critical": logging.CRITICAL,
        "error": logging.ERROR,
        "warning": logging.WARNING,
        "info": logging.INFO,
        "debug": logging.DEBUG,
    }
    loglevel = logging.INFO

    error_fmt = r"%(asctime)s [%(process)d] [%(levelname)s] %(message)s"
    datefmt = r"[%Y-%m-%d %H:%M:%S %z]"
    access_fmt = "%(message)s"
    syslog_fmt = "[%(process)d] %(message)s"

    atoms_wrapper_class = SafeAtoms

    def __init__(self, cfg):
        self.error_log = logging.getLogger("gunicorn.error")
        self.error_log.propagate = False
        self.access_log = logging.getLogger("gunicorn.access")
        self.access_log.propagate = False
        self.error_handlers = []
        self.access_handlers = []
        self.logfile = None
        self.lock = threading.Lock()
        self.cfg = cfg
        self.setup(cfg)

    def setup(self, cfg):
        self.loglevel = self.LOG_LEVELS.get(cfg.loglevel.lower(), logging.INFO)
        self.error_log.setLevel(self.loglevel)
        self.access_log.setLevel(logging.INFO)
        self._set_handler(self.error_log, cfg.errorlog,
                          logging.Formatter(self.error_fmt, self.datefmt))
        if cfg.accesslog is not None:
            self._set_handler(self.access_log, cfg.accesslog,
                              fmt=logging.Formatter(self.access_fmt), stream=sys.stdout)
        if cfg.syslog:
            self._set_syslog_handler(self.error_log, cfg, self.syslog_fmt, "error")
            if not cfg.disable_redirect_access_to_syslog:
                self._set_syslog_handler(self.access_log, cfg, self.syslog_fmt, "access")
        # Gunicorn's precedence: the dict, then the JSON file, then the ini file.
        if cfg.logconfig_dict:
            alicorn_logging._dict_config("logconfig_dict", cfg.logconfig_dict)
        elif getattr(cfg, "logconfig_json", None):
            alicorn_logging.configure("json", cfg.logconfig_json, cfg.loglevel)
        elif cfg.logconfig:
            alicorn_logging.configure("ini", cfg.logconfig, cfg.loglevel)

    def critical(self, msg, *args, **kwargs):
        self.error_log.critical(msg, *args, **kwargs)

    def error(self, msg, *args, **kwargs):
        self.error_log.error(msg, *args, **kwargs)

    def warning(self, msg, *args, **kwargs):
        self.error_log.warning(msg, *args, **kwargs)

    def info(self, msg, *args, **kwargs):
        self.error_log.info(msg, *args, **kwargs)

    def debug(self, msg, *args, **kwargs):
        self.error_log.debug(msg, *args, **kwargs)

    def exception(self, msg, *args, **kwargs):
        self.error_log.exception(msg, *args, **kwargs)

    def log(self, lvl, msg, *args, **kwargs):
        if isinstance(lvl, str):
            lvl = self.LOG_LEVELS.get(lvl.lower(), logging.INFO)
        self.error_log.log(lvl, msg, *args, **kwargs)

    def atoms(self, resp, req, environ, request_time):
        """The access-log atoms (h l u t r s m U q H b B f a T D M L p, {header}i,
        {header}o, {variable}e), as Gunicorn computes them."""
        atoms = self._simple_atoms(resp, environ, request_time)
        req_headers = req.headers if hasattr(req, "headers") else req
        if hasattr(req_headers, "items"):
            req_headers = req_headers.items()
        atoms.update({"{%s}i" % k.lower(): v for k, v in req_headers})
        resp_headers = resp.headers
        if hasattr(resp_headers, "items"):
            resp_headers = resp_headers.items()
        atoms.update({"{%s}o" % k.lower(): v for k, v in resp_headers})
        atoms.update({"{%s}e" % k.lower(): v for k, v in environ.items()})
        return atoms

    def access(self, resp, req, environ, request_time):
        cfg = self.cfg
        if not (cfg.accesslog or cfg.logconfig or cfg.logconfig_dict
                or getattr(cfg, "logconfig_json", None)
                or (cfg.syslog and not cfg.disable_redirect_access_to_syslog)):
            return
        if type(self).atoms is Logger.atoms and self.atoms_wrapper_class is SafeAtoms:
            safe_atoms = self._format_atoms(resp, req, environ, request_time)
        else:
            safe_atoms = self.atoms_wrapper_class(self.atoms(resp, req, environ, request_time))
        try:
            self.access_log.info(cfg.access_log_format, safe_atoms)
        except Exception:
            self.error(traceback.format_exc())

    def _format_atoms(self, resp, req, environ, request_time):
        """SafeAtoms(self.atoms(...)) restricted to the atoms access_log_format names: the
        same values, without building every header and environ entry for each request."""
        fmt = self.cfg.access_log_format
        keys = _FORMAT_KEYS.get(fmt)
        if keys is None:
            keys = _FORMAT_KEYS[fmt] = sorted(set(_ATOM_RE.findall(fmt)))
        simple = None
        out = {}
        for key in keys:
            if key.startswith("{"):
                kl = key.lower()
                kind, name = kl[-1:], kl[1:-2]
                if len(kl) < 3 or kl[-2] != "}" or kind not in "ioe":
                    continue
                if kind == "i":
                    items = req.headers if hasattr(req, "headers") else req
                elif kind == "o":
                    items = resp.headers
                else:
                    items = environ
                if hasattr(items, "items"):
                    items = items.items()
                for k, v in items:  # the last one wins, as in atoms()' dict
                    if k.lower() == name:
                        out[kl] = v
            else:
                if simple is None:
                    simple = self._simple_atoms(resp, environ, request_time)
                if key in simple:
                    out[key] = simple[key]
        return SafeAtoms(out)

    def _simple_atoms(self, resp, environ, request_time):
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        sent = getattr(resp, "sent", None)
        secs, micros = request_time.seconds, request_time.microseconds
        return {
            "h": environ.get("REMOTE_ADDR", "-"),
            "l": "-",
            "u": self._get_user(environ) or "-",
            "t": self.now(),
            "r": "%s %s %s" % (environ["REQUEST_METHOD"], environ["RAW_URI"],
                               environ["SERVER_PROTOCOL"]),
            "s": status,
            "m": environ.get("REQUEST_METHOD"),
            "U": environ.get("PATH_INFO"),
            "q": environ.get("QUERY_STRING"),
            "H": environ.get("SERVER_PROTOCOL"),
            "b": sent is not None and str(sent) or "-",
            "B": sent,
            "f": environ.get("HTTP_REFERER", "-"),
            "a": environ.get("HTTP_USER_AGENT", "-"),
            "T": secs,
            "D": secs * 1000000 + micros,
            "M": secs * 1000 + int(micros / 1000),
            "L": "%d.%06d" % (secs, micros),
            "p": "<%s>" % os.getpid(),
        }

    def now(self):
        """The date in Apache Common Log Format."""
        return time.strftime("[%d/%b/%Y:%H:%M:%S %z]")

    def reopen_files(self):
        alicorn_logging.reopen_handler_files()

    def close_on_exec(self):
        for log in loggers():
            for handler in log.handlers:
                if isinstance(handler, logging.FileHandler) and handler.stream:
                    os.set_inheritable(handler.stream.fileno(), False)

    def _get_gunicorn_handler(self, log):
        for h in log.handlers:
            if getattr(h, "_gunicorn", False):
                return h
        return None

    def _set_handler(self, log, output, fmt, stream=None):
        h = self._get_gunicorn_handler(log)
        if h:
            log.handlers.remove(h)
        if output is None:
            return
        if output == "-":
            h = logging.StreamHandler(stream)
        else:
            h = logging.FileHandler(output)
            try:  # so that the workers' user can reopen it
                os.chown(h.baseFilename, self.cfg.user, self.cfg.group)
            except OSError:
                pass
        h.setFormatter(fmt)
        h._gunicorn = True
        log.addHandler(h)

    def _set_syslog_handler(self, log, cfg, fmt, name):
        prefix = cfg.syslog_prefix or cfg.proc_name.replace(":", ".")
        prefix = "gunicorn.%s.%s" % (prefix, name)
        fmt = logging.Formatter(r"%s: %s" % (prefix, fmt))
        try:
            facility = SYSLOG_FACILITIES[cfg.syslog_facility.lower()]
        except KeyError:
            raise RuntimeError("unknown facility name")
        socktype, addr = parse_syslog_address(cfg.syslog_addr)
        h = logging.handlers.SysLogHandler(address=addr, facility=facility, socktype=socktype)
        h.setFormatter(fmt)
        h._gunicorn = True
        log.addHandler(h)

    def _get_user(self, environ):
        http_auth = environ.get("HTTP_AUTHORIZATION")
        if not http_auth or not http_auth.lower().startswith("basic"):
            return None
        auth = http_auth.split(" ", 1)
        if len(auth) != 2:
            return None
        try:
            auth = base64.b64decode(auth[1].strip().encode("utf-8")).decode("utf-8")
        except (TypeError, binascii.Error, UnicodeDecodeError) as exc:
            self.debug("Couldn't get username: %s", exc)
            return None
        auth = auth.split(":", 1)
        return auth[0] if len(auth) == 2 else None
