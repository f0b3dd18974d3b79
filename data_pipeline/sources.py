"""Readers that turn dialogue files into validated `Dialogue` records.

    read_qa_csv          ChatbotData-style CSV: Q,A[,label]
    read_xpersona_json   XPersona-style JSON: persona sentences + [user, response] pairs

Every reader follows the same rules:
- a problem with the whole file (missing columns, unreadable file) raises
  `DataError` naming the file and what was found;
- a problem with one row skips that row with a warning naming file and line,
  and is counted in the `ReadReport`; good rows are never dropped silently;
- text is normalised: Unicode NFC, whitespace runs (newlines included) become
  one space, leading/trailing whitespace is stripped;
- exact duplicate dialogues are dropped and counted.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import unicodedata
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)

QUESTION_COLUMN, ANSWER_COLUMN = "Q", "A"
_WHITESPACE = re.compile(r"\s+")
_FALLBACK_ENCODINGS = ("utf-8-sig", "cp949")  # cp949: common for Korean CSVs from Windows.


class DataError(ValueError):
    """A dialogue file that cannot be used at all."""


@dataclass(frozen=True)
class Dialogue:
    """Alternating turns, user first: (user, bot, user, bot, ...)."""

    turns: tuple[str, ...]
    persona: tuple[str, ...] = ()
    source: str = ""  # "file:line" of the record, for error messages.


@dataclass
class ReadReport:
    """What a reader kept and what it skipped, and why."""

    source: str
    kept: int = 0
    duplicates: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> count
    encoding: str = "utf-8"

    def warn(self, line: int | str, reason: str, detail: str = "") -> None:
        self.skipped[reason] += 1
        log.warning("%s:%s: skipped row: %s%s", self.source, line, reason, f" ({detail})" if detail else "")

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "encoding": self.encoding,
            "kept": self.kept,
            "duplicates_dropped": self.duplicates,
            "skipped": dict(self.skipped),
        }

    def summary(self) -> str:
        skipped = ", ".join(f"{n} {reason}" for reason, n in self.skipped.items()) or "none"
        return (
            f"{self.source}: kept {self.kept} dialogues, dropped {self.duplicates} exact "
            f"duplicates, skipped: {skipped}"
        )


def normalize_text(text: str) -> str:
    """NFC, whitespace runs collapsed to one space, stripped."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def _decode(raw: bytes, report: ReadReport) -> str:
    """Decode strictly as UTF-8 (BOM allowed) or CP949; else replace bad bytes (rows skipped later)."""
    for encoding in _FALLBACK_ENCODINGS:
        try:
            text = raw.decode(encoding)
            report.encoding = encoding
            return text
        except UnicodeDecodeError:
            continue
    report.encoding = "utf-8 (with undecodable bytes)"
    return raw.decode("utf-8", errors="replace").lstrip("\ufeff")


def _record_start_lines(text: str) -> list[tuple[int, bool]]:
    """(first physical line, is blank) of each CSV record, header included.

    pandas numbers records, blank ones included, in its "Skipping line N" warnings;
    a quoted newline makes one record span several physical lines.
    """
    reader = csv.reader(io.StringIO(text))
    records, previous_end = [], 0
    for record in reader:
        records.append((previous_end + 1, not record))
        previous_end = reader.line_num
    return records


def _find_columns(columns: list[str], path: str) -> tuple[str, str]:
    by_name = {str(c).strip().upper(): c for c in columns}
    missing = [c for c in (QUESTION_COLUMN, ANSWER_COLUMN) if c not in by_name]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing}; found columns {list(columns)}. "
            f"A question/answer CSV needs a header with '{QUESTION_COLUMN}' and '{ANSWER_COLUMN}'."
        )
    return by_name[QUESTION_COLUMN], by_name[ANSWER_COLUMN]


