"""Scripted conversations through the served `chat` signature, and their SSA.

    python -m evaluation.conversations --run-dir RUN [--conversations evaluation/conversations_ko.jsonl]
        [--strategies hybrid,greedy] [--ssa-labels FILE ...] [--out DIR]

A conversation file holds one JSON object a line, `{"id": ..., "topic": ..., "turns": [the
user's messages]}`, written for testing and never trained on; a `.txt` file holds one message a line,
each a conversation of its own (`evaluation/life_probes.txt`: questions about 하루's own life). Where
the ratings also mark whether a reply claims a human life or another identity for the bot, the count
is printed beside SSA. Each conversation is played the
way a chat client plays it: the user's next message follows the bot's reply, and every request
carries the whole history, the bot's own replies included (`RunReplies.chat`: the exported
`chat` signature's function, in this process). Every strategy plays its own conversations.

What a rater judges is (the conversation so far, the reply): the conversation is rendered one
turn a line, `사용자: ...` / `챗봇: ...`, the user's message last, and kept as the "question" of
the SSA label files (`evaluation/ssa.py`), so ratings are looked up, written to a blind sheet
and merged exactly as for single questions. Writes `<out>/conversations.jsonl` (every turn),
`<out>/conversations.md` (the transcripts) and `<out>/ssa_sheet.jsonl` (the unrated turns).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from errors import UserError, run_command
from evaluation.ssa import json_lines

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CONVERSATIONS = Path(__file__).with_name("conversations_ko.jsonl")
SPEAKERS = ("사용자", "챗봇")  # The user speaks first.


@dataclass(frozen=True)
class Conversation:
    id: str
    topic: str
    turns: tuple[str, ...]  # The user's messages, in order.


@dataclass(frozen=True)
class Turn:
    conversation: str  # Its id.
    index: int  # 0 for the first user message.
    history: tuple[str, ...]  # Every turn before the reply, the user's message last.
    reply: str

    @property
    def rendered(self) -> str:
        """The conversation so far as a rater reads it (and the label files key it)."""
        return render(self.history)


def render(history) -> str:
    return "\n".join(f"{SPEAKERS[i % 2]}: {text}" for i, text in enumerate(history))


def history_of(rendered: str) -> list[str]:
    """`render`'s inverse: the turns of a rendered conversation; any other text is a history of one turn."""
    lines = rendered.split("\n")
    marks = [f"{SPEAKERS[i % 2]}: " for i in range(len(lines))]
    if all(line.startswith(mark) for line, mark in zip(lines, marks)):
        return [line[len(mark):] for line, mark in zip(lines, marks)]
    return [rendered]


def load_conversations(path: str | Path) -> list[Conversation]:
    """The conversations of a JSON Lines file; a bad line fails naming file:line and the field.

    A `.txt` file holds one message a line: each is a conversation of that one message ("#" lines are
    comments), for probes such as `evaluation/life_probes.txt`.
    """
    if str(path).endswith(".txt"):
        return _one_message_conversations(path)
    conversations, seen = [], set()
    for where, record in json_lines(path, "conversations file"):
        turns = record.get("turns")
        if not isinstance(turns, list) or not turns or not all(isinstance(t, str) and t.strip() for t in turns):
            raise UserError(f"{where}: field 'turns' must be a list of non-empty texts (the user's messages)")
        identifier = str(record.get("id", where.rsplit(":", 1)[1]))
        if identifier in seen:
            raise UserError(f"{where}: id {identifier!r} appears twice")
        seen.add(identifier)
        conversations.append(Conversation(identifier, str(record.get("topic", "")), tuple(t.strip() for t in turns)))
    if not conversations:
        raise UserError(f"{path}: no conversations")
    return conversations


def _one_message_conversations(path: str | Path) -> list[Conversation]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: cannot read the conversations file: {error}") from error
    messages = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    if not messages:
        raise UserError(f"{path}: no messages")
    return [Conversation(f"m{number:02d}", "", (message,)) for number, message in enumerate(messages, 1)]


