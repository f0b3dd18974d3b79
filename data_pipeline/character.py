"""A character: the persona the chatbot speaks as, read from a YAML file.

    name: 하루
    persona:                 # sentences the encoder sees before every conversation
      - 내 이름은 하루야.
    identity:                # question/answer pairs mixed into training, up-weighted
      - q: 너는 누구니?
        a: 저는 하루예요.
    weight: 20               # how many times each identity pair appears per epoch
    greeting: 안녕하세요!     # optional: what the chat page says first (default: the first identity answer)
    dialogues:               # optional: conversations in the character's voice, relative to this file,
      - haru_dialogues.jsonl #   FILE or FILE@WEIGHT, any format `data_pipeline/sources.py` reads;
      - file: more.jsonl     #   or a mapping: file, weight, held_out (false: every dialogue trains,
        held_out: false      #   none joins the validation split: written after its held-out dialogues)

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


@dataclass(frozen=True)
class DialogueFile:
    """One of a character's dialogue files: where it is, its weight, whether a share of it is held out."""

    path: Path
    weight: float = 1.0
    held_out: bool = True  # False: every dialogue trains (none in the validation split).


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
    dialogues: tuple[DialogueFile, ...] = ()  # Resolved against the character file's folder.

    def dialogue_files(self) -> frozenset[str]:
        """The file names of its dialogues (how `Example.source` names them, folder aside)."""
        return frozenset(entry.path.name for entry in self.dialogues)

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


def _dialogue_files(value, path: Path) -> tuple[DialogueFile, ...]:
    """The `dialogues` entries, each file resolved against the character file's folder (not read here)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise DataError(f"{path}: field 'dialogues' must be a list of dialogue files (FILE, FILE@WEIGHT or "
                        "{file, weight, held_out})")
    return tuple(_dialogue_file(entry, index, path) for index, entry in enumerate(value))


def _dialogue_file(entry, index: int, path: Path) -> DialogueFile:
    from data_pipeline.sources import parse_source

    where = f"{path}: dialogues[{index}]"
    if isinstance(entry, str) and entry.strip():
        entry = {"file": entry.strip()}
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) or not entry["file"].strip() \
            or set(entry) - {"file", "weight", "held_out"}:
        raise DataError(f"{where} must be FILE, FILE@WEIGHT or a mapping with file (and weight, held_out)")
    try:
        file, weight = parse_source(entry["file"].strip())
        weight = parse_source(f"x@{entry['weight']}")[1] if "weight" in entry else weight
    except DataError as error:
        raise DataError(f"{where}: {str(error).split(': ', 1)[-1]}") from None
    held_out = entry.get("held_out", True)
    if not isinstance(held_out, bool):
        raise DataError(f"{where}: held_out must be true or false, got {held_out!r}")
    resolved = Path(file) if Path(file).is_absolute() else path.parent / file
    return DialogueFile(resolved, weight, held_out)
