"""The arbiter's signals under continuous load (test_arbiter_ops.py's _LoadOps) with the
gthread and uv worker classes: zero failed requests on HUP, TTIN/TTOU, kill -9 of a worker, USR2
followed by TERM of the old master, and max_requests recycling. The sync worker runs the same
tests in test_arbiter_ops.py (the must-pass set); these are kept apart so each worker class
shows up as its own ctest."""

import unittest

from test_arbiter_ops import _LoadOps, _OpsBase


class GthreadOps(_OpsBase, _LoadOps):
    WORKER_CLASS = "gthread"
    EXTRA_ARGS = ("--threads", "2")


class UvOps(_OpsBase, _LoadOps):
    WORKER_CLASS = "uv"


if __name__ == "__main__":
    unittest.main()
