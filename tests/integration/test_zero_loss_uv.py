"""Zero failed requests through HUP, TTIN/TTOU, kill -9 of a worker, USR1, USR2 + TERM of the
old master and max_requests recycling, on the uv worker class, with 32 closed-loop keep-alive
connections (the rules are in zero_loss.py)."""

import unittest

from harness import AlicornTestCase
from zero_loss import ZeroLossOps


class ZeroLossUv(ZeroLossOps, AlicornTestCase):
    WORKER_CLASS = "uv"
    EXTRA_ARGS = ()


if __name__ == "__main__":
    unittest.main()
