"""CPU threads: the thread policy of the ``whatwhere`` command, as one explicit call.

Importing whatwhere sets nothing; the command applies this policy to its own process, and
``whatwhere.configure_threads()`` applies the same one to a notebook or script:

* torch's intra-op threads = the given number, else ``$OMP_NUM_THREADS``, else as many as cores
  are idle now (:func:`whatwhere.utils.device.free_cores`): beside a busy process, threads on
  taken cores wait on each other at every barrier;
* ``OMP_WAIT_POLICY=PASSIVE`` unless one is set: waiting OpenMP threads sleep instead of spinning
  on a core another process needs.  The OpenMP runtime reads this variable once, when it starts
  (GNU OpenMP: when ``import torch`` loads it), so it only takes effect if set before torch is
  imported; afterwards it is left alone (set it in the shell, or call this first thing).

Measured on the 2-core machine (``benchmarks/bench_busy.py``, ``results/bench_busy.md``): with
one competing single-thread process, the displays, retina and training workloads keep 0.55-0.96
of torch's idle throughput when the competitor was there from the start and 0.48-0.91 when it
starts later, against 0.29-0.42 with torch's defaults; the price is 10-15 % on an idle machine
(set ``OMP_WAIT_POLICY=ACTIVE`` on a dedicated one).

This module does not import torch at import time (the command imports it before torch).
"""

from __future__ import annotations

import os
import sys

__all__ = ["configure_threads", "passive_wait_policy"]


def passive_wait_policy() -> str | None:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` if no policy is set and torch is not imported yet (later
    it could not take effect).  Returns the policy set, or None when nothing was set."""
    if "OMP_WAIT_POLICY" in os.environ or "torch" in sys.modules:
        return None
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return "PASSIVE"


def configure_threads(threads: int | None = None) -> dict:
    """Apply the ``whatwhere`` command's CPU thread policy to this process (module doc).

    Call it once, explicitly, before the work (``import whatwhere; whatwhere.configure_threads()``);
    nothing in the library calls it.  For the wait policy to take effect, call it before anything
    imports torch, or set ``OMP_WAIT_POLICY`` in the environment of the process.

    Args:
        threads: torch's intra-op threads; None: ``$OMP_NUM_THREADS`` when set, else the cores
            idle now (measured over 0.25 s).

    Returns:
        what was set: ``{"threads": n, "wait_policy": "PASSIVE" | None}`` (None: the policy was
        already set, or torch was already imported so it could no longer take effect).

    Raises:
        ValueError: ``threads`` < 1.
    """
    if threads is not None and int(threads) < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    policy = passive_wait_policy()
    import torch

    if threads is None:
        env = os.environ.get("OMP_NUM_THREADS")
        if env is None:
            from whatwhere.utils.device import free_cores

            threads = free_cores()
        else:  # a positive integer, else (e.g. a nested list "4,2") torch's own reading of it
            threads = int(env) if env.strip().isdigit() and int(env) >= 1 else torch.get_num_threads()
    torch.set_num_threads(int(threads))
    return {"threads": int(threads), "wait_policy": policy}
