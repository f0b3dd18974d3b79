"""Dialogues -> (context, response) training examples, and the train/validation split.

One example per bot turn. The context is the turns before it, newest last; for
ChatbotData (one exchange per dialogue) the context is just the question.
Turns inside a context are joined with " [SEP] ", which the tokenizer keeps as
one reserved token. The split is made by dialogue, never by turn, so no
dialogue contributes to both sides.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from data_pipeline.sources import Dialogue

SEP_TEXT = " [SEP] "


@dataclass(frozen=True)
class Example:
    context: str
    response: str
    source: str = ""


def dialogue_examples(dialogue: Dialogue, context_turns: int = 1) -> list[Example]:
    """One example per bot turn (odd index), with up to `context_turns` previous turns."""
    examples = []
    for index in range(1, len(dialogue.turns), 2):
        history = dialogue.turns[max(0, index - context_turns) : index]
        examples.append(Example(SEP_TEXT.join(history), dialogue.turns[index], dialogue.source))
    return examples


def split_dialogues(
    dialogues: list[Dialogue], validation_fraction: float, seed: int
) -> tuple[list[Dialogue], list[Dialogue]]:
    """Deterministic seeded split by dialogue; at least one dialogue on each side."""
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    if len(dialogues) < 2:
        raise ValueError(f"need at least 2 dialogues to split, got {len(dialogues)}")
    order = list(range(len(dialogues)))
    random.Random(seed).shuffle(order)
    n_validation = min(len(dialogues) - 1, max(1, round(len(dialogues) * validation_fraction)))
    validation_ids = set(order[:n_validation])
    train = [d for i, d in enumerate(dialogues) if i not in validation_ids]
    validation = [d for i, d in enumerate(dialogues) if i in validation_ids]
    return train, validation


def to_examples(dialogues: list[Dialogue], context_turns: int = 1) -> list[Example]:
    return [ex for d in dialogues for ex in dialogue_examples(d, context_turns)]


def save_examples(examples: list[Example], path: Path) -> None:
    """JSON Lines, one example per line (the split, as the run used it)."""
    with open(path, "w", encoding="utf-8") as file:
        for example in examples:
            file.write(json.dumps(asdict(example), ensure_ascii=False) + "\n")


def load_examples(path: Path) -> list[Example]:
    with open(path, encoding="utf-8") as file:
        return [Example(**json.loads(line)) for line in file if line.strip()]
