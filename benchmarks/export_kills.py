"""Kill `export.py` at many moments and check that no half-written version is ever published.

    python -m benchmarks.export_kills --run-dir runs/seed-ChatbotData+haru --kills 12

Times one whole export and the part of it that writes the version (after tracing, while its
hidden staging folder fills), then runs `--kills` more into the same fresh base path, each
killed (`kill -9`) at a random moment of that writing: the only moments at which a half-written
version could appear. After each kill it checks every integer version folder: it must hold a
whole SavedModel (`saved_model.pb`, the variables' index and data, `assets.extra/export.json`)
that TensorFlow loads. A final export must then
succeed, and leave no staging folder behind. Prints one row per kill and the totals.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def start_export(run_dir: str, base: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "export.py"), "--run-dir", run_dir, "--base-dir", str(base),
                             "--name", "chatbot"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def half_versions(model_dir: Path) -> list[str]:
    """Integer version folders that are not a whole, loadable SavedModel."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 - registers the tokenizer ops the graph uses.

    from run_directory import ExportVersion, versions

    bad = []
    for version in versions(model_dir):
        folder = ExportVersion(model_dir / str(version))
        parts = [folder.graph, folder.root / "variables" / "variables.index", folder.export_record]
        if not all(p.exists() for p in parts) or not list((folder.root / "variables").glob("variables.data-*")):
            bad.append(f"{version}: files missing")
            continue
        try:
            tf.saved_model.load(str(folder.root))
        except Exception as error:  # noqa: BLE001 - any failure to load is a half version.
            bad.append(f"{version}: {type(error).__name__}")
    return bad


def being_written(model_dir: Path) -> bool:
    return bool(list(model_dir.glob(".staging-*/*")))


def wait_for_writing(process: subprocess.Popen, model_dir: Path) -> float:
    """Seconds until the export starts writing its version (or ends); polls every 10 ms."""
    started = time.perf_counter()
    while process.poll() is None and not being_written(model_dir):
        time.sleep(0.01)
    return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--kills", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    randomness = random.Random(args.seed)
    base = Path(tempfile.mkdtemp(prefix="export-kills-"))
    model_dir = base / "chatbot"

    whole = start_export(args.run_dir, base)
    tracing = wait_for_writing(whole, model_dir)
    writing_started = time.perf_counter()
    while being_written(model_dir):  # Until the staging folder is renamed into place.
        time.sleep(0.01)
    writing = time.perf_counter() - writing_started
    if whole.wait() != 0:
        print(whole.stderr.read(), file=sys.stderr)
        return 1
    print(f"one whole export: {tracing:.1f} s before the version is written, {writing:.2f} s writing it (version 1); "
          f"{args.kills} more killed at random moments of the writing")
    print(f"{'kill':>4} {'into writing s':>14} {'killed writing':>14} {'versions':>9} {'half versions':>14}")
    failures, writing_kills = 0, 0
    from run_directory import versions

    for kill in range(1, args.kills + 1):
        delay = randomness.uniform(0.0, writing)
        process = start_export(args.run_dir, base)
        wait_for_writing(process, model_dir)
        time.sleep(delay)
        killed_writing = process.poll() is None and being_written(model_dir)
        writing_kills += killed_writing
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
        bad = half_versions(model_dir)
        failures += len(bad)
        print(f"{kill:>4} {delay:>14.2f} {'yes' if killed_writing else 'no (done)':>14} {len(versions(model_dir)):>9} "
              f"{len(bad):>14}" + (f"  {bad}" if bad else ""), flush=True)
    final = start_export(args.run_dir, base)
    final_ok = final.wait() == 0
    left = list(model_dir.glob(".staging-*"))
    print(f"kill points tried: {args.kills} ({writing_kills} while the version was being written); "
          f"half versions found: {failures}; final export {'succeeded' if final_ok else 'FAILED'}; "
          f"staging folders left after it: {len(left)}")
    return 0 if failures == 0 and final_ok and not left else 1


if __name__ == "__main__":
    sys.exit(main())
