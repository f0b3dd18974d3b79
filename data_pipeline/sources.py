"""Readers that turn dialogue files into validated `Dialogue` records.

    read_qa_csv          ChatbotData-style CSV: Q,A[,label]
    read_xpersona_json   XPersona-style JSON: persona sentences + [user, response] pairs
    read_dialogues_jsonl JSON Lines: one dialogue per line, turns with speaker and text
    read_aihub_json      AIHub emotional-dialogue corpus: profile + talk.content HS01/SS01/...
    read_dialogues       any of the above, chosen by file name and content

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


USER, BOT = "user", "bot"


@dataclass(frozen=True)
class Dialogue:
    """Alternating turns: (user, bot, user, ...), or (bot, user, bot, ...) when the bot opens."""

    turns: tuple[str, ...]
    persona: tuple[str, ...] = ()
    source: str = ""  # "file:line" of the record, for error messages.
    first_speaker: str = USER

    def speaker(self, index: int) -> str:
        first_is_user = self.first_speaker == USER
        return USER if (index % 2 == 0) == first_is_user else BOT


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
    return _xpersona_records(_load_json_list(path, report), path, report)


def _xpersona_records(records: list, path: Path, report: ReadReport) -> tuple[list[Dialogue], ReadReport]:
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


# -- JSON Lines -------------------------------------------------------------
SPEAKER_NAMES = {
    USER: ("user", "human", "usr", "speaker1", "a", "사용자", "나"),
    BOT: ("bot", "system", "assistant", "sys", "character", "speaker2", "b", "챗봇", "봇"),
}
_SPEAKER_OF = {name: speaker for speaker, names in SPEAKER_NAMES.items() for name in names}


def read_dialogues_jsonl(path: str | Path) -> tuple[list[Dialogue], ReadReport]:
    """JSON Lines, one dialogue per line: a list of turns, or {"persona": [...], "turns": [...]}.

    Each turn is {"speaker": "user" | "bot" (or a synonym in `SPEAKER_NAMES`), "text": "..."}.
    Consecutive turns of one speaker are joined into one turn (counted). A turn with an
    unknown speaker or no text ends its dialogue there; the turns before it are kept.
    """
    path = Path(path)
    report = ReadReport(source=str(path))
    try:
        text = _decode(path.read_bytes(), report)
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error}") from error
    dialogues, seen = [], set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            report.warn(number, "not valid JSON", f"column {error.colno}: {error.msg}")
            continue
        dialogue = _jsonl_dialogue(record, number, report)
        if dialogue is None:
            continue
        key = (dialogue.persona, dialogue.turns, dialogue.first_speaker)
        if key in seen:
            report.duplicates += 1
            continue
        seen.add(key)
        dialogues.append(Dialogue(dialogue.turns, dialogue.persona, f"{path}:{number}", dialogue.first_speaker))
    report.kept = len(dialogues)
    if not dialogues:
        raise DataError(f"{path}: no usable dialogues ({report.summary()})")
    return dialogues, report


def _jsonl_dialogue(record, line: int, report: ReadReport) -> Dialogue | None:
    persona = []
    if isinstance(record, dict):
        persona, record = record.get("persona", []), record.get("turns")
    if not isinstance(record, list):
        report.warn(line, "not a list of turns or a {persona, turns} object")
        return None
    if not isinstance(persona, list) or not all(isinstance(p, str) for p in persona):
        report.warn(line, "persona is not a list of sentences")
        return None
    speakers, turns = [], []
    for number, turn in enumerate(record):
        speaker = _SPEAKER_OF.get(str(turn.get("speaker", "")).strip().lower()) if isinstance(turn, dict) else None
        text = normalize_text(turn["text"]) if speaker and isinstance(turn.get("text"), str) else ""
        if not text:
            report.warn(line, "turn without a known speaker and non-empty text",
                        f"turn {number}; kept the {number} turn(s) before it")
            break
        if speakers and speakers[-1] == speaker:
            turns[-1] += " " + text
            report.skipped["turns joined to the previous turn of the same speaker (kept)"] += 1
            continue
        speakers.append(speaker)
        turns.append(text)
    if len(turns) < 2:
        if turns:
            report.warn(line, "fewer than two turns")
        return None
    return Dialogue(tuple(turns), tuple(normalize_text(p) for p in persona if p.strip()), first_speaker=speakers[0])


# -- AIHub emotional dialogue ------------------------------------------------
_AIHUB_KEY = re.compile(r"^(HS|SS)(\d\d)$")  # HS: the person (user), SS: the system (bot).


def read_aihub_json(path: str | Path) -> tuple[list[Dialogue], ReadReport]:
    """AIHub 감성대화 JSON: `[{"profile": {...}, "talk": {"id": {...}, "content": {"HS01": ..., "SS01": ...}}}]`.

    Turns are read in order HS01, SS01, HS02, SS02, ...; an empty turn ends the dialogue
    (the corpus leaves unused turns empty). A non-empty turn after a gap is reported and
    dropped with the rest (keeping the dialogue contiguous). The profile codes
    (persona-id, emotion type) are not sentences and are not used as a persona.
    """
    path = Path(path)
    report = ReadReport(source=str(path))
    return _aihub_records(_load_json_list(path, report), path, report)


def _aihub_records(records: list, path: Path, report: ReadReport) -> tuple[list[Dialogue], ReadReport]:
    dialogues, seen = [], set()
    for index, record in enumerate(records):
        talk = record.get("talk") if isinstance(record, dict) else None
        talk = talk if isinstance(talk, dict) else {}
        content, talk_id = talk.get("content"), talk.get("id")
        talk_id = talk_id.get("talk-id", "") if isinstance(talk_id, dict) else ""
        where = f"record {index}" + (f" ({talk_id})" if talk_id else "")
        if not isinstance(content, dict):
            report.warn(where, "no talk.content object")
            continue
        turns = _aihub_turns(content, where, report)
        if len(turns) < 2:
            report.warn(where, "no HS01/SS01 exchange")
            continue
        if tuple(turns) in seen:
            report.duplicates += 1
            continue
        seen.add(tuple(turns))
        dialogues.append(Dialogue(tuple(turns), source=f"{path}:{where}"))
    report.kept = len(dialogues)
    if not dialogues:
        raise DataError(f"{path}: no usable dialogues ({report.summary()})")
    return dialogues, report


def _aihub_turns(content: dict, where: str, report: ReadReport) -> list[str]:
    texts = {}
    for key, value in content.items():
        if not _AIHUB_KEY.match(str(key)):
            report.warn(where, "unknown talk.content key (ignored)", str(key))
        elif isinstance(value, str) and normalize_text(value):
            texts[key] = normalize_text(value)
    order = [f"{side}{number:02d}" for number in range(1, 100) for side in ("HS", "SS")]
    turns = []
    for key in order:
        if key not in texts:
            break
        turns.append(texts.pop(key))
    if texts:  # Non-empty turns after the first empty one.
        report.warn(where, "turn after a gap (dropped with the rest)", f"{min(texts)}; kept {len(turns)} turn(s)")
    return turns[: len(turns) // 2 * 2]  # Whole exchanges: a last HS without its SS answers nothing.


def _load_json_list(path: Path, report: ReadReport) -> list:
    try:
        records = json.loads(_decode(path.read_bytes(), report))
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error}") from error
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}") from error
    if not isinstance(records, list):
        raise DataError(f"{path}: expected a JSON list of dialogues, found {type(records).__name__}")
    return records


def read_dialogues(path: str | Path) -> tuple[list[Dialogue], ReadReport]:
    """Pick the reader: .csv, .jsonl, or .json (AIHub records have "talk", XPersona "dialogue")."""
    name = str(path).lower()
    if name.endswith(".jsonl"):
        return read_dialogues_jsonl(path)
    if name.endswith(".json"):  # Read once; the first record's keys say which corpus it is.
        path = Path(path)
        report = ReadReport(source=str(path))
        records = _load_json_list(path, report)
        first = next((r for r in records if isinstance(r, dict)), {})
        return (_aihub_records if "talk" in first else _xpersona_records)(records, path, report)
    return read_qa_csv(path)
