"""Zero failed requests through HUP, TTIN/TTOU, kill -9 of a worker, USR1, USR2 + TERM of the
old master and max_requests recycling, on the gthread worker class, with 32 closed-loop keep-alive
connections (the rules are in zero_loss.py)."""

import unittest

from harness import AlicornTestCase
from zero_loss import ZeroLossOps


class ZeroLossGthread(ZeroLossOps, AlicornTestCase):
    WORKER_CLASS = "gthread"
    EXTRA_ARGS = ("--threads", "4")


if __name__ == "__main__":
    unittest.main()
