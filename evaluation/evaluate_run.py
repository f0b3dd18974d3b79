"""Evaluate a trained run on held-out examples: likelihood, then replies for several decoding strategies.

`evaluate_run` is what `evaluate.py` calls. Held-out examples are the run's own
validation split (never trained on) unless a file is given; replies are generated
in batches with the cached decoder, one compiled graph per strategy.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from config import END_ID, DataConfig
from data_pipeline.examples import Example, load_examples, to_examples
from data_pipeline.loading import load_dialogues
from evaluation.likelihood import likelihood_scores
from evaluation.reply_metrics import score_replies
from model.generation import DecodingSettings, ReplyGenerator, reply_lengths
from model.run_files import load_run

# The strategies `evaluate.py --strategies` knows, by name.
STRATEGIES = {
    "greedy": DecodingSettings(no_repeat_ngram_size=3),
    "beam": DecodingSettings(strategy="beam", num_beams=4, no_repeat_ngram_size=3),
    "top-p": DecodingSettings(strategy="sample", top_p=0.9, seed=0, no_repeat_ngram_size=3),
    "greedy-plain": DecodingSettings(),
    "sample": DecodingSettings(strategy="sample", seed=0),
}


@dataclass
class StrategyReplies:
    settings: DecodingSettings
    replies: list[str]
    reply_tokens: list[int]
    ended: list[bool]
    seconds: float


@dataclass
class Evaluation:
    run_dir: Path
    source: str
    examples: list[Example]
    likelihood: dict
    strategies: dict[str, StrategyReplies] = field(default_factory=dict)
    scores: dict[str, dict] = field(default_factory=dict)
    probes: dict[str, list[str]] = field(default_factory=dict)  # question -> reply per strategy
    seconds: float = 0.0
    run: object = None  # The loaded `TrainedRun`, for further measurements on the same model.


def held_out_examples(run, data_path: str | None, limit: int | None,
                      only_source: str | None = None) -> tuple[list[Example], str]:
    """The run's validation split, or the examples of `data_path` (same readers as training).

    `only_source`: keep examples whose source (file:record) contains this text.
    """
    if data_path:
        dialogues, report = load_dialogues(DataConfig(sources=[data_path]))
        examples = [  # As the run's model would see them: its character's persona where a dialogue has none.
            e if e.persona else dataclasses.replace(e, persona=run.persona)
            for e in to_examples(dialogues, run.config.data.context_turns)
        ]
        source = f"{data_path} ({report.kept} kept)"
    else:
        examples, source = load_examples(run.run_dir / "data" / "validation.jsonl"), "the run's validation split"
    if only_source:
        examples, source = [e for e in examples if only_source in e.source], f"{source}, sources with {only_source!r}"
    if not examples:
        raise ValueError(f"no examples in {source}")
    return examples[:limit] if limit else examples, source


def generate(generator: ReplyGenerator, contexts: list[str], settings: DecodingSettings,
             batch_size: int, personas: list[str] | None = None) -> StrategyReplies:
    """Replies for `contexts` (personas: the generator's unless given), in batches; token counts and [END]s."""
    started = time.perf_counter()
    replies, tokens, ended = [], [], []
    for start in range(0, len(contexts), batch_size):
        batch_personas = personas[start : start + batch_size] if personas is not None else None
        ids = generator.generate_ids(generator.encode(contexts[start : start + batch_size], batch_personas), settings)
        has_end = (ids == END_ID).any(axis=1)
        replies += [t.decode("utf-8") for t in generator.detokenize(tf.constant(ids)).numpy()]
        tokens += (reply_lengths(tf.constant(ids)).numpy() - has_end).tolist()
        ended += has_end.tolist()
    return StrategyReplies(settings, replies, tokens, ended, time.perf_counter() - started)


def evaluate_run(run_dir: str | Path, data_path: str | None = None, strategies: list[str] = ("greedy", "beam", "top-p"),
                 limit: int | None = 1000, probes: list[str] = (), batch_size: int = 64,
                 only_source: str | None = None) -> Evaluation:
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown strategies {unknown}; choose from {sorted(STRATEGIES)}")
    started = time.perf_counter()
    run = load_run(run_dir)
    examples, source = held_out_examples(run, data_path, limit, only_source)
    likelihood = likelihood_scores(run.model, run.tokenizer, examples, run.config.data, batch_size)
    evaluation = Evaluation(run.run_dir, source, examples, likelihood, run=run)
    generator = run.generator()
    contexts, references = [e.context for e in examples], [e.response for e in examples]
    personas = [e.persona for e in examples]
    for name in strategies:
        result = generate(generator, contexts, STRATEGIES[name], batch_size, personas)
        evaluation.strategies[name] = result
        evaluation.scores[name] = {
            **score_replies(result.replies, references, result.reply_tokens, result.ended).to_dict(),
            "seconds": round(result.seconds, 1),
        }
        if probes:
            answers = generate(generator, list(probes), STRATEGIES[name], batch_size).replies
            for question, answer in zip(probes, answers):
                evaluation.probes.setdefault(question, []).append(answer)
    evaluation.seconds = time.perf_counter() - started
    return evaluation


def reply_length_arrays(evaluation: Evaluation) -> dict[str, np.ndarray]:
    return {name: np.array(r.reply_tokens) for name, r in evaluation.strategies.items()}
