"""Held-out corpus dialogues, each bot turn answered with the real history, and their SSA.

    python -m evaluation.held_out_dialogues --run-dir RUN [--source haru_dialogues] [--dialogues 30]
        [--systems served,lookup,reference] [--server URL] [--ssa-labels FILE ...] [--out DIR]

The dialogues are the run's own validation split of a multi-turn source (by default the
character's corpus): split by dialogue, so none of their turns was trained on or is in the
retrieval index. They are rebuilt from `data/validation.jsonl` (each bot turn's example holds
its question and reply, in order). `--dialogues N` takes N of them evenly over the split
(the same N for every run of one corpus), and every bot turn of each is played: the history
is the corpus' own turns before it (the reference history, not the bot's earlier replies), and
each system answers it:

    served     the `chat` signature with its default controls (in process, or through
               `--server`: REST `http://host:8501` or gRPC `host:8500`)
    generated  the same with `retrieval: false` (the generator alone)
    lookup     the response of the most similar training key (what the encoder sees -> response)
    reference  the corpus' own reply: the human anchor

Every (conversation so far, reply) is rendered as `evaluation/conversations.py` renders it and
looked up in the label files; the unrated ones go to a blind sheet (`<out>/ssa_sheet.jsonl`,
shuffled, no system named). Writes `<out>/turns.jsonl` (every turn, every system) and
`<out>/dialogues.md` (the transcripts).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from errors import UserError, run_command

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SYSTEMS = ("served", "generated", "lookup", "reference")
DEFAULT_SYSTEMS = ("served", "lookup", "reference")


@dataclass(frozen=True)
class HeldOutDialogue:
    source: str  # "file:line" of the dialogue in its corpus.
    turns: tuple[str, ...]  # user, bot, user, bot, ... (the corpus' own turns).


@dataclass(frozen=True)
class ReferenceTurn:
    dialogue: str  # Its source.
    index: int  # Position of the bot turn in the dialogue (1, 3, 5, ...).
    history: tuple[str, ...]  # The corpus' turns before it, the user's message last.
    reference: str  # The corpus' reply.


def held_out_dialogues(validation_examples, source: str) -> list[HeldOutDialogue]:
    """The validation split's dialogues of the corpus whose file name contains `source`, rebuilt whole.

    Each bot turn's example gives its question and its reply, in order; a dialogue is kept when
    every example's earlier turns agree with the turns rebuilt before it (the bot answering
    every user turn, as the 하루 corpus does).
    """
    from data_pipeline.examples import SEP_TEXT, question_of

    grouped: OrderedDict[str, list] = OrderedDict()
    for example in validation_examples:
        if source in Path(example.source.rsplit(":", 1)[0]).name:
            grouped.setdefault(example.source, []).append(example)
    dialogues = []
    for dialogue_source, examples in grouped.items():
        turns: list[str] = []
        for example in examples:
            earlier = [marked.split(" ", 1)[1] for marked in example.context.split(SEP_TEXT)[:-1]]  # Marks dropped.
            if earlier and earlier != turns[-len(earlier):]:
                break
            turns += [question_of(example), example.response]
        else:
            dialogues.append(HeldOutDialogue(dialogue_source, tuple(turns)))
    return dialogues


def spread(dialogues: list[HeldOutDialogue], count: int | None) -> list[HeldOutDialogue]:
    """`count` dialogues taken evenly over the list (all of them for None)."""
    if count is None or count >= len(dialogues):
        return list(dialogues)
    step = len(dialogues) / count
    return [dialogues[int(i * step)] for i in range(count)]


def reference_turns(dialogues: list[HeldOutDialogue]) -> list[ReferenceTurn]:
    """Every bot turn of the dialogues with the corpus' history before it."""
    return [ReferenceTurn(d.source, i, d.turns[:i], d.turns[i]) for d in dialogues for i in range(1, len(d.turns), 2)]


def answer(turns: list[ReferenceTurn], systems, replies=None, client=None, batch_size: int = 16) -> dict[str, list[str]]:
    """system -> one reply per turn. `replies` (`RunReplies`) answers in process; `client` answers `served`
    and `generated` through a server instead."""
    from config import DecodingSettings
    from data_pipeline.context import format_history

    histories = [list(t.history) for t in turns]
    answered: dict[str, list[str]] = {}
    for system in systems:
        if system == "reference":
            answered[system] = [t.reference for t in turns]
            continue
        out: list[str] = []
        for start in range(0, len(histories), batch_size):
            batch = histories[start:start + batch_size]
            if system == "lookup":
                out += replies.lookup([format_history(h, replies.context_turns) for h in batch])
            elif client is not None:
                out += client.chat(batch, seed=0, retrieval=system == "served")
            else:
                out += replies.chat(batch, DecodingSettings(seed=0, retrieval=system == "served"))
        answered[system] = out
    return answered


