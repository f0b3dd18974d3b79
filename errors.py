"""The one base type for a user's mistake, and how every command-line tool answers it.

A missing or bad file, a bad setting, an unknown run or no export is a `UserError`
(`DataError`, `ConfigError`, `RunConfigMismatch`, ...): `train.py`, `export.py`,
`evaluate.py`, `chat.py` and `serve.py` print it as one line naming what is wrong and
exit with its `exit_code`, never a traceback. A write that runs out of space is one line too
(`DiskFull`, or any `OSError` that says so). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys


class UserError(Exception):
    """Something the user can fix; `str(error)` says what and where."""

    exit_code = 1


class ConfigError(UserError, ValueError):
    """A configuration key, value or combination that is not allowed (exit status 2, as argparse)."""

    exit_code = 2


class RunNotFound(UserError, FileNotFoundError):
    """A run directory (or export) that does not exist or is not finished (a bad argument: exit status 2)."""

    exit_code = 2


class DamagedFile(UserError):
    """A file of a run that exists but cannot be read (truncated, empty, written by another model)."""


class DiskFull(UserError):
    """A write failed for want of space (a full disk, a quota, a file-size limit)."""


_NO_SPACE = (28, 27, 122)  # ENOSPC, EFBIG, EDQUOT.


def is_no_space(error: BaseException) -> bool:
    """Whether `error` is a write that ran out of space (h5py and TensorFlow do not always set errno)."""
    text = str(error)
    return getattr(error, "errno", None) in _NO_SPACE or "No space left" in text or "File too large" in text


def damage_of(error: BaseException) -> str:
    """What went wrong reading a damaged file, in one line."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else 'unreadable'}"


def run_command(name: str, main, argv=None) -> int:
    """`main(argv)`'s exit status; a `UserError` becomes one line on stderr and its exit code."""
    try:
        return main(argv)
    except UserError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return error.exit_code
    except OSError as error:  # A full disk anywhere (data, logs, checkpoints) is the user's to fix, not a bug.
        if not is_no_space(error):
            raise
        where = f" writing {error.filename}" if getattr(error, "filename", None) else ""
        print(f"{name}: no space left on the disk{where} ({damage_of(error)}); free space and run it again",
              file=sys.stderr)
        return DiskFull.exit_code
