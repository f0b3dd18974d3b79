"""Where a training step's time goes: forward, backward, output projection, optimizer.

    python -m benchmarks.train_step_profile [--data ../shared/data/ChatbotData.csv]
        [--mixed-precision none] [--trace-dir DIR]

The seed model, its real bucketed batches (the training pipeline, word dropout
included) and the default optimizer (AdamW + weight averaging). Each part is its own
compiled function, timed in alternating rounds over the same batches so that machine
drift hits all of them:

    full step        what `fit` runs: forward, loss, backward, AdamW + EMA, metrics
    forward + loss   the model and the label-smoothed loss, no gradients
    forward+backward the gradients, no optimizer
    optimizer        AdamW + EMA applied to fixed gradients
    output head      tied-embedding projection + loss + their gradients, at the batch's
                     decoder shape (all positions) and at its non-padding positions only

`--trace-dir` also records a `tf.profiler` trace of a few full steps there, for
TensorBoard's profile plugin (`pip install tensorboard-plugin-profile`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from benchmarks.harness import SHARED_CHATBOT_DATA, compiled_model, prepared_data  # noqa: E402
from config import PAD_ID, build_config  # noqa: E402
from model.precision import policy_name, resolve_precision  # noqa: E402
from model.training import make_pipelines  # noqa: E402


def part_functions(model, batches):
    """name -> function(batch index) for every part measured."""
    loss_fn = model.loss
    variables = model.trainable_variables
    fixed_grads = [tf.random.normal(v.shape, stddev=1e-3) for v in variables]
    embedding = model.token_embedding

    def random_hidden(targets):  # Decoder states for the head alone, made before timing starts.
        return tf.random.normal([*targets.shape, model.hidden_dim], dtype=model.compute_dtype), targets

    all_positions = [random_hidden(targets) for _, targets in batches]
    real_positions = [random_hidden(tf.boolean_mask(targets, targets != PAD_ID)[None, :]) for _, targets in batches]

    @tf.function(reduce_retracing=True)
    def forward(inputs, targets):
        return loss_fn(targets, model(inputs, training=True))

    @tf.function(reduce_retracing=True)
    def forward_backward(inputs, targets):
        with tf.GradientTape() as tape:
            loss = loss_fn(targets, model(inputs, training=True))
        return tape.gradient(loss, variables)

    @tf.function
    def optimizer_step():
        model.optimizer.apply(fixed_grads, variables)

    @tf.function(reduce_retracing=True)
    def head(hidden, targets):
        with tf.GradientTape() as tape:
            tape.watch(hidden)
            loss = loss_fn(targets, model.logits(hidden))
        return tape.gradient(loss, [hidden, embedding.embeddings])

    return {
        "full step": lambda i: model.train_on_batch(*batches[i]),
        "forward + loss": lambda i: forward(*batches[i]).numpy(),
        "forward+backward": lambda i: forward_backward(*batches[i])[0].numpy(),
        "optimizer": lambda i: optimizer_step(),
        "output head, all positions": lambda i: head(*all_positions[i])[0].numpy(),
        "output head, real positions": lambda i: head(*real_positions[i])[0].numpy(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHARED_CHATBOT_DATA))
    parser.add_argument("--preset", default="seed")
    parser.add_argument("--batches", type=int, default=16, help="real training batches each part runs over")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mixed-precision", default="none")
    parser.add_argument("--trace-dir", help="also write a tf.profiler trace of a few full steps here")
    args = parser.parse_args(argv)

    config = build_config(args.preset, overrides={"data": {"sources": [args.data]},
                                                  "train": {"mixed_precision": args.mixed_precision}})
    data = prepared_data(config)
    train_ds, _ = make_pipelines(config, data)
    batches = list(train_ds.take(args.batches))
    model = compiled_model(config, len(data.vocabulary), policy_name(resolve_precision(args.mixed_precision)))
    parts = part_functions(model, batches)
    seconds = dict.fromkeys(parts, 0.0)
    for round_ in range(args.rounds + 1):  # Round 0 traces every shape and is not counted.
        for name, run in parts.items():
            start = time.perf_counter()
            for i in range(len(batches)):
                run(i)
            if round_:
                seconds[name] += time.perf_counter() - start
    if args.trace_dir:
        tf.profiler.experimental.start(args.trace_dir)
        for inputs, targets in batches[:4]:
            model.train_on_batch(inputs, targets)
        tf.profiler.experimental.stop()
        print(f"tf.profiler trace of 4 full steps: {args.trace_dir}")

    steps = args.rounds * len(batches)
    real = sum(int(tf.math.count_nonzero(t)) for _, t in batches)
    positions = sum(int(tf.size(t)) for _, t in batches)
    full = seconds["full step"] / steps
    print(f"preset {args.preset}, {args.mixed_precision}, {len(batches)} real batches of {config.train.batch_size} "
          f"({1 - real / positions:.1%} of target positions padding), {args.rounds} alternating rounds")
    print(f"{'part':<30} {'ms/step':>8} {'of full step':>13}")
    for name, total in seconds.items():
        print(f"{name:<30} {1000 * total / steps:>8.1f} {total / steps / full:>13.1%}")
    backward = (seconds["forward+backward"] - seconds["forward + loss"]) / steps
    rest = full - seconds["forward+backward"] / steps - seconds["optimizer"] / steps
    print(f"{'(backward alone)':<30} {1000 * backward:>8.1f} {backward / full:>13.1%}")
    print(f"{'(metrics, fit overhead)':<30} {1000 * rest:>8.1f} {rest / full:>13.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
