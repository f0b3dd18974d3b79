"""Wall time until a run's validation perplexity first reaches a target: compare finished runs side by side.

    python -m benchmarks.time_to_quality runs/today runs/candidate            # target: the first run's best
    python -m benchmarks.time_to_quality runs/seed --target 21.71

Reads each run's `history.csv` (Keras' per-epoch log: `epoch_seconds` includes validation)
and `metrics.json`/`config.yaml` (precision, batch size, learning-rate scale, weight decay, label
smoothing, weight-average momentum, schedule),
and prints the epochs and seconds until `val_perplexity <= target`, and each run's epochs and
time as ratios of the first run's (the epoch ratio does not depend on the machine's speed).
Wall times compare only for runs trained one after the other on the same machine (state the
CPU and its flags beside the figures); epoch times on a shared VM vary.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


from config import load_config  # noqa: E402
from model.callbacks import read_history  # noqa: E402
from run_directory import RunDirectory  # noqa: E402


def time_to_target(rows: list[dict], target: float) -> tuple[int, float] | None:
    """(epochs, seconds) until val_perplexity first reaches `target`, or None if it never does."""
    seconds = 0.0
    for row in rows:
        seconds += row.get("epoch_seconds", 0.0)
        if row.get("val_perplexity", float("inf")) <= target:
            return int(row["epoch"]) + 1, seconds
    return None


def describe(run_dir: Path) -> str:
    run = RunDirectory(run_dir)
    config = load_config(run.config)
    metrics_path = run.metrics
    precision = json.loads(metrics_path.read_text())["precision"] if metrics_path.exists() else config.train.mixed_precision
    train = config.train
    schedule = f", {train.epochs} ep, cooldown {train.cooldown_fraction:g}" if train.cooldown_fraction else ""
    schedule += ", peak held" if train.learning_rate_decay == "none" else ""
    return (f"{precision}, batch {train.batch_size}, lr x{train.learning_rate_scale:g}, warm-up {train.warmup_steps}, "
            f"wd {train.weight_decay:g}, ls {train.label_smoothing:g}, ema {train.ema_momentum:g}{schedule}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run directories; the first is the reference")
    parser.add_argument("--target", type=float, help="validation perplexity to reach (default: the first run's best)")
    args = parser.parse_args(argv)
    histories = {run: read_history(RunDirectory(run).history) for run in args.runs}
    for run, rows in histories.items():
        if not rows or "val_perplexity" not in rows[0]:
            print(f"time_to_quality.py: {run} has no history.csv with val_perplexity", file=sys.stderr)
            return 2
    target = args.target or min(r["val_perplexity"] for r in histories[args.runs[0]])
    print(f"target: validation perplexity <= {target:.2f}")
    print(f"{'run':<20} {'settings':<66} {'best ppl':>8} {'epochs':>7} {'ratio':>6} {'minutes':>8} {'ratio':>6}")
    reference = None
    for run, rows in histories.items():
        reached = time_to_target(rows, target)
        best = min(r["val_perplexity"] for r in rows)
        if reached is None:
            print(f"{str(run):<20} {describe(run):<66} {best:>8.2f} {'never':>7} {'-':>6} {'-':>8} {'-':>6}")
            continue
        epochs, seconds = reached
        reference = reference or (epochs, seconds)
        print(f"{str(run):<20} {describe(run):<66} {best:>8.2f} {epochs:>7} {epochs / reference[0]:>6.2f} "
              f"{seconds / 60:>8.1f} {seconds / reference[1]:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
