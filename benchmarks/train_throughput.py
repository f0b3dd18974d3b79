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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.harness import SHARED_CHATBOT_DATA, StepMeter, alternate, compiled_model, prepared_data  # noqa: E402
from config import build_config  # noqa: E402
from data_pipeline.dataset import make_dataset  # noqa: E402
from model.precision import policy_name, resolve_precision  # noqa: E402


def train_step_flops(model_config, vocabulary_size: int, batch: int, source: int, target: int) -> float:
    """Multiply-adds x2 of one training step (forward + backward = 3 x forward) at these padded shapes."""
    d, f, layers = model_config.hidden_dim, model_config.intermediate_dim, model_config.num_layers
    encoder = batch * source * (4 * d * d + 2 * d * f) + batch * source * source * 2 * d
    decoder = (batch * target * (4 * d * d + 2 * d * f + 2 * d * d)  # Self-attn, FF, cross-attn Q and O.
               + batch * source * 2 * d * d  # Cross-attention K and V of the encoder outputs.
               + batch * target * target * 2 * d + batch * target * source * 2 * d)
    logits = batch * target * d * vocabulary_size
    return 3 * 2 * (layers * (encoder + decoder) + logits)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHARED_CHATBOT_DATA))
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
        "data": {"sources": [args.data], "sequence_length": args.pad_to},
        "train": {"batch_size": args.batch_size, "jit_compile": args.jit_compile, "mixed_precision": args.mixed_precision},
    })
    dtype = policy_name(resolve_precision(args.mixed_precision))
    data = prepared_data(config)
    vocabulary_size = len(data.vocabulary)
    common = dict(sequence_length=config.data.sequence_length, batch_size=args.batch_size, shuffle=True, seed=0)
    pipelines = {
        "bucketed (project)": make_dataset(data.train, data.tokenizer, **common),
        f"padded to {args.pad_to}": make_dataset(data.train, data.tokenizer, pad_to=args.pad_to, **common),
    }
    arms = {name: StepMeter(compiled_model(config, vocabulary_size, dtype), dataset)
            for name, dataset in pipelines.items()}
    alternate(arms, args.rounds, args.steps, args.warmup_steps)  # The warm-up traces every bucket shape.

    print(f"preset {args.preset}, batch {args.batch_size}, {len(data.train)} training examples, "
          f"mixed precision {args.mixed_precision}, jit_compile {args.jit_compile}; "
          f"{args.rounds} x {args.steps} steps each after {args.warmup_steps} warm-up")
    header = f"{'pipeline':<20} {'real tokens/s':>13} {'padding':>8} {'input wait':>10} {'GFLOP/s':>8} {'of peak':>8}"
    print(header)
    print("-" * len(header))
    rates = {}
    for name, meter in arms.items():
        rates[name] = meter.real_tokens_per_second()
        flops = sum(train_step_flops(config.model, vocabulary_size, *step.shape) for step in meter.steps)
        gflops = flops / meter.seconds / 1e9
        print(f"{name:<20} {rates[name]:>13.0f} {meter.padding():>8.1%} {meter.input_wait():>10.1%} "
              f"{gflops:>8.1f} {gflops / args.peak_gflops:>8.1%}")
    bucketed, padded = rates.values()
    print(f"ratio (bucketed / padded): {bucketed / padded:.2f}x non-padding tokens per second")
    return 0


if __name__ == "__main__":
    sys.exit(main())
