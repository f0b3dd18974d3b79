"""Load a run's dialogues (files or the TFDS builder), mix its sources and character, split, learn the vocabulary.

`prepare_data` is idempotent per run directory: the first call writes the split
(`data/train.jsonl`, `data/validation.jsonl`), the read report, the vocabulary
(`vocab.txt`) and a copy of the character file (`character.yaml`); later calls (a
resumed run) read them back, so a resumed run trains on exactly the same examples
and token ids.

Mixing: every source is read by its reader and split by dialogue on its own (same
seed, same fraction: a source's split does not depend on what it is mixed with), and
its training examples carry the source's weight. A character's dialogue files
(`dialogues:` in its YAML) are sources like the others, after `data.sources`, except that one
marked `held_out: false` trains whole (none of it in the validation split). Its
identity pairs join the training split only, with the character's weight; with
`data.character_persona` its persona also goes to every dialogue without one (and to
every served request).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from config import DataConfig
from data_pipeline.character import Character, load_character
from data_pipeline.context import format_persona
from data_pipeline.examples import (
    Example, earlier_turns, load_examples, save_examples, split_dialogues, to_examples,
)
from data_pipeline.sources import Dialogue, ReadReport, parse_source, read_dialogues
from data_pipeline.vocab import learn_vocabulary, load_vocabulary, make_tokenizer, save_vocabulary
from run_directory import RunDirectory

log = logging.getLogger(__name__)


@dataclass
class PreparedData:
    train: list[Example]
    validation: list[Example]
    vocabulary: list[str]
    tokenizer: object
    report: dict
    persona: str = ""  # The character's persona text (what serving prepends); "" without one.


def run_character(run_dir: Path) -> Character | None:
    """The character a run was trained with (its copy in the run directory), if any."""
    path = RunDirectory(run_dir).character
    return load_character(path) if path.exists() else None


def run_persona(run_dir: Path, data: DataConfig) -> str:
    """The persona text a run's model gets before every request ("" unless `data.character_persona`)."""
    character = run_character(run_dir) if data.character_persona else None
    return format_persona(character.persona) if character else ""


def run_context_turns(run_dir: Path, context_turns: int) -> int:
    """Earlier turns to send with a question: at most what training examples held.

    A run trained on single exchanges (ChatbotData) gets none, whatever `context_turns`
    says: its model never saw earlier turns.
    """
    path = RunDirectory(run_dir).data_report
    seen = json.loads(path.read_text(encoding="utf-8")).get("context_turns_seen", 0) if path.exists() else 0
    return min(context_turns, seen)


@dataclass
class Source:
    """One read source: its dialogues, what the reader reported, its weight, whether a share is held out."""

    dialogues: list[Dialogue]
    report: ReadReport
    weight: float = 1.0
    held_out: bool = True


def load_sources(data: DataConfig, character: Character | None = None) -> list[Source]:
    """Every source, then every dialogue file of `character`; no sources -> the TFDS builder."""
    loaded = ([Source(*read_dialogues(path), weight) for path, weight in map(parse_source, data.sources)]
              if data.sources else [Source(*_load_from_tfds(data))])
    files = character.dialogues if character else ()
    return loaded + [Source(*read_dialogues(entry.path), entry.weight, entry.held_out) for entry in files]


def load_dialogues(data: DataConfig) -> tuple[list[Dialogue], ReadReport]:
    """The sources' dialogues in one list (weights and the character's dialogues left out), with the first
    source's report."""
    loaded = load_sources(data)
    return [d for source in loaded for d in source.dialogues], loaded[0].report


def _load_from_tfds(data: DataConfig) -> tuple[list[Dialogue], ReadReport]:
    import tensorflow_datasets as tfds

    from data_pipeline.tfds_chatbot import ChatbotData

    builder = ChatbotData(data_dir=data.tfds_data_dir)
    download_config = tfds.download.DownloadConfig(manual_dir=data.tfds_manual_dir)
    builder.download_and_prepare(download_config=download_config)
    dialogues = [
        Dialogue(turns=(q.decode("utf-8"), a.decode("utf-8")), source=f"tfds:chatbot_data:{i}")
        for i, (q, a) in enumerate(tfds.as_numpy(builder.as_dataset(split="train", as_supervised=True)))
    ]
    report = ReadReport(source=f"tfds:chatbot_data ({builder.data_dir})", kept=len(dialogues))
    return dialogues, report


def prepare_data(data: DataConfig, run_dir: Path) -> PreparedData:
    """Split + vocabulary for `run_dir`, created once and reused on resume."""
    run = RunDirectory(run_dir)
    if run.vocabulary.exists() and run.validation_split.exists():
        log.info("reusing the split and vocabulary saved in %s", run)
        train, validation = load_examples(run.train_split), load_examples(run.validation_split)
        vocabulary = load_vocabulary(run.vocabulary)
        report = json.loads(run.data_report.read_text(encoding="utf-8"))
        return PreparedData(train, validation, vocabulary, make_tokenizer(vocabulary), report, run_persona(run_dir, data))

    character = load_character(data.character) if data.character else None
    train, validation, reports = [], [], []
    for source in load_sources(data, character):
        print(source.report.summary())
        reports.append({**source.report.to_dict(), "weight": source.weight, "held_out": source.held_out})
        dialogues = source.dialogues
        if character and data.character_persona:
            dialogues = [d if d.persona else dataclasses.replace(d, persona=character.persona) for d in dialogues]
        train_dialogues, validation_dialogues = (split_dialogues(dialogues, data.validation_fraction, data.split_seed)
                                                 if source.held_out else (dialogues, []))
        train += [dataclasses.replace(e, weight=source.weight) for e in to_examples(train_dialogues, data.context_turns)]
        validation += to_examples(validation_dialogues, data.context_turns)
    persona = ""
    if character:
        identity = to_examples(character.identity_dialogues(data.character_persona), data.context_turns)
        train += [dataclasses.replace(e, weight=character.weight) for e in identity]
        shutil.copyfile(data.character, run.character)
        persona = format_persona(character.persona) if data.character_persona else ""
    personas = sorted({e.persona for e in train if e.persona})
    vocabulary = learn_vocabulary([e.context for e in train] + [e.response for e in train] + personas, data.vocab_size)

    run.data.mkdir(parents=True, exist_ok=True)
    save_examples(train, run.train_split)
    save_examples(validation, run.validation_split)
    save_vocabulary(vocabulary, run.vocabulary)
    report = {
        "read": reports[0] if len(reports) == 1 else reports,
        "character": {"name": character.name, "identity_pairs": len(character.identity),
                      "weight": character.weight} if character else None,
        "train_examples": len(train),
        "validation_examples": len(validation),
        "context_turns_seen": max((earlier_turns(e) for e in train), default=0),
        "vocabulary_size": len(vocabulary),
    }
    run.data_report.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    return PreparedData(train, validation, vocabulary, make_tokenizer(vocabulary), report, persona)
