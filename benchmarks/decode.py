"""Decoding speed: cached decoding against full re-computation, same weights, all compiled graphs.

    python -m benchmarks.decode --run-dir runs/seed-ChatbotData [--questions 100]

For greedy, beam 4 and top-p it prints, for each decoder — fused (the cached step
of `model/fused_decoding.py`, the default), keras-hub (the cached `TransformerDecoder`
step) and full re-computation — p50 and p95 latency of one question's reply
(batch 1) and reply tokens per second at batch 32, all replies exactly
`--reply-tokens` long (no early [END]), and the ratios of full re-computation to
each cached decoder. Questions come from the run's validation split. The
decoders are measured in alternating rounds, so a change in machine load hits all.

It also prints a floor for one question's greedy reply: a compiled loop that only
multiplies one [1, D] vector through every kernel a decoder step reads (all
layers' projections and feed-forward, and the [D, V] output projection) once per
token. At batch 1 a step is bound by reading those weights from memory, so no
decoder with these weights in float32 does much better on this machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.harness import latencies_ms  # noqa: E402
from config import DecodingSettings  # noqa: E402
from data_pipeline.examples import load_examples  # noqa: E402
from model.generation import DECODERS  # noqa: E402
from model.run_files import load_run  # noqa: E402
from run_directory import RunDirectory  # noqa: E402


def tokens_per_second(generator, batch_ids, settings, repeats: int) -> float:
    generator.generate_ids(batch_ids, settings)  # Warm-up (trace).
    start = time.perf_counter()
    for _ in range(repeats):
        generator.generate_ids(batch_ids, settings)
    seconds = (time.perf_counter() - start) / repeats
    return batch_ids.shape[0] * settings.max_reply_length / seconds


def weight_read_floor_ms(decoder, steps: int, repeats: int = 200) -> tuple[float, float]:
    """(p50 ms of `steps` matmul-only decoder steps at batch 1, MB of weights each step reads)."""
    kernels = [v for layer in decoder.layers for name, v in layer.items()
               if name.endswith("_kernel") and not name.startswith("cross_kv")]  # cross K/V: once per request.
    kernels.append(decoder.output_kernel)

    @tf.function
    def loop(x):
        def body(i, x):
            total = tf.zeros([])
            for kernel in kernels:
                total += tf.reduce_sum(tf.matmul(x[:, : kernel.shape[0]], kernel))
            return i + 1, x + 0.0 * total  # Each step depends on the last, as in decoding.
        return tf.while_loop(lambda i, x: i < steps, body, (0, x))[1]

    x = tf.ones([1, max(k.shape[0] for k in kernels)])
    loop(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        loop(x).numpy()
        times.append((time.perf_counter() - start) * 1000)
    megabytes = sum(int(np.prod(k.shape)) * k.dtype.size for k in kernels) / 1e6
    return float(np.percentile(times, 50)), megabytes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--reply-tokens", type=int, default=24)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds over the questions")
    args = parser.parse_args(argv)

    run = load_run(args.run_dir)
    questions = [e.context for e in load_examples(RunDirectory(args.run_dir).validation_split)]
    generators = {name: run.generator(decoder=name) for name in DECODERS}
    single = [generators["fused"].encode([q]) for q in questions[: args.questions]]
    batch = generators["fused"].encode(questions[: args.batch])
    common = dict(max_reply_length=args.reply_tokens, stop_at_end=False, no_repeat_ngram_size=0)
    strategies = {
        "greedy": DecodingSettings(**common),
        "beam 4": DecodingSettings(strategy="beam", num_beams=4, **common),
        "top-p 0.9": DecodingSettings(strategy="sample", top_p=0.9, seed=0, **common),
    }
    print(f"run {args.run_dir}; {len(single)} questions at batch 1, batch {args.batch}; {args.reply_tokens}-token replies")
    header = f"{'strategy':<10} {'decoder':<16} {'p50 ms':>8} {'p95 ms':>8} {'tokens/s @' + str(args.batch):>14}"
    print(header)
    print("-" * len(header))
    for name, settings in strategies.items():
        times = {decoder: [] for decoder in generators}
        for generator in generators.values():
            latencies_ms(lambda ids: generator.generate_ids(ids, settings), single[:3])  # Trace and warm up.
        for round_ in range(args.rounds):  # Alternate decoders: a load change hits all of them.
            part = single[round_ :: args.rounds]
            for decoder, generator in generators.items():
                times[decoder] += list(latencies_ms(lambda ids: generator.generate_ids(ids, settings), part, warmup=0))
        rows = {}
        for decoder, generator in generators.items():
            rate = tokens_per_second(generator, batch, settings, args.repeats)
            rows[decoder] = (np.percentile(times[decoder], 50), np.percentile(times[decoder], 95), rate)
            print(f"{name:<10} {decoder:<16} {rows[decoder][0]:8.1f} {rows[decoder][1]:8.1f} {rate:14.0f}")
        full = rows["full"]
        for decoder in ("fused", "keras_hub"):
            c = rows[decoder]
            label = f"full / {decoder}"
            print(f"{name:<10} {label:<16} {full[0] / c[0]:7.2f}x {full[1] / c[1]:7.2f}x {c[2] / full[2]:13.2f}x")
        if name == "greedy":
            greedy_fused_p50 = rows["fused"][0]
    floor_ms, megabytes = weight_read_floor_ms(generators["fused"].decoder, args.reply_tokens)
    print(f"floor: {args.reply_tokens} matmul-only steps reading {megabytes:.1f} MB of weights each: "
          f"{floor_ms:.1f} ms p50 ({megabytes * args.reply_tokens / floor_ms:.0f} GB/s); "
          f"fused greedy is {greedy_fused_p50 / floor_ms:.2f}x the floor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
