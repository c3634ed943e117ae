"""How many threads one process's numerical work may use.

Torch and numpy's BLAS each start a pool of threads sized to the machine. For
the small matrices of policy networks those pools only add hand-offs, and on a
machine shared by a learner, actors and other jobs their spinning threads steal
the cores the work needs (a 64x128 matmul was measured at 1.7 ms with the
default BLAS pool on a loaded 2-core machine, 5 µs with one thread). Every
fleetmind process that computes (trainer, learner, actor, server) calls this
once at start-up.
"""

from __future__ import annotations

import torch
from threadpoolctl import threadpool_limits


def limit_threads(threads: int) -> None:
    """Use at most ``threads`` threads for torch and for numpy's BLAS in this process."""
    torch.set_num_threads(threads)
    threadpool_limits(limits=threads, user_api="blas")