def transcript(dialogues: list[HeldOutDialogue], turns: list[ReferenceTurn], answered: dict[str, list[str]]) -> str:
    from evaluation.conversations import SPEAKERS

    by_dialogue: dict[str, list[int]] = {}
    for position, turn in enumerate(turns):
        by_dialogue.setdefault(turn.dialogue, []).append(position)
    lines = []
    for dialogue in dialogues:
        lines.append(f"## {dialogue.source}\n")
        for position in by_dialogue.get(dialogue.source, []):
            turn = turns[position]
            lines.append(f"- {SPEAKERS[0]}: {turn.history[-1]}")
            lines += [f"  - {system}: {replies[position]}" for system, replies in answered.items()]
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--source", default="haru_dialogues", help="the corpus: a part of its file name")
    parser.add_argument("--dialogues", type=int, default=30, help="held-out dialogues played, evenly over the split")
    parser.add_argument("--systems", default=",".join(DEFAULT_SYSTEMS), help=f"comma-separated of {', '.join(SYSTEMS)}")
    parser.add_argument("--server", help="answer through a server: http://host:8501 (REST) or host:8500 (gRPC)")
    parser.add_argument("--model-name", default="chatbot", help="the served model's name (with --server)")
    parser.add_argument("--ssa-labels", action="append", default=[], metavar="FILE")
    parser.add_argument("--out", help="default: <run-dir>/eval/held_out_dialogues")
    args = parser.parse_args(argv)

    from data_pipeline.examples import load_examples
    from evaluation.conversations import render
    from evaluation.ssa import load_labels, ssa_score, unrated, write_rating_sheet
    from model.run_files import load_run
    from run_directory import RunDirectory
    from serving.replies import RunReplies

    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown or not systems:
        raise UserError(f"--systems: unknown {unknown}; choose from {', '.join(SYSTEMS)}")
    if args.dialogues is not None and args.dialogues < 1:
        raise UserError(f"--dialogues {args.dialogues}: give at least 1")
    run_dir = RunDirectory(args.run_dir)
    if not run_dir.validation_split.exists():
        raise UserError(f"{run_dir.root}: no {run_dir.validation_split.name}; is it a run directory?")
    dialogues = spread(held_out_dialogues(load_examples(run_dir.validation_split), args.source), args.dialogues)
    if not dialogues:
        raise UserError(f"{run_dir.validation_split}: no held-out dialogue of a corpus named like {args.source!r}")
    turns = reference_turns(dialogues)
    replies = RunReplies(load_run(args.run_dir), retrieval=True) if set(systems) - {"reference"} else None
    client = None
    if args.server:
        from serving.client import connect

        client = connect(args.server, args.model_name)
    answered = answer(turns, systems, replies, client)

    out = Path(args.out or run_dir.evaluation / "held_out_dialogues")
    out.mkdir(parents=True, exist_ok=True)
    with (out / "turns.jsonl").open("w", encoding="utf-8") as rows:
        for position, turn in enumerate(turns):
            rows.write(json.dumps({"dialogue": turn.dialogue, "turn": turn.index, "history": list(turn.history),
                                   **{s: answered[s][position] for s in systems}}, ensure_ascii=False) + "\n")
    (out / "dialogues.md").write_text(transcript(dialogues, turns, answered), encoding="utf-8")
    contexts = [render(t.history) for t in turns]
    sources = [f"{t.dialogue}:{t.index}" for t in turns]
    labels = load_labels(args.ssa_labels) if args.ssa_labels else {}
    pending = []
    for system in systems:
        pending += unrated(contexts, answered[system], sources, labels)
        if labels:
            score = ssa_score(contexts, answered[system], labels)
            figure = f"SSA {score.ssa:.1%}" if score.ssa is not None else "SSA not reported (under 90% rated)"
            print(f"{system:<10} {figure}  sensible {score.sensible:.1%}  specific {score.specific:.1%}  "
                  f"rated {score.rated}/{score.replies}")
    pending = list({(p["question"], p["reply"]): p for p in pending}.values())
    if pending:
        written = write_rating_sheet(pending, out / "ssa_sheet.jsonl")
        print(f"{written} distinct turns had no rating: {out / 'ssa_sheet.jsonl'}")
    print(f"{len(turns)} turns of {len(dialogues)} held-out dialogues: {out / 'dialogues.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(run_command("evaluation/held_out_dialogues.py", main))
