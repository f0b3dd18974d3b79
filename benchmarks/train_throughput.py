"""Training throughput: this project's pipeline against batches grouped by one side's length and padded ones.

    python -m benchmarks.train_throughput --data ../shared/data/ChatbotData.csv [--preset seed] [--no-character]

The default data is the default run's: ChatbotData and the character's dialogues (`--no-character`:
ChatbotData alone). Three pipelines:
    both sides bucketed   the project's: grouped by the pair of encoder and decoder length buckets
    encoder bucketed      grouped by the encoder's length alone (each side still padded to its batch)
    padded to N           every batch padded to the sequence length, as tutorial pipelines do
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

from benchmarks.harness import (  # noqa: E402
    SHARED_CHATBOT_DATA, StepMeter, alternate, compiled_model, cpu_line, prepared_data,
)
from config import build_config  # noqa: E402
from data_pipeline.dataset import DEFAULT_BUCKETS, LengthBuckets, make_dataset  # noqa: E402

ENCODER_ONLY = LengthBuckets(encoder=DEFAULT_BUCKETS.encoder, decoder=())
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
    parser.add_argument("--pad-to", type=int, help="the padded pipeline's fixed length (default: the sequence length)")
    parser.add_argument("--no-character", action="store_true", help="ChatbotData alone (the single-turn run's data)")
    parser.add_argument("--warmup-steps", type=int, default=30)
    parser.add_argument("--steps", type=int, default=40, help="steps per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--mixed-precision", default="none", help="none | mixed_bfloat16 | mixed_float16")
    parser.add_argument("--jit-compile", action="store_true")
    parser.add_argument("--peak-gflops", type=float, default=290.0)
    args = parser.parse_args(argv)

    data_overrides = {"sources": [args.data], **({"character": None} if args.no_character else {})}
    if args.pad_to:
        data_overrides["sequence_length"] = args.pad_to
    config = build_config(args.preset, overrides={
        "data": data_overrides,
        "train": {"batch_size": args.batch_size, "jit_compile": args.jit_compile, "mixed_precision": args.mixed_precision},
    })
    dtype = policy_name(resolve_precision(args.mixed_precision))
    data = prepared_data(config)
    vocabulary_size = len(data.vocabulary)
    common = dict(sequence_length=config.data.sequence_length, batch_size=args.batch_size, shuffle=True, seed=0)
    pad_to = config.data.sequence_length
    pipelines = {
        "both sides bucketed": make_dataset(data.train, data.tokenizer, **common),
        "encoder bucketed": make_dataset(data.train, data.tokenizer, buckets=ENCODER_ONLY, **common),
        f"padded to {pad_to}": make_dataset(data.train, data.tokenizer, pad_to=pad_to, **common),
    }
    arms = {name: StepMeter(compiled_model(config, vocabulary_size, dtype), dataset)
            for name, dataset in pipelines.items()}
    alternate(arms, args.rounds, args.steps, args.warmup_steps)  # The warm-up traces every bucket shape.

    print(cpu_line())
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
    both, encoder, padded = rates.values()
    print(f"ratios of non-padding tokens per second: both sides bucketed / encoder bucketed {both / encoder:.2f}x, "
          f"/ padded {both / padded:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
