"""Enter a container's view of the machine, then exec its command (standard library only).

Run by the cluster as ``ip netns exec NETNS python -I -S container_exec.py SPEC``:
``ip netns exec`` has already given the process the pod's network namespace and a
mount namespace of its own (a slave of the machine's, so nothing mounted here is
seen outside). This then, as a container runtime would:

1. takes a UTS namespace of its own and sets the pod's host name;
2. bind-mounts each volume's folder at its ``mountPath`` (read-only where the mount
   says so), parents before children; every source is opened before the first
   mount, so that a mount over ``/tmp`` cannot hide a source that lies under it;
3. remounts ``/`` read-only for ``readOnlyRootFilesystem`` (the volumes stay as
   mounted);
4. drops to ``runAsUser``/``runAsGroup`` with ``fsGroup`` as a supplementary group
   (root stays root when none is given);
5. changes to the working directory and execs the command with its environment.

SPEC is JSON: ``{"hostname", "mounts": [{"source", "target", "read_only"}],
"read_only_root", "uid", "gid", "groups", "cwd", "argv"}``; the environment is inherited.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from typing import Any

CLONE_NEWUTS = 0x04000000
MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, flags: int) -> None:
    _check(
        _libc.mount(
            None if source is None else source.encode(), target.encode(), None, flags, None
        ),
        f"mount {source} {target}",
    )


def enter(spec: dict[str, Any]) -> None:
    """Everything but the exec (steps 1 to 5 of the module's docstring)."""
    _check(_libc.unshare(CLONE_NEWUTS), "unshare(CLONE_NEWUTS)")
    hostname = str(spec["hostname"])
    _check(_libc.sethostname(hostname.encode(), len(hostname)), "sethostname")
    mounts = sorted(spec["mounts"], key=lambda m: str(m["target"]).count("/"))
    opened = [os.open(m["source"], os.O_PATH) for m in mounts]
    for mount, fd in zip(mounts, opened, strict=True):
        _mount(f"/proc/self/fd/{fd}", mount["target"], MS_BIND | MS_REC)
        if mount.get("read_only"):
            _mount(None, mount["target"], MS_REMOUNT | MS_BIND | MS_RDONLY)
    for fd in opened:
        os.close(fd)
    if spec.get("read_only_root"):
        _mount(None, "/", MS_REMOUNT | MS_BIND | MS_RDONLY)
    if spec.get("gid") is not None:
        os.setgroups([int(g) for g in spec.get("groups") or []])
        os.setgid(int(spec["gid"]))
    if spec.get("uid") is not None:
        os.setuid(int(spec["uid"]))
    os.chdir(spec.get("cwd") or "/")


def main() -> None:
    spec = json.loads(sys.argv[1])
    try:
        enter(spec)
    except OSError as exc:
        print(f"container_exec: {exc}", file=sys.stderr)
        sys.exit(127)
    argv = spec["argv"]
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        print(f"container_exec: cannot run {argv[0]}: {exc.strerror}", file=sys.stderr)
        sys.exit(127)


if __name__ == "__main__":
    main()
