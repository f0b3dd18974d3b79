"""Training throughput in float32 against the precision `auto` picks here (bfloat16 on AVX512-BF16 CPUs).

    python -m benchmarks.precision_throughput --data ../shared/data/ChatbotData.csv [--preset seed]

Two models of the same configuration and seed, one built under the float32 policy
and one under `--precision` (default: what `train.mixed_precision: auto` resolves
to on this machine), fed the same bucketed pipeline with the same compiled train
step (the training defaults: AdamW, EMA). After warm-up steps (every bucket shape
traced), rounds of `--steps` alternate between the two so that machine drift hits
both. Printed: non-padding target tokens per second and milliseconds per step.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from config import PAD_ID, build_config  # noqa: E402
from data_pipeline.dataset import make_dataset  # noqa: E402
from data_pipeline.loading import prepare_data  # noqa: E402
from model.precision import policy_name, resolve_precision  # noqa: E402
from model.training import compile_model  # noqa: E402
from model.transformer import build_model  # noqa: E402


class Meter:
    def __init__(self, model, iterator):
        self.model, self.iterator = model, iterator
        self.seconds, self.steps, self.real = 0.0, 0, 0

    def run(self, steps: int, count: bool = True) -> None:
        for _ in range(steps):
            inputs, targets = next(self.iterator)
            start = time.perf_counter()
            self.model.train_on_batch(inputs, targets)  # Returns logs as numbers: the step has finished.
            if count:
                self.seconds += time.perf_counter() - start
                self.steps += 1
                self.real += int((targets.numpy() != PAD_ID).sum())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "ChatbotData.csv"))
    parser.add_argument("--preset", default="seed")
    parser.add_argument("--precision", default="auto", help="auto | mixed_bfloat16 | mixed_float16")
    parser.add_argument("--warmup-steps", type=int, default=30)
    parser.add_argument("--steps", type=int, default=30, help="steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    candidate = resolve_precision(args.precision)
    if candidate == "none":
        print(f"--precision {args.precision} resolves to float32 on this machine; nothing to compare.")
        return 1
    config = build_config(args.preset, overrides={"data": {"sources": [args.data]}})
    with tempfile.TemporaryDirectory() as tmp:
        data = prepare_data(config.data, Path(tmp))
    dataset = make_dataset(data.train, data.tokenizer, max_length=config.data.max_length,
                           batch_size=config.train.batch_size, shuffle=True, seed=0)
    meters = {}
    for precision in ("none", candidate):
        keras.utils.set_random_seed(config.train.seed)
        model = build_model(config.model, len(data.vocabulary), config.data.max_length, dtype=policy_name(precision))
        compile_model(model, config)
        meters[precision] = Meter(model, iter(dataset.repeat()))
        meters[precision].run(args.warmup_steps, count=False)
    for _ in range(args.rounds):
        for meter in meters.values():
            meter.run(args.steps)

    print(f"preset {args.preset}, batch {config.train.batch_size}, {args.rounds} x {args.steps} steps each "
          f"after {args.warmup_steps} warm-up")
    rates = {}
    for precision, meter in meters.items():
        rates[precision] = meter.real / meter.seconds
        name = "float32" if precision == "none" else precision
        print(f"{name:<16} {rates[precision]:>8.0f} real tokens/s {1000 * meter.seconds / meter.steps:>8.0f} ms/step")
    print(f"ratio ({candidate} / float32): {rates[candidate] / rates['none']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
