"""Kill `export.py` at many moments and check that no half-written version is ever published.

    python -m benchmarks.export_kills --run-dir runs/seed-ChatbotData+haru --kills 12

Times one whole export, then runs `--kills` more, each killed (`kill -9`) at a random moment
within that time, into a fresh base path. After each kill it checks every integer version
folder: it must hold a whole SavedModel (`saved_model.pb`, the variables' index and data,
`assets.extra/export.json`, written last) that TensorFlow loads. A final export must then
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--kills", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    randomness = random.Random(args.seed)
    base = Path(tempfile.mkdtemp(prefix="export-kills-"))
    model_dir = base / "chatbot"

    started = time.perf_counter()
    whole = start_export(args.run_dir, base)
    if whole.wait() != 0:
        print(whole.stderr.read(), file=sys.stderr)
        return 1
    seconds = time.perf_counter() - started
    print(f"one whole export: {seconds:.1f} s (version 1); killing {args.kills} more at random moments within it")
    print(f"{'kill':>4} {'after s':>8} {'versions':>9} {'half versions':>14} {'staging left':>13}")
    failures = 0
    for kill in range(1, args.kills + 1):
        delay = randomness.uniform(0.0, seconds)
        process = start_export(args.run_dir, base)
        time.sleep(delay)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
        bad = half_versions(model_dir)
        failures += len(bad)
        staging = len(list(model_dir.glob(".staging-*")))
        from run_directory import versions

        print(f"{kill:>4} {delay:>8.1f} {len(versions(model_dir)):>9} {len(bad):>14} {staging:>13}"
              + (f"  {bad}" if bad else ""), flush=True)
    final = start_export(args.run_dir, base)
    final_ok = final.wait() == 0
    left = list(model_dir.glob(".staging-*"))
    print(f"kill points tried: {args.kills}; half versions found: {failures}; final export "
          f"{'succeeded' if final_ok else 'FAILED'}; staging folders left after it: {len(left)}")
    return 0 if failures == 0 and final_ok and not left else 1


if __name__ == "__main__":
    sys.exit(main())
