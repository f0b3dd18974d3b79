"""errors.py: a user's mistake and a full disk are one line and an exit status; anything else keeps its traceback."""

import errno

import pytest

from errors import ConfigError, DiskFull, is_no_space, run_command


def failing(error):
    def main(argv):
        raise error
    return main


def test_a_user_error_is_one_line_and_its_exit_status(capsys):
    assert run_command("tool.py", failing(ConfigError("train.x=1 is not allowed"))) == 2
    assert capsys.readouterr().err == "tool.py: train.x=1 is not allowed\n"


def test_a_full_disk_anywhere_is_one_line_naming_the_file(capsys):
    error = OSError(errno.ENOSPC, "No space left on device", "/runs/a/history.csv")
    assert run_command("train.py", failing(error)) == DiskFull.exit_code
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("train.py: no space left on the disk writing /runs/a/history.csv")
    assert is_no_space(OSError(errno.EFBIG, "File too large")) and is_no_space(RuntimeError("... No space left ..."))


def test_other_os_errors_keep_their_traceback():
    with pytest.raises(FileNotFoundError):
        run_command("train.py", failing(FileNotFoundError(errno.ENOENT, "No such file", "x")))
