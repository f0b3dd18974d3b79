"""Read a finished run directory back: its configuration, tokenizer and trained model."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import keras

from config import Config, load_config
from data_pipeline.loading import run_context_turns, run_persona
from data_pipeline.vocab import load_vocabulary, make_tokenizer
from errors import DamagedFile, RunNotFound, damage_of
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
    model = _trained_model(run, config, tokenizer.vocabulary_size())
    return TrainedRun(config, model, tokenizer, run.root, run_persona(run.root, config.data),
                      run_context_turns(run.root, config.data.context_turns))


def _trained_model(run: RunDirectory, config: Config, vocabulary_size: int):
    """`model.keras`; where it is missing or damaged, the best checkpoint (the same weights), saying so."""
    damage = None
    if run.model.exists():
        try:
            return keras.saving.load_model(run.model)
        except Exception as error:  # Truncated, empty or another model's file: keras raises many kinds.
            damage = f"{run.model} is damaged ({damage_of(error)})"
    if not run.best_weights.exists():
        if damage:
            raise DamagedFile(f"{damage} and there is no {run.best_weights.relative_to(run.root)} to fall back on")
        raise RunNotFound(f"{run} has no {run.model.name} or {run.best_weights.relative_to(run.root)} yet")
    from model.transformer import build_model

    model = build_model(config.model, vocabulary_size, config.data.sequence_length)
    try:
        model.load_weights(run.best_weights)
    except Exception as error:
        raise DamagedFile(f"{(damage + ', and ') if damage else ''}{run.best_weights} is damaged "
                          f"({damage_of(error)}); train the run again (a new --run-dir)") from error
    if damage:
        print(f"{damage}; using {run.best_weights}, the same weights", file=sys.stderr)
    return model
