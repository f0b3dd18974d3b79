"""Read a finished run directory back: its configuration, tokenizer and trained model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras

from config import Config, load_config
from data_pipeline.loading import run_context_turns, run_persona
from data_pipeline.vocab import load_vocabulary, make_tokenizer
from errors import RunNotFound
from run_directory import RunDirectory
from model.transformer import Seq2SeqTransformer


@dataclass
class TrainedRun:
    config: Config
    model: Seq2SeqTransformer
    tokenizer: object
    run_dir: Path
    persona: str = ""  # The character's persona text, given to every conversation; "" for none.
    context_turns: int = 0  # Earlier turns sent with each question (see `loading.run_context_turns`).

    def generator(self, decoder: str = "fused"):
        """A `ReplyGenerator` speaking with this run's persona (`decoder`: see `ReplyGenerator`)."""
        from model.generation import ReplyGenerator

        return ReplyGenerator(self.model, self.tokenizer, self.persona, self.config.data.max_persona_length, decoder)


def load_run(run_dir: str | Path) -> TrainedRun:
    """The model of `run_dir` (model.keras, else the best checkpoint) with its tokenizer."""
    run = RunDirectory(run_dir)
    if not run.config.exists():
        raise RunNotFound(f"{run} is not a run directory (no {run.config.name}); train one with train.py")
    config = load_config(run.config)
    tokenizer = make_tokenizer(load_vocabulary(run.vocabulary))
    if run.model.exists():
        model = keras.saving.load_model(run.model)
    elif run.best_weights.exists():
        from model.transformer import build_model

        model = build_model(config.model, tokenizer.vocabulary_size(), config.data.sequence_length)
        model.load_weights(run.best_weights)
    else:
        raise RunNotFound(f"{run} has no {run.model.name} or {run.best_weights.relative_to(run.root)} yet")
    return TrainedRun(config, model, tokenizer, run.root, run_persona(run.root, config.data),
                      run_context_turns(run.root, config.data.context_turns))
