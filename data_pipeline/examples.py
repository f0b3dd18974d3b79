"""Dialogues -> (persona, context, response) training examples, and the train/validation split.

One example per bot turn that follows a user turn. The context is the user's turn
and up to `context_turns` earlier turns, formatted by `data_pipeline/context.py`
(speaker marks, [SEP]); with `context_turns` 0, and for ChatbotData (one exchange
per dialogue), it is the question alone. The dialogue's persona sentences travel
beside the context. The split is made by dialogue, never by turn, so no dialogue
contributes to both sides.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from data_pipeline.context import SEP_TEXT, format_persona, format_turns
from data_pipeline.sources import BOT, DataError, Dialogue


@dataclass(frozen=True)
class Example:
    context: str  # Earlier turns (marked) and the question, see `format_turns`.
    response: str
    source: str = ""
    persona: str = ""  # Persona sentences joined with spaces; "" for none.
    weight: float = 1.0  # Copies per training epoch (see `dataset.make_dataset`).


def dialogue_examples(dialogue: Dialogue, context_turns: int = 3) -> list[Example]:
    """One example per bot turn after a user turn, seeing up to `context_turns` earlier turns."""
    if context_turns < 0:
        raise ValueError(f"context_turns must be >= 0, got {context_turns}")
    persona = format_persona(dialogue.persona)
    examples = []
    for index in range(1, len(dialogue.turns)):
        if dialogue.speaker(index) != BOT:
            continue
        start = max(0, index - 1 - context_turns)
        speakers = [dialogue.speaker(i) for i in range(start, index)]
        context = format_turns(dialogue.turns[start:index], speakers)
        examples.append(Example(context, dialogue.turns[index], dialogue.source, persona))
    return examples


def earlier_turns(example: Example) -> int:
    """How many turns before the question an example's context holds."""
    return example.context.count(SEP_TEXT)


def question_of(example: Example) -> str:
    """The example's last user turn, without the earlier turns."""
    return example.context.split(SEP_TEXT)[-1]


def split_dialogues(
    dialogues: list[Dialogue], validation_fraction: float, seed: int
) -> tuple[list[Dialogue], list[Dialogue]]:
    """Deterministic seeded split by dialogue; at least one dialogue on each side."""
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    if len(dialogues) < 2:
        raise DataError(f"need at least 2 dialogues to split into training and validation, got {len(dialogues)}")
    order = list(range(len(dialogues)))
    random.Random(seed).shuffle(order)
    n_validation = min(len(dialogues) - 1, max(1, round(len(dialogues) * validation_fraction)))
    validation_ids = set(order[:n_validation])
    train = [d for i, d in enumerate(dialogues) if i not in validation_ids]
    validation = [d for i, d in enumerate(dialogues) if i in validation_ids]
    return train, validation


def to_examples(dialogues: list[Dialogue], context_turns: int = 3) -> list[Example]:
    return [ex for d in dialogues for ex in dialogue_examples(d, context_turns)]


def save_examples(examples: list[Example], path: Path) -> None:
    """JSON Lines, one example per line (the split, as the run used it)."""
    with open(path, "w", encoding="utf-8") as file:
        for example in examples:
            file.write(json.dumps(asdict(example), ensure_ascii=False) + "\n")


def load_examples(path: Path) -> list[Example]:
    """Examples saved by `save_examples` (files from before persona/weight existed too)."""
    with open(path, encoding="utf-8") as file:
        return [Example(**json.loads(line)) for line in file if line.strip()]
