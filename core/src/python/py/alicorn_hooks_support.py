"""Server hooks' objects (Server, Worker, Request, Response, Log) and the hooks module loader.

Embedded into alicorn at build time (core/src/python/py); unit-tested on its own in
tests/python.
"""
import importlib, importlib.util, json, os, sys, traceback


class Log:
    """Writes to alicorn's error log, with the logging module's method names."""

    def __init__(self, emit):
        self._emit = emit

    @staticmethod
    def _text(msg, args):
        msg = str(msg)
        if args:
            try:
                msg = msg % args
            except Exception:
                msg = " ".join([msg] + [repr(a) for a in args])
        return msg

    def log(self, level, msg, *args, **kwargs):
        self._emit(int(level), self._text(msg, args))

    def debug(self, msg, *args, **kwargs):
        self._emit(10, self._text(msg, args))

    def info(self, msg, *args, **kwargs):
        self._emit(20, self._text(msg, args))

    def warning(self, msg, *args, **kwargs):
        self._emit(30, self._text(msg, args))

    warn = warning

    def error(self, msg, *args, **kwargs):
        self._emit(40, self._text(msg, args))

    def critical(self, msg, *args, **kwargs):
        self._emit(50, self._text(msg, args))

    def exception(self, msg, *args, **kwargs):
        self._emit(40, self._text(msg, args) + "\n" + traceback.format_exc().rstrip())


class Server:
    """The arbiter (master) as hooks see it."""

    def __init__(self, log):
        self.log = log
        self.pid = None
        self.cfg = {}
        self.num_workers = 0
        self.proc_name = ""
        self.worker_class = ""
        self.address = []

    def __repr__(self):
        return "<alicorn.Server pid=%s workers=%s>" % (self.pid, self.num_workers)


class Worker:
    """One worker process as hooks see it."""

    def __init__(self, log, age, index, ppid, cfg):
        self.log = log
        self.pid = None
        self.ppid = ppid
        self.age = age
        self.index = index
        self.cfg = cfg
        self.booted = False
        self.alive = True

    def __repr__(self):
        return "<alicorn.Worker pid=%s age=%s>" % (self.pid, self.age)


class Request:
    """The request as pre_request / post_request see it, made from the WSGI environ."""

    def __init__(self, environ):
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "")
        raw = environ.get("RAW_URI") or ""
        self.path = raw.split("?", 1)[0] if raw else environ.get("PATH_INFO", "")
        self.query = environ.get("QUERY_STRING", "")
        self.uri = raw or (self.path + ("?" + self.query if self.query else ""))
        proto = environ.get("SERVER_PROTOCOL", "HTTP/1.1")
        try:
            major, minor = proto.split("/", 1)[1].split(".", 1)
            self.version = (int(major), int(minor))
        except (IndexError, ValueError):
            self.version = (1, 1)
        headers = []
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                headers.append((key[5:].replace("_", "-"), value))
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
                headers.append((key.replace("_", "-"), value))
        self.headers = headers
        self.remote_addr = environ.get("REMOTE_ADDR")
        self.scheme = environ.get("wsgi.url_scheme", "http")

    def __repr__(self):
        return "<alicorn.Request %s %s>" % (self.method, self.uri)


class Response:
    """The response as post_request sees it."""

    def __init__(self, status, headers, sent):
        self.status = status
        try:
            self.status_code = int(status.split(None, 1)[0]) if status else None
        except ValueError:
            self.status_code = None
        self.headers = headers
        self.sent = sent
        self.response_length = sent

    def __repr__(self):
        return "<alicorn.Response %s>" % self.status


def _is_path(spec):
    return spec.endswith(".py") or os.sep in spec


def load(spec):
    if _is_path(spec):
        path = os.path.abspath(spec)
        name = "alicorn_hooks_" + os.path.splitext(os.path.basename(path))[0]
        found = importlib.util.spec_from_file_location(name, path)
        if found is None or found.loader is None:
            raise ImportError("cannot load hooks from %r" % spec)
        module = importlib.util.module_from_spec(found)
        found.loader.exec_module(module)
        return module
    return importlib.import_module(spec)


def reload(spec, old):
    if old is not None and not _is_path(spec) and getattr(old, "__name__", None) == spec:
        return importlib.reload(old)
    return load(spec)


def make_server(emit):
    return Server(Log(emit))


def make_worker(server, age, index, ppid):
    return Worker(server.log, age, index, ppid, server.cfg)


def parse_cfg(text):
    return json.loads(text)


class _Settings(dict):
    """The settings as ssl_context(config, ...) sees them: config.certfile as in Gunicorn."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def ssl_context(hook, cfg, certfile, keyfile, ca_certs, ciphers, cert_reqs):
    """Gunicorn's ssl_context(config, default_ssl_context_factory) hook: returns the
    ssl.SSLContext the hook makes (the factory builds the one the settings describe)."""
    import ssl

    def default_ssl_context_factory():
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile=certfile, keyfile=keyfile or None)
        context.verify_mode = ssl.VerifyMode(cert_reqs)
        if ca_certs:
            context.load_verify_locations(cafile=ca_certs)
        if ciphers:
            context.set_ciphers(ciphers)
        return context

    context = hook(_Settings(cfg), default_ssl_context_factory)
    if not isinstance(context, ssl.SSLContext):
        raise TypeError("the ssl_context hook must return an ssl.SSLContext, not %s"
                        % type(context).__name__)
    return context
