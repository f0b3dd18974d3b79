"""Load a run's dialogues from a CSV path or the TFDS builder, and prepare its split and vocabulary.

`prepare_data` is idempotent per run directory: the first call writes the split
(`data/train.jsonl`, `data/validation.jsonl`), the read report and the
vocabulary (`vocab.txt`); later calls (a resumed run) read them back, so a
resumed run trains on exactly the same examples and token ids.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from config import DataConfig
from data_pipeline.examples import Example, load_examples, save_examples, split_dialogues, to_examples
from data_pipeline.sources import Dialogue, ReadReport, read_qa_csv, read_xpersona_json
from data_pipeline.vocab import learn_vocabulary, load_vocabulary, make_tokenizer, save_vocabulary

log = logging.getLogger(__name__)


@dataclass
class PreparedData:
    train: list[Example]
    validation: list[Example]
    vocabulary: list[str]
    tokenizer: object
    report: dict


def load_dialogues(data: DataConfig) -> tuple[list[Dialogue], ReadReport]:
    """Dialogues from `data.path` (.json: XPersona-style; else CSV) or, with no path, the TFDS builder."""
    if data.path and str(data.path).lower().endswith(".json"):
        return read_xpersona_json(data.path)
    if data.path:
        return read_qa_csv(data.path)
    return _load_from_tfds(data)


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
    split_dir, vocab_path, report_path = run_dir / "data", run_dir / "vocab.txt", run_dir / "data_report.json"
    if vocab_path.exists() and (split_dir / "validation.jsonl").exists():
        log.info("reusing the split and vocabulary saved in %s", run_dir)
        train, validation = load_examples(split_dir / "train.jsonl"), load_examples(split_dir / "validation.jsonl")
        vocabulary = load_vocabulary(vocab_path)
        report = json.loads(report_path.read_text(encoding="utf-8"))
        return PreparedData(train, validation, vocabulary, make_tokenizer(vocabulary), report)

    dialogues, read_report = load_dialogues(data)
    print(read_report.summary())
    train_dialogues, validation_dialogues = split_dialogues(dialogues, data.validation_fraction, data.split_seed)
    train, validation = to_examples(train_dialogues, data.context_turns), to_examples(validation_dialogues, data.context_turns)
    vocabulary = learn_vocabulary([e.context for e in train] + [e.response for e in train], data.vocab_size)

    split_dir.mkdir(parents=True, exist_ok=True)
    save_examples(train, split_dir / "train.jsonl")
    save_examples(validation, split_dir / "validation.jsonl")
    save_vocabulary(vocabulary, vocab_path)
    report = {
        "read": read_report.to_dict(),
        "train_examples": len(train),
        "validation_examples": len(validation),
        "vocabulary_size": len(vocabulary),
    }
    report_path.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    return PreparedData(train, validation, vocabulary, make_tokenizer(vocabulary), report)
