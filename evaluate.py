"""Judge a trained run by its replies: `python evaluate.py --run-dir RUN [--data FILE] [--strategies greedy,beam,top-p]`.

Reports teacher-forced loss / perplexity / token accuracy (non-padding) and, for each
decoding strategy, BLEU and chrF (sacrebleu), distinct-1/2, mean reply length, the
share of replies ending with [END] and of exact matches. Held-out examples are the
run's validation split unless --data names a file (CSV, as for training). Writes
<out>/eval.json, report.md, the replies, PNG plots, and TensorBoard scalars under
<run>/logs/eval (see evaluation/report.py). --probes FILE (one question per line)
adds their answers to the report.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--data", help="held-out CSV (default: the run's validation split)")
    parser.add_argument("--strategies", "--strategy", default="greedy,beam,top-p",
                        help="comma-separated: greedy, beam, top-p, greedy-plain, sample")
    parser.add_argument("--limit", type=int, default=1000, help="evaluate the first N examples (0: all)")
    parser.add_argument("--probes", help="a file with one question per line")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", help="output folder (default: <run-dir>/eval)")
    return parser.parse_args(argv)


def read_probes(path: str | None) -> list[str]:
    if not path:
        return []
    probes = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if not probes:
        raise ValueError(f"{path}: no questions (one per line)")
    return probes


def main(argv=None) -> int:
    args = parse_args(argv)
    from data_pipeline.sources import DataError
    from evaluation.evaluate_run import evaluate_run
    from evaluation.report import strategy_table, write_report

    try:
        evaluation = evaluate_run(
            args.run_dir, args.data, [s.strip() for s in args.strategies.split(",") if s.strip()],
            args.limit or None, read_probes(args.probes), args.batch_size,
        )
    except (ValueError, FileNotFoundError, DataError) as error:
        print(f"evaluate.py: {error}", file=sys.stderr)
        return 2
    out = write_report(evaluation, args.out or Path(args.run_dir) / "eval")
    lk = evaluation.likelihood
    print(f"{len(evaluation.examples)} examples from {evaluation.source}: loss {lk['loss']:.4f}, "
          f"perplexity {lk['perplexity']:.2f}, token accuracy {lk['token_accuracy']:.4f}")
    print(strategy_table(evaluation))
    print(f"report: {out / 'report.md'}  ({evaluation.seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
