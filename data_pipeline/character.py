"""A character: the persona the chatbot speaks as, read from a YAML file.

    name: 하루
    persona:                 # sentences the encoder sees before every conversation
      - 내 이름은 하루야.
    identity:                # question/answer pairs mixed into training, up-weighted
      - q: 너는 누구니?
        a: 저는 하루예요.
    weight: 20               # how many times each identity pair appears per epoch
    greeting: 안녕하세요!     # optional: what the chat page says first (default: the first identity answer)
    dialogues:               # optional: conversations in the character's voice, FILE or FILE@WEIGHT,
      - haru_dialogues.jsonl #   relative to this file; any format `data_pipeline/sources.py` reads

Training adds the identity pairs to the training split only (they are a specification,
not data to hold out), `weight` times per epoch. The character's dialogues are one more
source each, split by dialogue like every other (`data_pipeline/loading.py`): a run
trained with the character learns to converse in its voice, and its held-out dialogues
measure how well. With `data.character_persona` it also
gives the character's persona to every dialogue that has none of its own, and the chat
and the export put it before every request (so training and serving see the same). The
run keeps a copy (`<run_dir>/character.yaml`) and the export carries it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from data_pipeline.sources import DataError, Dialogue, normalize_text


FIELDS = ("name", "persona", "identity", "weight", "greeting", "dialogues")
IDENTITY_SOURCE_MARK = ":identity "  # An identity pair's source: "<character file>:identity <n>".


def is_identity_source(source: str) -> bool:
    """Whether an example's `source` names a character's identity pair (see `identity_dialogues`)."""
    return IDENTITY_SOURCE_MARK in source


@dataclass(frozen=True)
class Character:
    name: str
    persona: tuple[str, ...]
    identity: tuple[tuple[str, str], ...]
    weight: float = 20.0
    source: str = ""
    greeting: str = ""  # The chat page's first line; the first identity answer when the file has none.
    dialogues: tuple[str, ...] = ()  # "FILE" or "FILE@WEIGHT" entries, FILE resolved against the character file.

    def dialogue_files(self) -> frozenset[str]:
        """The file names of its dialogues (how `Example.source` names them, folder aside)."""
        from data_pipeline.sources import parse_source

        return frozenset(Path(parse_source(entry)[0]).name for entry in self.dialogues)

    def identity_dialogues(self, with_persona: bool = False) -> list[Dialogue]:
        persona = self.persona if with_persona else ()
        return [
            Dialogue((question, answer), persona, f"{self.source}{IDENTITY_SOURCE_MARK}{index}")
            for index, (question, answer) in enumerate(self.identity)
        ]


PROJECT_ROOT = Path(__file__).resolve().parents[1]


def character_path(path: str | Path) -> Path:
    """`path` as given where it exists, else relative to the project (the default `characters/haru.yaml`
    from any working directory), else as given (for the error that names it)."""
    path = Path(path)
    if path.exists() or path.is_absolute() or not (PROJECT_ROOT / path).exists():
        return path
    return PROJECT_ROOT / path


def load_character(path: str | Path) -> Character:
    """Read and check a character file; `DataError` names the file and the field."""
    path = Path(path)
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DataError(f"{path}: cannot read character file: {error}") from error
    except yaml.YAMLError as error:
        raise DataError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(loaded, dict):
        raise DataError(f"{path}: expected a mapping with name, persona, identity")
    unknown = set(loaded) - set(FIELDS)
    if unknown:
        raise DataError(f"{path}: unknown field(s) {sorted(unknown)}; expected {', '.join(FIELDS)}")
    name = normalize_text(str(loaded.get("name") or ""))
    if not name:
        raise DataError(f"{path}: field 'name' is missing or empty")
    persona = _sentences(loaded.get("persona"), path)
    identity = tuple(_pair(item, index, path) for index, item in enumerate(loaded.get("identity") or []))
    if not identity:
        raise DataError(f"{path}: field 'identity' needs at least one {{q, a}} pair")
    weight = loaded.get("weight", 20.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight <= 0:
        raise DataError(f"{path}: field 'weight' must be a positive number, got {weight!r}")
    greeting = loaded.get("greeting", identity[0][1])
    if not isinstance(greeting, str) or not normalize_text(greeting):
        raise DataError(f"{path}: field 'greeting' must be a non-empty text, got {greeting!r}")
    return Character(name, persona, identity, float(weight), str(path), normalize_text(greeting),
                     _dialogue_files(loaded.get("dialogues"), path))


def _sentences(value, path: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(s, str) and s.strip() for s in value):
        raise DataError(f"{path}: field 'persona' must be a non-empty list of sentences")
    return tuple(normalize_text(s) for s in value)


def _pair(item, index: int, path: Path) -> tuple[str, str]:
    if not isinstance(item, dict) or set(item) != {"q", "a"}:
        raise DataError(f"{path}: identity[{index}] must be a mapping with exactly 'q' and 'a'")
    question, answer = (normalize_text(str(item[k] or "")) for k in ("q", "a"))
    if not question or not answer:
        raise DataError(f"{path}: identity[{index}] has an empty 'q' or 'a'")
    return question, answer


def _dialogue_files(value, path: Path) -> tuple[str, ...]:
    """The `dialogues` entries with each FILE resolved against the character file's folder (not read here)."""
    from data_pipeline.sources import parse_source

    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(entry, str) and entry.strip() for entry in value):
        raise DataError(f"{path}: field 'dialogues' must be a list of dialogue files (FILE or FILE@WEIGHT)")
    entries = []
    for entry in value:
        try:
            file, weight = parse_source(entry.strip())
        except DataError as error:
            raise DataError(f"{path}: field 'dialogues': {error}") from None
        resolved = Path(file) if Path(file).is_absolute() else path.parent / file
        entries.append(f"{resolved}@{weight:g}")
    return tuple(entries)
