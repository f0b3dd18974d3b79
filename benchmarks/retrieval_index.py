"""The retrieval index's memory and query cost: a run's training split and a synthetic index 20x its size.

    python -m benchmarks.retrieval_index --run-dir runs/seed-ChatbotData [--synthetic 200000]

Builds the index (`model/retrieval.py`) from the run's `data/train.jsonl` and from
`--synthetic` keys made of those keys with random syllables swapped in (so they are
distinct and have Korean n-gram statistics), then times `search` (top 8) in a compiled
graph, one validation question at a time and 32 at a time, both indexes side by side
in alternating rounds. Prints bytes, postings, build seconds and p50/p95 per query.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

import numpy as np
import tensorflow as tf


from data_pipeline.examples import Example, load_examples  # noqa: E402
from config import RetrievalConfig  # noqa: E402
from model.retrieval import RetrievalIndex  # noqa: E402
from run_directory import RunDirectory  # noqa: E402


def synthetic_examples(examples: list[Example], count: int, seed: int = 0) -> list[Example]:
    """`count` distinct keys: training keys with one or two syllables replaced at random."""
    rng = random.Random(seed)
    syllables = sorted({c for e in examples for c in e.context if "가" <= c <= "힣"})
    made, seen = [], set()
    while len(made) < count:
        base = rng.choice(examples)
        characters = list(base.context)
        for _ in range(rng.randint(1, 2)):
            characters[rng.randrange(len(characters))] = rng.choice(syllables)
        key = "".join(characters)
        if key not in seen:
            seen.add(key)
            made.append(Example(key, base.response))
    return made


def time_queries(search, batches: list[list[str]], rounds: int) -> np.ndarray:
    times = []
    for _ in range(rounds):
        for batch in batches:
            started = time.perf_counter()
            search(tf.constant(batch))[0].numpy()
            times.append(time.perf_counter() - started)
    return np.array(times) * 1000


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--synthetic", type=int, default=200_000)
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-key-share", type=float, default=RetrievalConfig.max_key_share)
    args = parser.parse_args(argv)
    run = RunDirectory(args.run_dir)
    train = load_examples(run.train_split)
    questions = [e.context for e in load_examples(run.validation_split)[: args.questions]]
    indexes = {}
    for name, examples in (("training split", train), (f"synthetic {args.synthetic:,}", synthetic_examples(train, args.synthetic))):
        started = time.perf_counter()
        index = RetrievalIndex.for_run(examples, RetrievalConfig(max_key_share=args.max_key_share))  # As train.py does.
        indexes[name] = (index, time.perf_counter() - started)
    spec = [tf.TensorSpec([None], tf.string)]
    searches = {name: tf.function(lambda keys, index=index: index.search(keys, 8), input_signature=spec)
                for name, (index, _) in indexes.items()}
    singles, batches = [[q] for q in questions], [questions[i:i + 32] for i in range(0, len(questions) - 31, 32)]
    for search in searches.values():  # Trace and warm up.
        time_queries(search, singles[:5] + batches[:1], 1)
    results = {name: ([], []) for name in searches}
    for _ in range(args.rounds):  # Alternating rounds: both indexes see the same machine state.
        for name, search in searches.items():
            results[name][0].extend(time_queries(search, singles, 1))
            results[name][1].extend(time_queries(search, batches, 1))
    print(f"run {run}; {len(singles)} questions one at a time and {len(batches)} batches of 32; top 8")
    print(f"{'index':<20} {'entries':>9} {'postings':>11} {'MB':>7} {'build s':>8} "
          f"{'p50 ms (1)':>11} {'p95 ms (1)':>11} {'p50 ms (32)':>12}")
    for name, (index, build_seconds) in indexes.items():
        single, batch = np.array(results[name][0]), np.array(results[name][1])
        print(f"{name:<20} {index.size:>9,} {int(index.postings_rows.shape[0]):>11,} {index.nbytes() / 1e6:>7.1f} "
              f"{build_seconds:>8.1f} {np.percentile(single, 50):>11.2f} {np.percentile(single, 95):>11.2f} "
              f"{np.percentile(batch, 50):>12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
