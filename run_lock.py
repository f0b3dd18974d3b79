"""One writer per run directory: `train.py` holds `<run>/train.lock` while it trains.

An advisory `flock` on the file: the operating system lets it go when the process ends, however
it ends (`kill -9` included), so a killed run never leaves a stale lock behind. A second
`train.py` on a run that one holds is refused with one line, before it reads or writes anything.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from errors import UserError


class RunInUse(UserError):
    """Another process holds the run directory."""

    exit_code = 2


@contextlib.contextmanager
def holding(lock_path: str | Path, what: str = "train.py"):
    """Hold `lock_path` exclusively for the `with` block; `RunInUse` naming the holder when another does."""
    lock_path = Path(lock_path)
    handle = open(lock_path, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise RunInUse(f"{lock_path.parent} is in use by {what} ({holder}); wait for it to end, "
                           "or use another --run-dir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()  # Closing lets the lock go.