def play(chat, conversations: list[Conversation]) -> list[Turn]:
    """Every conversation, turn by turn, as a client plays it; `chat(histories) -> replies` (a batch a turn).

    Returns the turns conversation by conversation, in order.
    """
    histories = {c.id: [] for c in conversations}
    played = {c.id: [] for c in conversations}
    for index in range(max(len(c.turns) for c in conversations)):
        playing = [c for c in conversations if index < len(c.turns)]
        for c in playing:
            histories[c.id].append(c.turns[index])
        for c, reply in zip(playing, chat([list(histories[c.id]) for c in playing])):
            played[c.id].append(Turn(c.id, index, tuple(histories[c.id]), reply))
            histories[c.id].append(reply)
    return [turn for turns in played.values() for turn in turns]


def transcript(conversations: list[Conversation], played: dict[str, list[Turn]]) -> str:
    """Markdown: each conversation with every strategy's replies."""
    lines = []
    for c in conversations:
        lines.append(f"## {c.id}: {c.topic}\n")
        for strategy, turns in played.items():
            lines.append(f"**{strategy}**\n")
            for turn in (t for t in turns if t.conversation == c.id):
                lines += [f"- {SPEAKERS[0]}: {turn.history[-1]}", f"  - {SPEAKERS[1]}: {turn.reply}"]
            lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--conversations", default=str(CONVERSATIONS))
    parser.add_argument("--strategies", default="hybrid,greedy",
                        help="comma-separated, as evaluate.py names them (hybrid: what `chat` serves by default)")
    parser.add_argument("--ssa-labels", action="append", default=[], metavar="FILE")
    parser.add_argument("--out", help="default: <run-dir>/eval/conversations")
    args = parser.parse_args(argv)

    from evaluation.evaluate_run import EVALUATED_STRATEGIES, RETRIEVAL
    from evaluation.ssa import life_claims, load_labels, ssa_score, unrated, write_rating_sheet
    from model.run_files import load_run
    from run_directory import RunDirectory
    from serving.replies import RunReplies

    conversations = load_conversations(args.conversations)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = [s for s in strategies if s not in EVALUATED_STRATEGIES or s == RETRIEVAL]
    if unknown:
        raise UserError(f"--strategies: no conversation strategy {unknown}; choose from "
                        f"{', '.join(s for s in EVALUATED_STRATEGIES if s != RETRIEVAL)}")
    replies = RunReplies(load_run(args.run_dir))
    played = {name: play(lambda histories, s=EVALUATED_STRATEGIES[name]: replies.chat(histories, s), conversations)
              for name in strategies}
    out = Path(args.out or RunDirectory(args.run_dir).evaluation / "conversations")
    out.mkdir(parents=True, exist_ok=True)
    with (out / "conversations.jsonl").open("w", encoding="utf-8") as rows:
        for name, turns in played.items():
            for t in turns:
                rows.write(json.dumps({"strategy": name, "conversation": t.conversation, "turn": t.index,
                                       "history": list(t.history), "reply": t.reply}, ensure_ascii=False) + "\n")
    (out / "conversations.md").write_text(transcript(conversations, played), encoding="utf-8")
    labels = load_labels(args.ssa_labels) if args.ssa_labels else {}
    pending = []
    for name, turns in played.items():
        contexts, texts = [t.rendered for t in turns], [t.reply for t in turns]
        sources = [f"{Path(args.conversations).name}:{t.conversation}:{t.index + 1}" for t in turns]
        pending += unrated(contexts, texts, sources, labels)
        if labels:
            score = ssa_score(contexts, texts, labels)
            figure = f"SSA {score.ssa:.1%}" if score.ssa is not None else "SSA not reported (under 90% rated)"
            claims, marked = life_claims(contexts, texts, labels)
            print(f"{name:<8} {figure}  sensible {score.sensible:.1%}  specific {score.specific:.1%}  "
                  f"rated {score.rated}/{score.replies}; claiming a human life or another identity: {claims} of "
                  f"{marked} marked")
    pending = list({(p["question"], p["reply"]): p for p in pending}.values())
    if pending:
        written = write_rating_sheet(pending, out / "ssa_sheet.jsonl")
        print(f"{written} distinct turns had no rating: {out / 'ssa_sheet.jsonl'}")
    print(f"{sum(len(t) for t in played.values())} replies in {len(conversations)} conversations: "
          f"{out / 'conversations.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(run_command("evaluation/conversations.py", main))
