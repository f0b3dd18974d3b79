"""Training throughput: this project's bucketed pipeline against batches padded to 40 tokens.

    python -m benchmarks.train_throughput --data ../shared/data/ChatbotData.csv [--preset seed]

Same model (fresh, same seed), same examples, same batch size, same compiled train
step; the only difference is the input pipeline. After warm-up steps (every bucket
shape traced), rounds of `--steps` alternate between the two so that machine drift
hits both. Printed per pipeline: non-padding target tokens per second, the share
of padding the step computes, the time the step waited for input, achieved FLOP/s
(counting the padded positions the step really computes) and its share of this
CPU's FP32 peak (`--peak-gflops`, 290 for the 2-core Sapphire Rapids VM here).
FLOPs are counted analytically (matmuls and attention, x3 for forward + backward).
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


def train_step_flops(model_config, vocabulary_size: int, batch: int, source: int, target: int) -> float:
    """Multiply-adds x2 of one training step (forward + backward = 3 x forward) at these padded shapes."""
    d, f, layers = model_config.hidden_dim, model_config.intermediate_dim, model_config.num_layers
    encoder = batch * source * (4 * d * d + 2 * d * f) + batch * source * source * 2 * d
    decoder = (batch * target * (4 * d * d + 2 * d * f + 2 * d * d)  # Self-attn, FF, cross-attn Q and O.
               + batch * source * 2 * d * d  # Cross-attention K and V of the encoder outputs.
               + batch * target * target * 2 * d + batch * target * source * 2 * d)
    logits = batch * target * d * vocabulary_size
    return 3 * 2 * (layers * (encoder + decoder) + logits)


class Meter:
    def __init__(self):
        self.seconds = self.wait = self.flops = 0.0
        self.real = self.positions = 0

    def run(self, model, iterator, steps: int, model_config, vocabulary_size: int) -> None:
        for _ in range(steps):
            start = time.perf_counter()
            inputs, targets = next(iterator)
            ready = time.perf_counter()
            model.train_on_batch(inputs, targets)  # Returns logs as numbers: the step has finished.
            done = time.perf_counter()
            self.wait += ready - start
            self.seconds += done - start
            t = targets.numpy()
            self.real += int((t != PAD_ID).sum())
            self.positions += t.size
            batch, source = inputs["encoder_inputs"].shape
            self.flops += train_step_flops(model_config, vocabulary_size, batch, source, t.shape[1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "ChatbotData.csv"))
    parser.add_argument("--preset", default="seed")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--pad-to", type=int, default=40, help="the padded pipeline's fixed length")
    parser.add_argument("--warmup-steps", type=int, default=30)
    parser.add_argument("--steps", type=int, default=40, help="steps per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--mixed-precision", default="none", help="none | mixed_bfloat16 | mixed_float16")
    parser.add_argument("--jit-compile", action="store_true")
    parser.add_argument("--peak-gflops", type=float, default=290.0)
    args = parser.parse_args(argv)

    config = build_config(args.preset, overrides={
        "data": {"sources": [args.data], "max_length": args.pad_to},
        "train": {"batch_size": args.batch_size, "jit_compile": args.jit_compile, "mixed_precision": args.mixed_precision},
    })
    dtype = policy_name(resolve_precision(args.mixed_precision))
    with tempfile.TemporaryDirectory() as tmp:
        data = prepare_data(config.data, Path(tmp))
    vocabulary_size = len(data.vocabulary)
    common = dict(max_length=config.data.max_length, batch_size=args.batch_size, shuffle=True, seed=0)
    pipelines = {
        "bucketed (project)": make_dataset(data.train, data.tokenizer, **common),
        f"padded to {args.pad_to}": make_dataset(data.train, data.tokenizer, pad_to=args.pad_to, **common),
    }
    runs = {}
    for name, dataset in pipelines.items():
        keras.utils.set_random_seed(config.train.seed)
        model = build_model(config.model, vocabulary_size, config.data.max_length, dtype=dtype)
        compile_model(model, config)
        iterator = iter(dataset.repeat())
        Meter().run(model, iterator, args.warmup_steps, config.model, vocabulary_size)  # Trace every shape.
        runs[name] = (model, iterator, Meter())
    for _ in range(args.rounds):
        for model, iterator, meter in runs.values():
            meter.run(model, iterator, args.steps, config.model, vocabulary_size)

    print(f"preset {args.preset}, batch {args.batch_size}, {len(data.train)} training examples, "
          f"mixed precision {args.mixed_precision}, jit_compile {args.jit_compile}; "
          f"{args.rounds} x {args.steps} steps each after {args.warmup_steps} warm-up")
    header = f"{'pipeline':<20} {'real tokens/s':>13} {'padding':>8} {'input wait':>10} {'GFLOP/s':>8} {'of peak':>8}"
    print(header)
    print("-" * len(header))
    rates = {}
    for name, (_, _, m) in runs.items():
        rates[name] = m.real / m.seconds
        gflops = m.flops / m.seconds / 1e9
        print(f"{name:<20} {rates[name]:>13.0f} {1 - m.real / m.positions:>8.1%} {m.wait / m.seconds:>10.1%} "
              f"{gflops:>8.1f} {gflops / args.peak_gflops:>8.1%}")
    bucketed, padded = rates.values()
    print(f"ratio (bucketed / padded): {bucketed / padded:.2f}x non-padding tokens per second")
    return 0


if __name__ == "__main__":
    sys.exit(main())
