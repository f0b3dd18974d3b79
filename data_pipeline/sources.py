"""Readers that turn dialogue files into validated `Dialogue` records.

    read_qa_csv          ChatbotData-style CSV: Q,A[,label]
    read_xpersona_json   XPersona-style JSON: persona sentences + [user, response] pairs
    read_dialogues_jsonl JSON Lines: one dialogue per line, turns with speaker and text
    read_aihub_json      AIHub emotional-dialogue corpus: profile + talk.content HS01/SS01/...
    read_dialogues       any of the above, chosen by file name and content

Every reader follows the same rules:
- a problem with the whole file (missing columns, unreadable file, nothing usable)
  raises `DataError` naming the file and what was found; no reader raises anything else;
- a problem with one row skips that row with a warning naming file and line,
  and is counted in the `ReadReport` (with the first problems listed); good rows are
  never dropped silently;
- text is normalised: Unicode NFC, zero-width characters removed, whitespace runs
  (newlines included) become one space, leading/trailing whitespace is stripped; a text
  with undecodable bytes, a lone surrogate, a control character or more than
  `MAX_TEXT_CHARS` characters is a bad row;
- exact duplicate dialogues are dropped and counted (`_Collected`, shared by all readers).

CSV files are decoded line by line (UTF-8, else CP949, so one line saved in the other
encoding is still read), and a double quote that opens a cell and never closes it is
found and named by its line: the lines it swallowed are read again as the rows they are.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from errors import UserError

log = logging.getLogger(__name__)

QUESTION_COLUMN, ANSWER_COLUMN = "Q", "A"
MAX_TEXT_CHARS = 1000  # A longer turn is no chat line (and the server refuses longer questions).
_WHITESPACE = re.compile(r"\s+")
_ZERO_WIDTH = re.compile("[\u200b\u2060\ufeff]")  # Zero-width space, word joiner, BOM (joiners are kept: emoji).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f]")  # C0/C1 but whitespace.
_SURROGATE = re.compile("[\ud800-\udfff]")
MAX_LISTED_PROBLEMS = 200  # In `ReadReport.problems` (data_report.json); all are counted and logged.


class DataError(UserError, ValueError):
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
    problems: list = field(default_factory=list)  # [line or record, reason, detail], the first ones.

    def warn(self, line: int | str, reason: str, detail: str = "") -> None:
        self.skipped[reason] += 1
        if len(self.problems) < MAX_LISTED_PROBLEMS:
            self.problems.append([line, reason, detail])
        log.warning("%s:%s: skipped row: %s%s", self.source, line, reason, f" ({detail})" if detail else "")

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "encoding": self.encoding,
            "kept": self.kept,
            "duplicates_dropped": self.duplicates,
            "skipped": dict(self.skipped),
            "problems": self.problems,
        }

    def summary(self) -> str:
        skipped = ", ".join(f"{n} {reason}" for reason, n in self.skipped.items()) or "none"
        return (
            f"{self.source}: kept {self.kept} dialogues, dropped {self.duplicates} exact "
            f"duplicates, skipped: {skipped}"
        )


def normalize_text(text: str) -> str:
    """NFC, zero-width characters removed, whitespace runs collapsed to one space, stripped."""
    return _WHITESPACE.sub(" ", _ZERO_WIDTH.sub("", unicodedata.normalize("NFC", text))).strip()


def clean_text(text) -> tuple[str, str]:
    """(normalised text, "") for a usable turn, else ("", what is wrong with it)."""
    if not isinstance(text, str):
        return "", f"not a text ({type(text).__name__})"
    if "\ufffd" in text:
        return "", "undecodable bytes"
    if _SURROGATE.search(text):
        return "", "lone surrogate"
    control = CONTROL_CHARACTERS.search(text)
    if control:
        return "", f"control character U+{ord(control.group()):04X}"
    text = normalize_text(text)
    if not text or text.lower() in ("nan", "null", "none"):
        return "", "empty text"
    if len(text) > MAX_TEXT_CHARS:
        return "", f"longer than {MAX_TEXT_CHARS} characters ({len(text)})"
    return text, ""


class _Collected:
    """The dialogues a reader keeps: duplicates dropped and counted, `DataError` if none is left."""

    def __init__(self, report: ReadReport):
        self.report, self.dialogues, self.seen = report, [], set()

    def add(self, dialogue: Dialogue) -> None:
        key = (dialogue.persona, dialogue.turns, dialogue.first_speaker)
        if key in self.seen:
            self.report.duplicates += 1
            return
        self.seen.add(key)
        self.dialogues.append(dialogue)

    def finish(self) -> tuple[list[Dialogue], ReadReport]:
        self.report.kept = len(self.dialogues)
        if not self.dialogues:
            raise DataError(f"{self.report.source}: no usable dialogues ({self.report.summary()})")
        return self.dialogues, self.report


def _decode_lines(raw: bytes, report: ReadReport) -> str:
    """Decode line by line: UTF-8 (BOM allowed), else CP949; bad bytes become U+FFFD (their rows are skipped).

    Used for every format (CP949 is common for Korean files from Windows); a JSON file's raw
    newlines lie between tokens, so decoding it line by line is decoding it whole.

    Lines end in LF, CRLF or CR alike; the text returned ends its lines in LF."""
    lines, used = [], Counter()
    for line in re.split(rb"\r\n|\r|\n", raw.removeprefix(b"\xef\xbb\xbf")):  # No CP949 byte is CR or LF.
        if line.isascii():
            lines.append(line.decode("ascii"))
            continue
        for encoding in ("utf-8", "cp949"):
            try:
                lines.append(line.decode(encoding))
                used[encoding] += 1
                break
            except UnicodeDecodeError:
                continue
        else:
            lines.append(line.decode("utf-8", errors="replace"))
            used["undecodable"] += 1
    names = list(used)
    report.encoding = names[0] if len(names) == 1 else (
        " + ".join(f"{name} ({n} lines)" for name, n in used.items()) if names else "utf-8")
    return "\n".join(lines)


def _find_columns(header: list[str], path: str) -> tuple[int, int]:
    by_name = {normalize_text(c).upper(): i for i, c in enumerate(header)}
    missing = [c for c in (QUESTION_COLUMN, ANSWER_COLUMN) if c not in by_name]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing}; found columns {header}. "
            f"A question/answer CSV needs a header with '{QUESTION_COLUMN}' and '{ANSWER_COLUMN}'."
        )
    return by_name[QUESTION_COLUMN], by_name[ANSWER_COLUMN]


def _quotes_balance(lines: list[str]) -> bool:
    return sum(line.count('"') for line in lines) % 2 == 0


def _is_row(line: str, width: int) -> bool:
    """A physical line that reads on its own as one record of `width` fields."""
    return _quotes_balance([line]) and len(next(csv.reader([line]), [])) == width


def _csv_records(lines: list[str], report: ReadReport):
    """(physical line, or "first-last" lines, fields) of each record; an unclosed quote is named and the lines
    it swallowed are read again."""
    width, start = None, 0
    while start < len(lines):
        reader = csv.reader(line + "\n" for line in lines[start:])
        first = start
        for fields in reader:
            last = start + reader.line_num  # One past the record's last physical line.
            record_lines = lines[first:last]
            if width is not None and len(record_lines) > 1 and _swallowed(record_lines, width):
                report.warn(first + 1, "unclosed double quote",
                            f"it swallowed line(s) {first + 2}-{last}; those are read as their own rows")
                start = first + 1
                break
            if fields:
                width = width or len(fields)
                yield (first + 1 if last - first == 1 else f"{first + 1}-{last}"), fields
            first = last
        else:
            return


def _swallowed(record_lines: list[str], width: int) -> bool:
    """A multi-line record that is an opening quote running over whole rows (or to the end of the file)."""
    if not _quotes_balance(record_lines):
        return True  # Never closed: it ran to the end of the file.
    inner = record_lines[1:-1]
    return bool(inner) and all(_is_row(line, width) for line in inner)


def read_qa_csv(path: str | Path) -> tuple[list[Dialogue], ReadReport]:
    """Read a ChatbotData-style CSV (`Q,A[,label]`) into single-exchange dialogues."""
    path = str(path)
    report = ReadReport(source=path)
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read file: {error}") from error
    text = _decode_lines(raw, report)
    if not text.strip():
        raise DataError(f"{path}: file is empty; expected a header with 'Q' and 'A'")
    previous_limit = csv.field_size_limit(1 << 30)  # Huge cells are named as rows, not a csv.Error.
    try:
        records = _csv_records(text.split("\n"), report)
        _, header = next(records, (0, []))
        question_col, answer_col = _find_columns(header, path)
        collected = _Collected(report)
        for line, fields in records:
            dialogue = _qa_row(fields, header, (question_col, answer_col), f"{path}:{line}", report, line)
            if dialogue is not None:
                collected.add(dialogue)
    finally:
        csv.field_size_limit(previous_limit)
    return collected.finish()


def _qa_row(fields: list[str], header: list[str], columns: tuple[int, int], source: str, report: ReadReport,
            line: int | str) -> Dialogue | None:
    if len(fields) > len(header):
        report.warn(line, "malformed CSV line", f"expected {len(header)} fields, saw {len(fields)}")
        return None
    if [normalize_text(f) for f in fields] == [normalize_text(h) for h in header]:
        report.warn(line, "header row repeated")
        return None
    turns = []
    for name, column in zip((QUESTION_COLUMN, ANSWER_COLUMN), columns):
        if column >= len(fields):
            report.warn(line, "malformed CSV line", f"no column {name}: {len(fields)} of {len(header)} fields")
            return None
        text, problem = clean_text(fields[column])
        if problem:
            report.warn(line, "empty cell" if problem == "empty text" else problem, f"column {name}")
            return None
        turns.append(text)
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
    collected = _Collected(report)
    for index, record in enumerate(records):
        dialogue = _xpersona_dialogue(record, f"record {index}", report)
        if dialogue is not None:
            collected.add(Dialogue(dialogue.turns, dialogue.persona, f"{path}:{index}"))
    return collected.finish()


def _persona(sentences, where, report: ReadReport) -> tuple[str, ...] | None:
    """The persona sentences, cleaned; None (reported) if it is not a list of usable sentences."""
    if not isinstance(sentences, list):
        report.warn(where, "persona is not a list of sentences")
        return None
    kept = []
    for number, sentence in enumerate(sentences):
        text, problem = clean_text(sentence)
        if problem and not (problem == "empty text" and isinstance(sentence, str)):
            report.warn(where, f"persona sentence: {problem}", f"sentence {number}")
            return None
        if text:
            kept.append(text)
    return tuple(kept)


def _xpersona_dialogue(record, where: str, report: ReadReport) -> Dialogue | None:
    if not isinstance(record, dict) or not isinstance(record.get("dialogue"), list):
        report.warn(where, "not a {persona, dialogue} object")
        return None
    persona = _persona(record.get("persona", []), where, report)
    if persona is None:
        return None
    turns: list[str] = []
    for number, pair in enumerate(record["dialogue"]):
        problem = "not a [user, response] pair" if not isinstance(pair, list) or len(pair) != 2 else ""
        texts = [] if problem else [clean_text(text) for text in pair]
        problem = problem or next((p for _, p in texts if p), "")
        if problem:
            report.warn(f"{where}, pair {number}", f"{problem} (the dialogue ends there)",
                        f"kept the {number} pair(s) before it" if number else "")
            break
        turns += [text for text, _ in texts]
    if not turns:
        if not record["dialogue"]:
            report.warn(where, "no [user, response] pairs")
        return None
    return Dialogue(tuple(turns), persona)


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
        text = _decode_lines(path.read_bytes(), report)
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error}") from error
    collected = _Collected(report)
    for number, line in enumerate(text.split("\n"), start=1):
        line = _ZERO_WIDTH.sub("", line)  # A BOM where files were joined.
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            report.warn(number, "not valid JSON", f"column {error.colno}: {error.msg}")
            continue
        except RecursionError:
            report.warn(number, "not valid JSON", "nested too deeply")
            continue
        dialogue = _jsonl_dialogue(record, number, report)
        if dialogue is not None:
            collected.add(Dialogue(dialogue.turns, dialogue.persona, f"{path}:{number}", dialogue.first_speaker))
    return collected.finish()


def _jsonl_dialogue(record, line: int, report: ReadReport) -> Dialogue | None:
    persona = []
    if isinstance(record, dict):
        persona, record = record.get("persona", []), record.get("turns")
    if not isinstance(record, list):
        report.warn(line, "not a list of turns or a {persona, turns} object")
        return None
    persona = _persona(persona, line, report)
    if persona is None:
        return None
    speakers, turns = [], []
    for number, turn in enumerate(record):
        speaker = _SPEAKER_OF.get(str(turn.get("speaker", "")).strip().lower()) if isinstance(turn, dict) else None
        text, problem = clean_text(turn.get("text")) if speaker else ("", "no known speaker")
        if problem:
            report.warn(line, f"{problem} (the dialogue ends there)", f"turn {number}; kept the {number} turn(s) before it")
            break
        if speakers and speakers[-1] == speaker:
            turns[-1] += " " + text
            report.skipped["turns joined to the previous turn of the same speaker (kept)"] += 1
            continue
        speakers.append(speaker)
        turns.append(text)
    if len(turns) < 2:
        if turns or not record:
            report.warn(line, "fewer than two turns")
        return None
    return Dialogue(tuple(turns), persona, first_speaker=speakers[0])


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
    collected = _Collected(report)
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
        collected.add(Dialogue(tuple(turns), source=f"{path}:{where}"))
    return collected.finish()


def _aihub_turns(content: dict, where: str, report: ReadReport) -> list[str]:
    texts = {}
    for key, value in content.items():
        if not _AIHUB_KEY.match(str(key)):
            report.warn(where, "unknown talk.content key (ignored)", str(key))
            continue
        text, problem = clean_text(value) if value is not None else ("", "empty text")
        if problem and problem != "empty text":  # Empty turns are the corpus's way to end a talk.
            report.warn(where, f"{problem} (the dialogue ends before it)", str(key))
            value = None
        if text and value is not None:
            texts[key] = text
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
        records = json.loads(_decode_lines(path.read_bytes(), report))
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error}") from error
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}") from error
    except RecursionError as error:
        raise DataError(f"{path}: not valid JSON: nested too deeply") from error
    if not isinstance(records, list):
        raise DataError(f"{path}: expected a JSON list of dialogues, found {type(records).__name__}")
    return records


def parse_source(entry: str) -> tuple[str, float]:
    """"FILE" or "FILE@WEIGHT" -> (file, weight)."""
    path, _, weight = str(entry).rpartition("@") if "@" in str(entry) else (str(entry), "", "1")
    try:
        value = float(weight)
    except ValueError:
        raise DataError(f"data.sources entry {entry!r}: the weight after '@' must be a number") from None
    if not 0 < value < float("inf"):
        raise DataError(f"data.sources entry {entry!r}: the weight must be a finite number > 0")
    return path, value


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
