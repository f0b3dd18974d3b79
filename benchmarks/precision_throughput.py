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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.harness import SHARED_CHATBOT_DATA, StepMeter, alternate, compiled_model, prepared_data  # noqa: E402
from config import build_config  # noqa: E402
from data_pipeline.dataset import make_dataset  # noqa: E402
from model.precision import policy_name, resolve_precision  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHARED_CHATBOT_DATA))
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
    data = prepared_data(config)
    dataset = make_dataset(data.train, data.tokenizer, sequence_length=config.data.sequence_length,
                           batch_size=config.train.batch_size, shuffle=True, seed=0)
    arms = {precision: StepMeter(compiled_model(config, len(data.vocabulary), policy_name(precision)), dataset)
            for precision in ("none", candidate)}
    alternate(arms, args.rounds, args.steps, args.warmup_steps)

    print(f"preset {args.preset}, batch {config.train.batch_size}, {args.rounds} x {args.steps} steps each "
          f"after {args.warmup_steps} warm-up")
    rates = {}
    for precision, meter in arms.items():
        rates[precision] = meter.real_tokens_per_second()
        name = "float32" if precision == "none" else precision
        print(f"{name:<16} {rates[precision]:>8.0f} real tokens/s {meter.ms_per_step():>8.0f} ms/step")
    print(f"ratio ({candidate} / float32): {rates[candidate] / rates['none']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
