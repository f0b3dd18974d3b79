"""SSA (sensibleness and specificity average, Meena) of replies, from blind ratings kept in label files.

A label file holds one JSON object a line, the shape of `shared/data/ssa_validation_labels.jsonl`:

    {"question": ..., "reply": ..., "sensible": 0|1, "specific": 0|1,
     "candidates": [what produced the reply, ...], "source": "file:line of the question"}

rated by `shared/data/SSA_GUIDELINE.md`. A reply's rating is looked up by (question, reply)
text; a strategy's SSA is reported only when at least `MIN_COVERAGE` of its replies have one.
The replies that have none go to a blind rating sheet (`write_rating_sheet`: each distinct
(question, reply) once, shuffled, nothing about what produced it), which a rater fills in by
the guideline and `merge_rating_sheet` appends to a label file.

    labels = load_labels(["../shared/data/ssa_validation_labels.jsonl", "evaluation/ssa_labels.jsonl"])
    score = ssa_score(questions, replies, labels)      # SSAScore: ssa, sensible, specific, rated, coverage
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from errors import UserError

MIN_COVERAGE = 0.9  # No SSA figure over fewer of a strategy's replies than this share.
# Marks a rater may add beside the rating, kept when a sheet is merged: the reply claims a human life
# (meals, sleep, family, a job, a home) or another identity for the character.
EXTRA_MARKS = ("human_life", "other_identity")
SHEET_FIELDS = ("id", "question", "reply", "sensible", "specific")


@dataclass(frozen=True)
class Rating:
    sensible: int
    specific: int
    claims_a_life: int | None = None  # 1: the reply claims a human life or another identity (`EXTRA_MARKS`).


@dataclass(frozen=True)
class SSAScore:
    """SSA of one strategy's replies over the rated ones; `ssa` is None below `MIN_COVERAGE`."""

    replies: int
    rated: int
    sensible: float
    specific: float

    @property
    def coverage(self) -> float:
        return self.rated / self.replies if self.replies else 0.0

    @property
    def ssa(self) -> float | None:
        return (self.sensible + self.specific) / 2 if self.coverage >= MIN_COVERAGE and self.rated else None

    def to_dict(self) -> dict:
        return {"ssa": None if self.ssa is None else round(self.ssa, 4), "sensible": round(self.sensible, 4),
                "specific": round(self.specific, 4), "rated": self.rated, "replies": self.replies,
                "coverage": round(self.coverage, 4)}


def key(question: str, reply: str) -> tuple[str, str]:
    return " ".join(question.split()), " ".join(reply.split())


def _binary(record: dict, field: str, where: str) -> int:
    value = record.get(field)
    if value not in (0, 1) or isinstance(value, bool):
        raise UserError(f"{where}: '{field}' must be 0 or 1, not {value!r}")
    return int(value)


def rating_of(record: dict, where: str) -> Rating:
    """The record's rating; a `UserError` naming `where` and the field when it is not one."""
    sensible, specific = _binary(record, "sensible", where), _binary(record, "specific", where)
    if specific and not sensible:
        raise UserError(f"{where}: 'specific' is 1 but 'sensible' is 0 (a reply that is not sensible is not specific)")
    marks = [_binary(record, mark, where) for mark in EXTRA_MARKS if record.get(mark) is not None]
    return Rating(sensible, specific, max(marks) if marks else None)


def life_claims(questions: list[str], replies: list[str], labels: dict) -> tuple[int, int]:
    """(replies claiming a human life or another identity, replies whose rating says whether they do)."""
    marked = [labels[key(q, r)].claims_a_life for q, r in zip(questions, replies) if key(q, r) in labels]
    marked = [m for m in marked if m is not None]
    return sum(marked), len(marked)


def json_lines(path: str | Path, what: str = "file") -> list[tuple[str, dict]]:
    """(where, object) for each non-empty line of a JSON-lines file; a `UserError` naming a bad line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: cannot read the {what}: {error}") from error
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise UserError(f"{where}: not JSON ({error.msg})") from error
        if not isinstance(record, dict):
            raise UserError(f"{where}: expected a JSON object")
        records.append((where, record))
    return records


def read_records(path: str | Path) -> list[tuple[str, dict]]:
    """(where, record) for each rated (question, reply) line of a label file or sheet."""
    records = json_lines(path, "label file")
    for where, record in records:
        if not all(isinstance(record.get(f), str) for f in ("question", "reply")):
            raise UserError(f"{where}: needs text fields 'question' and 'reply'")
    return records


def load_labels(paths) -> dict[tuple[str, str], Rating]:
    """(question, reply) -> rating from every label file; a later file's rating of the same pair wins."""
    labels = {}
    for path in paths:
        for where, record in read_records(path):
            labels[key(record["question"], record["reply"])] = rating_of(record, where)
    return labels


def ssa_score(questions: list[str], replies: list[str], labels: dict) -> SSAScore:
    ratings = [labels.get(key(q, r)) for q, r in zip(questions, replies)]
    rated = [r for r in ratings if r is not None]
    n = max(len(rated), 1)
    return SSAScore(len(replies), len(rated), sum(r.sensible for r in rated) / n, sum(r.specific for r in rated) / n)


def unrated(questions: list[str], replies: list[str], sources: list[str], labels: dict) -> list[dict]:
    """The distinct (question, reply) pairs with no rating, with the question's source, first seen first."""
    pending = {}
    for question, reply, source in zip(questions, replies, sources):
        pair = key(question, reply)
        if pair not in labels and pair not in pending:
            pending[pair] = {"question": question, "reply": reply, "source": source}
    return list(pending.values())


def write_rating_sheet(rows: list[dict], path: str | Path, seed: int = 0) -> int:
    """A blind sheet of `rows` (shuffled; ids only, no strategies); returns how many it holds.

    Each line: {"id", "question", "reply", "sensible": null, "specific": null, "source"}.
    """
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as sheet:
        for number, row in enumerate(rows, 1):
            line = {"id": number, "question": row["question"], "reply": row["reply"], "sensible": None,
                    "specific": None, "source": row.get("source", "")}
            sheet.write(json.dumps(line, ensure_ascii=False) + "\n")
    return len(rows)


def merge_rating_sheet(sheet: str | Path, label_file: str | Path, produced_by: str = "rated sheet") -> int:
    """Append the filled rows of `sheet` to `label_file` (pairs it already rates are skipped); returns rows added.

    A row left unrated (null) is skipped; a bad value fails naming the sheet's line, before anything is written.
    """
    label_file = Path(label_file)
    known = load_labels([label_file]) if label_file.exists() else {}
    added = []
    for where, record in read_records(sheet):
        if record.get("sensible") is None and record.get("specific") is None:
            continue
        rating = rating_of(record, where)
        pair = key(record["question"], record["reply"])
        if pair in known:
            continue
        known[pair] = rating
        marks = {m: _binary(record, m, where) for m in EXTRA_MARKS if record.get(m) is not None}
        added.append({"question": record["question"], "reply": record["reply"], "sensible": rating.sensible,
                      "specific": rating.specific, **marks, "candidates": [produced_by],
                      "source": record.get("source", "")})
    with label_file.open("a", encoding="utf-8") as out:
        for row in added:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(added)
