"""Server hooks for test_arbiter_ops.py: every hook appends one line "<name> <pid> <details>"
to the file named by $OPS_HOOKS_OUT. The hook named by $OPS_HOOKS_FAIL raises instead."""

import os


def _record(name, *details):
    if os.environ.get("OPS_HOOKS_FAIL") == name:
        raise RuntimeError("boom in %s" % name)
    out = os.environ.get("OPS_HOOKS_OUT")
    if out:
        line = " ".join([name, str(os.getpid())] + [str(d) for d in details]) + "\n"
        with open(out, "a") as f:
            f.write(line)


def on_starting(server):
    _record("on_starting", server.pid, server.cfg["workers"], server.proc_name)


def on_reload(server):
    _record("on_reload", server.num_workers)


def when_ready(server):
    _record("when_ready", ",".join(server.address))
    server.log.info("when_ready hook says hello")


def pre_fork(server, worker):
    _record("pre_fork", worker.age)


def post_fork(server, worker):
    _record("post_fork", worker.pid, worker.age, worker.ppid)


def post_worker_init(worker):
    _record("post_worker_init", worker.pid)


def worker_int(worker):
    _record("worker_int", worker.pid)


def worker_abort(worker):
    _record("worker_abort", worker.pid)


def pre_exec(server):
    _record("pre_exec")


def pre_request(worker, req):
    _record("pre_request", req.method, req.path)


def post_request(worker, req, environ, resp):
    _record("post_request", req.method, req.path, resp.status_code)


def child_exit(server, worker):
    _record("child_exit", worker.pid)


def worker_exit(server, worker):
    _record("worker_exit", worker.pid)


def nworkers_changed(server, new_value, old_value):
    _record("nworkers_changed", new_value, old_value)


def on_exit(server):
    _record("on_exit")
