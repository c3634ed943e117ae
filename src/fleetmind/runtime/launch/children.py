"""Child processes that die with the process that started them.

The launcher's children (actors, learners) must not outlive it. The usual way, a
``preexec_fn`` that calls ``prctl`` between fork and exec, runs Python in a forked
copy of a process whose gRPC threads are running, and such a child can abort in
gRPC's fork handlers ("epoll_wait error: Bad file descriptor"). Instead the parent
names itself in :data:`PARENT_PID_ENV` and the child, first thing after it starts,
asks the kernel for SIGKILL when its parent goes (``PR_SET_PDEATHSIG``) and exits
at once if the parent is already gone::

    subprocess.Popen(cmd, env=child_env())        # parent
    die_with_parent()                             # child, in fleetmind.cli.main
"""

from __future__ import annotations

import ctypes
import os
import signal

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""The format of fleetmind's log lines, in the command and in its child processes."""
PARENT_PID_ENV = "FLEETMIND_PARENT_PID"
"""Environment variable holding the pid of the process the child must not outlive."""
_PR_SET_PDEATHSIG = 1


def child_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this environment) plus this process as the child's parent."""
    return {**(os.environ if base is None else base), PARENT_PID_ENV: str(os.getpid())}


def die_with_parent() -> None:
    """When started by :func:`child_env`'s parent: die with it (no-op otherwise)."""
    value = os.environ.pop(PARENT_PID_ENV, None)  # not inherited by our own children
    if value is None or not value.isdigit():
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: the parent stops its children itself
        return
    if os.getppid() != int(value):  # the parent died before we asked
        os._exit(1)
