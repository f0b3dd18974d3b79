"""run_lock.py: one train.py per run directory; the lock goes with its process, even after kill -9."""

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from run_lock import RunInUse, holding

HOLD = "import sys, time; from run_lock import holding\nwith holding(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)"


def hold_in_another_process(lock):
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_second_holder_is_refused_naming_the_first(tmp_path):
    lock = tmp_path / "train.lock"
    first = hold_in_another_process(lock)
    try:
        with pytest.raises(RunInUse, match=f"{tmp_path} is in use by train.py \\(pid {first.pid}\\)"):
            with holding(lock):
                pass
    finally:
        first.kill()
        first.wait()


def test_the_lock_goes_with_a_killed_process(tmp_path):
    lock = tmp_path / "train.lock"
    first = hold_in_another_process(lock)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    with holding(lock):  # Free again: no stale lock.
        assert lock.read_text() == f"pid {os.getpid()}"


def test_train_py_refuses_a_run_that_another_holds(tmp_path, chatbot_csv):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    first = hold_in_another_process(run_dir / "train.lock")
    try:
        started = time.time()
        process = subprocess.run([sys.executable, str(ROOT / "train.py"), "--preset", "tiny", "--data", str(chatbot_csv),
                                  "--run-dir", str(run_dir), "--no-export"], cwd=ROOT, capture_output=True, text=True,
                                 timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        assert process.returncode == 2, process.stderr[-2000:]
        assert process.stderr.strip().splitlines()[-1] == (
            f"train.py: {run_dir} is in use by train.py (pid {first.pid}); wait for it to end, or use another --run-dir")
        assert "Traceback" not in process.stderr
        assert sorted(p.name for p in run_dir.iterdir()) == ["train.lock"]  # Nothing read or written.
        assert time.time() - started < 120
    finally:
        first.kill()
        first.wait()
