"""Judge a trained run by its replies: `python evaluate.py --run-dir RUN [--data FILE] [--strategies greedy,beam,top-p]`.

Reports teacher-forced loss / perplexity / token accuracy (non-padding) and, for each
strategy (the served reply path, `serving/replies.py`), BLEU and chrF (sacrebleu),
distinct-1/2, mean reply length, the shares of replies ending with [END], of exact
matches, of retrieved replies and of the most common reply. `retrieval` (the lookup:
the most similar training key's response) is the anchor every report shows. Held-out examples are the
run's validation split unless --data names a file (any training format). Writes
<out>/eval.json, report.md, the replies, PNG plots, and TensorBoard scalars under
<run>/logs/eval (see evaluation/report.py). --probes FILE (one question per line)
adds their answers to the report.

SSA (evaluation/ssa.py; rated blind by shared/data/SSA_GUIDELINE.md):
  --ssa-labels FILE          ratings in the shape of shared/data/ssa_validation_labels.jsonl
                             (repeatable): SSA per strategy with the rated count and share (none
                             under 90% rated); the unrated replies go to <out>/ssa_sheet.jsonl
  --exclude-rated FILE       leave out the questions FILE rates (SSA outside a label set)
  --merge-ratings SHEET --into FILE
                             append a filled-in sheet to a label file

Multi-turn and character runs (evaluation/context_use.py):
  --context-use              loss of held-out responses with their real context, without
                             it, and with another dialogue's (writes context_use.json)
  --character-probes FILE    who-are-you questions; counts replies naming the run's
                             character (writes character.json)
  --user-probes FILE         messages about the user's own name, pets, family; counts replies
                             naming the character, which should be none (writes user_probes.json)
Conversations: python -m evaluation.conversations --run-dir RUN (scripted six-turn chats, SSA).
  --only-source TEXT         keep held-out examples whose source contains TEXT
                             (e.g. ChatbotData, to compare runs on one source)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from errors import UserError, run_command
from run_directory import RunDirectory

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", help="the run to evaluate (required unless --merge-ratings)")
    parser.add_argument("--data", help="held-out dialogue file, any training format (default: the run's validation split)")
    parser.add_argument("--strategies", "--strategy", default="retrieval,greedy,beam,top-p,hybrid",
                        help="comma-separated: retrieval (the lookup), greedy, beam, top-p, hybrid (what "
                             "serving_default answers), hybrid-beam, greedy-plain, sample")
    parser.add_argument("--limit", type=int, default=1000, help="evaluate the first N examples (0: all)")
    parser.add_argument("--spread", action="store_true",
                        help="with --limit N: N examples evenly spaced over the held-out set, not the first N")
    parser.add_argument("--probes", help="a file with one question per line")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", help="output folder (default: <run-dir>/eval)")
    parser.add_argument("--only-source", help="keep held-out examples whose source contains this text")
    parser.add_argument("--context-use", action="store_true", help="measure how much the model uses context")
    parser.add_argument("--character-probes", help="a file of who-are-you questions (one per line)")
    parser.add_argument("--user-probes", help="a file of messages about the user themself (one per line)")
    parser.add_argument("--ssa-labels", action="append", default=[], metavar="FILE",
                        help="blind SSA ratings (JSON lines, the shape of shared/data/ssa_validation_labels.jsonl); "
                             "repeat for several files. Reports SSA per strategy and writes the unrated replies to "
                             "<out>/ssa_sheet.jsonl")
    parser.add_argument("--exclude-rated", action="append", default=[], metavar="FILE",
                        help="leave out the held-out questions this label file rates (repeatable): SSA on "
                             "questions outside a label set")
    parser.add_argument("--merge-ratings", metavar="SHEET",
                        help="append a filled ssa_sheet.jsonl to the label file --into names, and exit")
    parser.add_argument("--into", metavar="FILE", help="the label file --merge-ratings appends to")
    args = parser.parse_args(argv)
    if args.merge_ratings and not args.into:
        parser.error("--merge-ratings needs --into FILE")
    if not args.merge_ratings and not args.run_dir:
        parser.error("--run-dir is required")
    return args


def read_probes(path: str | None) -> list[str]:
    if not path:
        return []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: cannot read the questions file: {error}") from error
    lines = (line.strip() for line in text.splitlines())
    probes = [line for line in lines if line and not line.startswith("#")]  # "#": a comment.
    if not probes:
        raise UserError(f"{path}: no questions (one per line)")
    return probes


def extra_reports(args, evaluation, out: Path) -> None:
    """--context-use and --character-probes: print a table, write JSON beside report.md."""
    import json

    from data_pipeline.loading import run_character
    from evaluation.context_use import character_probe, context_use
    from evaluation.report import context_use_table

    run = evaluation.run
    if args.context_use:
        result = context_use(run, evaluation.examples, args.batch_size)
        (out / "context_use.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
        print(context_use_table(result))
    probes = {"character.json": (args.character_probes, True), "user_probes.json": (args.user_probes, False)}
    probes = {name: probe for name, probe in probes.items() if probe[0]}
    character = run_character(run.run_dir) if probes else None
    if probes and character is None:
        raise UserError(f"{run.run_dir} was trained without a character (no character.yaml)")
    for file_name, (path, should_name) in probes.items():
        result = character_probe(run, read_probes(path), character.name)
        (out / file_name).write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
        for row in result["replies"]:
            print(f"  {'✓' if row['names_character'] == should_name else '✗'} {row['question']} -> {row['reply']}")
        print(f"{result['named']}/{result['asked']} replies name {character.name} ({path}; "
              f"{'all' if should_name else 'none'} should)")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.merge_ratings:
        from evaluation.ssa import merge_rating_sheet

        added = merge_rating_sheet(args.merge_ratings, args.into)
        print(f"{added} rated replies added to {args.into}")
        return 0
    from evaluation.evaluate_run import evaluate_run
    from evaluation.report import ssa_table, strategy_table, write_report

    strategies = [s.strip() for s in args.strategies.split(",") if s.strip() and s.strip() != "none"]
    evaluation = evaluate_run(
        args.run_dir, args.data, strategies, args.limit or None, read_probes(args.probes), args.batch_size,
        args.only_source, args.ssa_labels, args.exclude_rated, args.spread,
    )
    out = write_report(evaluation, args.out or RunDirectory(args.run_dir).evaluation)
    extra_reports(args, evaluation, out)
    lk = evaluation.likelihood
    print(f"{len(evaluation.examples)} examples from {evaluation.source}: loss {lk['loss']:.4f}, "
          f"perplexity {lk['perplexity']:.2f}, token accuracy {lk['token_accuracy']:.4f}")
    print(strategy_table(evaluation))
    if evaluation.ssa:
        print(ssa_table(evaluation))
        print(f"{len(evaluation.unrated)} distinct replies had no rating: {out / 'ssa_sheet.jsonl'}")
    print(f"report: {out / 'report.md'}  ({evaluation.seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(run_command("evaluate.py", main))