def read_qa_csv(path: str | Path) -> tuple[list[Dialogue], ReadReport]:
    """Read a ChatbotData-style CSV (`Q,A[,label]`) into single-exchange dialogues."""
    path = str(path)
    report = ReadReport(source=path)
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read file: {error}") from error
    text = _decode(raw, report).replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise DataError(f"{path}: file is empty; expected a header with 'Q' and 'A'")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = pd.read_csv(
            io.StringIO(text), dtype=str, keep_default_na=False, on_bad_lines="warn"
        )
    records = _record_start_lines(text)
    bad_records = _report_bad_lines(caught, records, report)
    question_col, answer_col = _find_columns(list(frame.columns), path)

    starts = [
        line
        for number, (line, blank) in enumerate(records[1:], start=2)
        if not blank and number not in bad_records
    ]
    if len(starts) != len(frame):  # Parsers disagree on an odd file: name records instead.
        starts = [f"record {i + 1}" for i in range(len(frame))]

    dialogues, seen = [], set()
    for row_index, (question, answer) in enumerate(zip(frame[question_col], frame[answer_col])):
        line = starts[row_index]
        dialogue = _validated_pair(question, answer, f"{path}:{line}", report, line)
        if dialogue is None:
            continue
        if dialogue.turns in seen:
            report.duplicates += 1
            continue
        seen.add(dialogue.turns)
        dialogues.append(dialogue)
    report.kept = len(dialogues)
    if not dialogues:
        raise DataError(f"{path}: no usable rows ({report.summary()})")
    return dialogues, report


def _report_bad_lines(caught, records, report: ReadReport) -> set[int]:
    """Turn pandas' 'Skipping line N' warnings into counted skips naming the physical line."""
    bad = set()
    for warning in caught:
        for match in re.finditer(r"Skipping line (\d+): (.*)", str(warning.message)):
            number = int(match.group(1))
            bad.add(number)
            line = records[number - 1][0] if number <= len(records) else f"record {number}"
            report.warn(line, "malformed CSV line", match.group(2).strip())
    return bad


def _validated_pair(question: str, answer: str, source: str, report: ReadReport, line) -> Dialogue | None:
    turns = []
    for column, cell in ((QUESTION_COLUMN, question), (ANSWER_COLUMN, answer)):
        if "\ufffd" in cell:
            report.warn(line, "undecodable bytes", f"column {column}")
            return None
        cell = normalize_text(cell)
        if not cell or cell.lower() in ("nan", "null", "none"):
            report.warn(line, "empty cell", f"column {column}")
            return None
        turns.append(cell)
    return Dialogue(turns=tuple(turns), source=source)


def read_xpersona_json(path: str | Path) -> tuple[list[Dialogue], ReadReport]:
    """XPersona-style JSON: `[{"persona": [sentence, ...], "dialogue": [[user, response], ...]}, ...]`.

    A record that is not such an object is skipped (named by its index). A pair with a
    missing, non-string or empty side ends its dialogue there: the turns before it are
    kept (context stays contiguous) and the cut is reported.
    """
    path = Path(path)
    report = ReadReport(source=str(path))
    try:
        records = json.loads(_decode(path.read_bytes(), report))
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error}") from error
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}") from error
    if not isinstance(records, list):
        raise DataError(f"{path}: expected a JSON list of dialogues, found {type(records).__name__}")
    dialogues, seen = [], set()
    for index, record in enumerate(records):
        dialogue = _xpersona_dialogue(record, f"record {index}", report)
        if dialogue is None:
            continue
        key = (dialogue.persona, dialogue.turns)
        if key in seen:
            report.duplicates += 1
            continue
        seen.add(key)
        dialogues.append(Dialogue(dialogue.turns, dialogue.persona, f"{path}:{index}"))
    report.kept = len(dialogues)
    return dialogues, report


def _xpersona_dialogue(record, where: str, report: ReadReport) -> Dialogue | None:
    if not isinstance(record, dict) or not isinstance(record.get("dialogue"), list):
        report.warn(where, "not a {persona, dialogue} object")
        return None
    persona = record.get("persona", [])
    if not isinstance(persona, list) or not all(isinstance(p, str) for p in persona):
        report.warn(where, "persona is not a list of sentences")
        return None
    turns: list[str] = []
    for number, pair in enumerate(record["dialogue"]):
        texts = [normalize_text(t) for t in pair if isinstance(t, str)] if isinstance(pair, list) else []
        if len(pair if isinstance(pair, list) else []) != 2 or len(texts) != 2 or not all(texts):
            report.warn(f"{where}, pair {number}", "not a [user, response] pair of non-empty texts",
                        f"kept the {number} pair(s) before it" if number else "")
            break
        turns += texts
    if not turns:
        return None
    return Dialogue(tuple(turns), tuple(normalize_text(p) for p in persona if p.strip()))
