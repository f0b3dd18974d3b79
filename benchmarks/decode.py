"""Decoding speed: cached decoding against full re-computation, same weights, both compiled graphs.

    python benchmarks/decode.py --run-dir runs/seed-ChatbotData [--questions 100]

For greedy, beam 4 and top-p it prints, for each of cached / full re-computation:
p50 and p95 latency of one question's reply (batch 1) and reply tokens per second
at batch 32, all replies exactly `--reply-tokens` long (no early [END]), and the ratio.
Questions come from the run's validation split.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from data_pipeline.examples import load_examples  # noqa: E402
from model.generation import DecodingSettings, ReplyGenerator  # noqa: E402
from model.run_files import load_run  # noqa: E402


def latencies_ms(generator, encoded: list, settings, warmup: int = 3) -> np.ndarray:
    for ids in encoded[:warmup]:
        generator.generate_ids(ids, settings)
    times = []
    for ids in encoded:
        start = time.perf_counter()
        generator.generate_ids(ids, settings)
        times.append((time.perf_counter() - start) * 1000)
    return np.array(times)


def tokens_per_second(generator, batch_ids, settings, repeats: int) -> float:
    generator.generate_ids(batch_ids, settings)  # Warm-up (trace).
    start = time.perf_counter()
    for _ in range(repeats):
        generator.generate_ids(batch_ids, settings)
    seconds = (time.perf_counter() - start) / repeats
    return batch_ids.shape[0] * settings.max_reply_length / seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--reply-tokens", type=int, default=24)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    run = load_run(args.run_dir)
    questions = [e.context for e in load_examples(Path(args.run_dir) / "data" / "validation.jsonl")]
    cached, full = run.generator(), run.generator(use_cache=False)
    single = [cached.encode([q]) for q in questions[: args.questions]]
    batch = cached.encode(questions[: args.batch])
    base = DecodingSettings(max_reply_length=args.reply_tokens, stop_at_end=False)
    strategies = {
        "greedy": base,
        "beam 4": DecodingSettings(strategy="beam", num_beams=4, max_reply_length=args.reply_tokens, stop_at_end=False),
        "top-p 0.9": DecodingSettings(strategy="sample", top_p=0.9, seed=0, max_reply_length=args.reply_tokens, stop_at_end=False),
    }
    print(f"run {args.run_dir}; {len(single)} questions at batch 1, batch {args.batch}; {args.reply_tokens}-token replies")
    header = f"{'strategy':<10} {'decoder':<8} {'p50 ms':>8} {'p95 ms':>8} {'tokens/s @' + str(args.batch):>14}"
    print(header)
    print("-" * len(header))
    for name, settings in strategies.items():
        rows = {}
        for label, generator in (("cached", cached), ("full", full)):
            times = latencies_ms(generator, single, settings)
            rate = tokens_per_second(generator, batch, settings, args.repeats)
            rows[label] = (np.percentile(times, 50), np.percentile(times, 95), rate)
            print(f"{name:<10} {label:<8} {rows[label][0]:8.1f} {rows[label][1]:8.1f} {rate:14.0f}")
        c, f = rows["cached"], rows["full"]
        print(f"{name:<10} {'ratio':<8} {f[0] / c[0]:7.2f}x {f[1] / c[1]:7.2f}x {c[2] / f[2]:13.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
