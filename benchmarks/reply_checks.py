"""Reply hygiene on held-out questions: do replies stop by themselves, and do they loop?

    python -m benchmarks.reply_checks --run-dir runs/seed-ChatbotData [--questions 100]

For each strategy it prints the share of replies that end with [END] (rather than
hitting the length cap) and how many replies repeat one 2-token sequence three
or more times, on the first N questions of the run's validation split.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from config import END_ID, PAD_ID, DecodingSettings  # noqa: E402
from data_pipeline.examples import load_examples  # noqa: E402
from model.run_files import load_run  # noqa: E402
from run_directory import RunDirectory  # noqa: E402


def repeats_a_bigram(ids: list[int], times: int = 3) -> bool:
    tokens = [t for t in ids if t not in (PAD_ID, END_ID)]
    counts = Counter(zip(tokens, tokens[1:]))
    return any(n >= times for n in counts.values())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--max-reply-length", type=int, default=24)
    args = parser.parse_args(argv)

    run = load_run(args.run_dir)
    examples = load_examples(RunDirectory(args.run_dir).validation_split)[: args.questions]
    generator = run.generator()
    encoder_ids = generator.encode([e.context for e in examples])
    n = args.max_reply_length
    strategies = {
        "greedy": DecodingSettings(max_reply_length=n, no_repeat_ngram_size=0),
        "greedy, no-repeat 3": DecodingSettings(max_reply_length=n, no_repeat_ngram_size=3),
        "beam 4, no-repeat 3": DecodingSettings(strategy="beam", max_reply_length=n, no_repeat_ngram_size=3),
        "top-p 0.9, no-repeat 3": DecodingSettings(strategy="sample", top_p=0.9, seed=0, max_reply_length=n,
                                                   no_repeat_ngram_size=3),
    }
    print(f"{len(examples)} validation questions of {args.run_dir}, replies up to {n} tokens")
    print(f"{'strategy':<24} {'ends with [END]':>16} {'bigram x3 loops':>16}")
    for name, settings in strategies.items():
        replies = generator.generate_ids(encoder_ids, settings).tolist()
        ended = sum(END_ID in r for r in replies) / len(replies)
        loops = sum(repeats_a_bigram(r) for r in replies)
        print(f"{name:<24} {ended:>15.1%} {loops:>16d}")
    texts = generator.reply([e.context for e in examples[:5]], strategies["beam 4, no-repeat 3"])
    for example, text in zip(examples[:5], texts):
        print(f"  {example.context} -> {text}   (reference: {example.response})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
