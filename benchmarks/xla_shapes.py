"""What XLA would save a training run: batch shapes per epoch, compile time per shape, step time.

    python -m benchmarks.xla_shapes --data ../shared/data/ChatbotData.csv [--epochs 25]

XLA (`train.jit_compile`) compiles the train step once per input shape. The project's
bucketed batches are padded to their longest sequence, which in a bucket is nearly always its
upper length, so the shapes are one per bucket plus the short last batches of each bucket;
snapping each side's length up to a few sizes and every batch to full rows (`--snap`) bounds
them further at the cost of more padding. Three setups, the same model (fresh, same seed) and
the same examples:

  1. bucketed (project), no XLA   - the default train step;
  2. snapped, XLA                 - a bounded set of shapes, each compiled once;
  3. bucketed, XLA                - every shape of the project's batches compiled once.

It counts the distinct shapes over `--census-epochs` epochs, measures the first step at each of
the first `--compile-shapes` new shapes beyond a steady step (tracing, and XLA's compile), then
times steady steps in alternating rounds, and prints the wall time an `--epochs`-epoch run
would take (XLA: shapes x mean first-step extra + steps x steady step) as a ratio of the
default's. State the CPU and its flags beside the figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from benchmarks.harness import SHARED_CHATBOT_DATA, StepMeter, compiled_model, prepared_data  # noqa: E402
from config import PAD_ID, build_config  # noqa: E402
from data_pipeline.dataset import make_dataset  # noqa: E402


def snap_shapes(dataset: tf.data.Dataset, sizes: tuple[int, ...], batch_size: int) -> tf.data.Dataset:
    """Pad each batch to `batch_size` rows and each side's length up to the next of `sizes`.

    Added rows and positions are [PAD]: the loss and metrics skip them, so a step learns what it
    learned before, at most len(sizes)^2 shapes.
    """
    sizes_tensor = tf.constant(sizes, tf.int32)

    def grow(x, length):
        rows, columns = batch_size - tf.shape(x)[0], length - tf.shape(x)[1]
        return tf.pad(x, [[0, rows], [0, columns]], constant_values=PAD_ID)

    def snapped(x):
        return tf.gather(sizes_tensor, tf.searchsorted(sizes_tensor, [tf.shape(x)[1]])[0])

    def pad(inputs, targets):
        source, target = snapped(inputs["encoder_inputs"]), snapped(targets)
        return ({"encoder_inputs": grow(inputs["encoder_inputs"], source),
                 "decoder_inputs": grow(inputs["decoder_inputs"], target)}, grow(targets, target))

    return dataset.map(pad, num_parallel_calls=tf.data.AUTOTUNE)


def shape_of(inputs, targets) -> tuple[int, int, int]:
    return (*inputs["encoder_inputs"].shape, targets.shape[1])


def shape_census(dataset: tf.data.Dataset, epochs: int) -> tuple[float, int, float]:
    """(steps per epoch, distinct shapes over `epochs` epochs, padding share of target positions).

    Target positions, as train_throughput.py counts them (`padding_stats` counts the inputs).
    """
    shapes, real, positions, steps = set(), 0, 0, 0
    for inputs, targets in dataset.repeat(epochs):
        shapes.add(shape_of(inputs, targets))
        t = targets.numpy()
        real += int((t != PAD_ID).sum())
        positions += t.size
        steps += 1
    return steps / epochs, len(shapes), 1 - real / positions


class Setup:
    """One model and pipeline: first-step (compile) seconds per new shape, steady step seconds."""

    def __init__(self, meter: StepMeter):
        self.meter = meter
        self.seen: set = set()
        self.first_steps: list[float] = []
        self.steady_steps: list[float] = []

    def step(self, record_steady: bool) -> None:
        step = self.meter.step()
        if step.shape not in self.seen:
            self.seen.add(step.shape)
            self.first_steps.append(step.step_seconds)
        elif record_steady:
            self.steady_steps.append(step.step_seconds)

    def warm_up(self, new_shapes: int, max_steps: int) -> None:
        for _ in range(max_steps):
            if len(self.first_steps) >= new_shapes:
                return
            self.step(record_steady=False)

    def first_step_extra_seconds(self) -> list[float]:
        """What each new shape's first step took beyond a steady step: tracing, and XLA's compile."""
        steady = statistics.median(self.steady_steps)
        return [max(0.0, seconds - steady) for seconds in self.first_steps]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHARED_CHATBOT_DATA))
    parser.add_argument("--preset", default="seed")
    parser.add_argument("--snap", default="8,12,16,24,40", help="lengths each side is padded up to")
    parser.add_argument("--compile-shapes", type=int, default=4, help="new shapes timed per setup")
    parser.add_argument("--steps", type=int, default=20, help="steady steps per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=25, help="the run length the estimate is for")
    parser.add_argument("--census-epochs", type=int, default=5, help="epochs whose distinct shapes are counted")
    args = parser.parse_args(argv)
    sizes = tuple(sorted(int(s) for s in args.snap.split(",")))

    config = build_config(args.preset, overrides={"data": {"sources": [args.data]},
                                                  "train": {"mixed_precision": "none"}})
    if sizes[-1] < config.data.sequence_length:
        parser.error(f"--snap: the largest size must be >= data.sequence_length ({config.data.sequence_length})")
    data = prepared_data(config)
    vocabulary_size = len(data.vocabulary)
    bucketed = make_dataset(data.train, data.tokenizer, sequence_length=config.data.sequence_length,
                            batch_size=config.train.batch_size, shuffle=True, seed=0)
    pipelines = {"bucketed (project), no XLA": (bucketed, False),
                 f"snapped to {args.snap}, XLA": (snap_shapes(bucketed, sizes, config.train.batch_size), True),
                 "bucketed, XLA": (bucketed, True)}

    setups, census = {}, {}
    for name, (dataset, jit) in pipelines.items():
        census[name] = shape_census(dataset, args.census_epochs)
        setups[name] = Setup(StepMeter(compiled_model(config, vocabulary_size, "float32", jit_compile=jit), dataset))
        setups[name].warm_up(args.compile_shapes, max_steps=400)
    for _ in range(args.rounds):
        for setup in setups.values():
            for _ in range(args.steps):
                setup.step(record_steady=True)

    print(f"preset {args.preset}, float32, batch {config.train.batch_size}, {len(data.train)} training examples; "
          f"{args.rounds} x {args.steps} steady steps each; shapes counted over {args.census_epochs} epochs; "
          f"estimate for {args.epochs} epochs")
    header = (f"{'setup':<34} {'shapes':>6} {'padding':>8} {'first-step extra s':>18} "
              f"{'steady ms':>9} {'run min':>8} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    baseline = None
    for name, setup in setups.items():
        steps_per_epoch, shapes, padding = census[name]
        steady = statistics.median(setup.steady_steps)
        extra = setup.first_step_extra_seconds()
        if pipelines[name][1]:  # XLA compiles every shape once.
            startup = shapes * statistics.mean(extra)
        else:  # tf.function traces the first shapes, then reuses one relaxed trace.
            startup = sum(extra)
        run_seconds = startup + args.epochs * steps_per_epoch * steady
        baseline = baseline or run_seconds
        print(f"{name:<34} {shapes:>6} {padding:>8.1%} {' '.join(f'{e:.1f}' for e in extra):>18} "
              f"{1000 * steady:>9.1f} {run_seconds / 60:>8.1f} {run_seconds / baseline:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
