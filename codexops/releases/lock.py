"""One change at a time per stack: a deploy, promotion or rollback holds the stack's lock file.

An fcntl lock on `.local/stacks/<stack>/change.lock`: the kernel drops it when the holder exits, even on a
crash, so a stale lock cannot block the stack. The holder writes who, what and since when into the file,
and a refused second change names them.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager

from codexops.releases.history import actor, now, stack_dir


class StackBusy(RuntimeError):
    """Another change to this stack is running; the message names its holder."""


@contextmanager
def stack_lock(stack: str, what: str) -> Iterator[None]:
    path = stack_dir(stack) / "change.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StackBusy(f"stack {stack} is busy: {_holder(fd)}; wait for it to finish") from None
        holder = {"pid": os.getpid(), "actor": actor(), "what": what, "since": now()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"{info['what']} by {info['actor']} (pid {info['pid']}) since {info['since']}"
    except (ValueError, KeyError):
        return "another change holds its lock"
