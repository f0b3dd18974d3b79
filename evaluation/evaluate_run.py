"""Evaluate a trained run on held-out examples: likelihood, then replies for several decoding strategies.

`evaluate_run` is what `evaluate.py` calls. Held-out examples are the run's own
validation split (never trained on) unless a file is given; replies are generated
in batches with the cached decoder, one compiled graph per strategy.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from config import DataConfig
from errors import ConfigError
from data_pipeline.context import as_ragged_ids
from data_pipeline.examples import Example, load_examples, to_examples
from data_pipeline.loading import load_dialogues
from evaluation.likelihood import likelihood_scores
from evaluation.reply_metrics import score_replies
from evaluation.ssa import SSAScore, key, load_labels, ssa_score, unrated
from config import DecodingSettings
from serving.replies import RunReplies
from model.run_files import load_run
from run_directory import RunDirectory

# The strategies `evaluate.py --strategies` knows, by name: the served reply path's controls
# (`serving/replies.py`); "retrieval" is the lookup alone (the most similar training key's response).
RETRIEVAL = "retrieval"
EVALUATED_STRATEGIES = {
    "greedy": DecodingSettings(retrieval=False),
    "beam": DecodingSettings(strategy="beam", retrieval=False),
    "top-p": DecodingSettings(strategy="sample", top_p=0.9, seed=0, retrieval=False),
    "greedy-plain": DecodingSettings(no_repeat_ngram_size=0, retrieval=False),
    "sample": DecodingSettings(strategy="sample", seed=0, no_repeat_ngram_size=0, retrieval=False),
    RETRIEVAL: None,
    "hybrid": DecodingSettings(),  # What serving_default answers.
    "hybrid-beam": DecodingSettings(strategy="beam"),
}
DEFAULT_STRATEGIES = ("retrieval", "greedy", "beam", "top-p", "hybrid")


@dataclass
class StrategyReplies:
    settings: DecodingSettings | None  # None: the lookup.
    replies: list[str]
    reply_tokens: list[int]
    ended: list[bool]
    seconds: float
    retrieved: list[bool]  # The reply is a training response (the hybrid chose a retrieved candidate).


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
    ssa: dict[str, SSAScore] = field(default_factory=dict)  # Per strategy, from `--ssa-labels` (evaluation/ssa.py).
    unrated: dict = field(default_factory=dict)  # Distinct (question, reply) pairs no label file rates -> row.


def held_out_examples(run, data_path: str | None, limit: int | None, only_source: str | None = None,
                      exclude_rated: list[str] = (), spread: bool = False) -> tuple[list[Example], str]:
    """The run's validation split, or the examples of `data_path` (same readers as training).

    `only_source`: keep examples whose source (file:record) contains this text;
    `exclude_rated`: leave out the questions these label files rate (questions outside a label set);
    `spread`: the `limit` examples evenly spaced over all of them, not the first (files are often sorted).
    """
    if data_path:
        dialogues, report = load_dialogues(DataConfig(sources=[data_path]))
        examples = [  # As the run's model would see them: its character's persona where a dialogue has none.
            e if e.persona else dataclasses.replace(e, persona=run.persona)
            for e in to_examples(dialogues, run.config.data.context_turns)
        ]
        source = f"{data_path} ({report.kept} kept)"
    else:
        examples, source = load_examples(RunDirectory(run.run_dir).validation_split), "the run's validation split"
    if only_source:
        examples, source = [e for e in examples if only_source in e.source], f"{source}, sources with {only_source!r}"
    if exclude_rated:
        rated = {question for question, _ in load_labels(exclude_rated)}
        examples = [e for e in examples if key(e.context, "")[0] not in rated]
        source = f"{source}, without the questions of {', '.join(map(str, exclude_rated))}"
    if not examples:
        raise ValueError(f"no examples in {source}")
    if limit and spread and len(examples) > limit:
        step = len(examples) / limit
        examples, source = [examples[int(i * step)] for i in range(limit)], f"{source}, {limit} evenly spaced"
    return examples[:limit] if limit else examples, source


def generate(replies: RunReplies, contexts: list[str], settings: DecodingSettings | None,
             batch_size: int, personas: list[str] | None = None) -> StrategyReplies:
    """Replies for `contexts` (personas: the run's unless given) in batches, through the served reply path.

    Token counts re-tokenize each reply; a reply of fewer than `max_reply_length`
    tokens counts as ended with [END] (the generator stops there or at the cap).
    """
    started = time.perf_counter()
    texts, retrieved = [], []
    for start in range(0, len(contexts), batch_size):
        batch, batch_personas = contexts[start : start + batch_size], None
        if personas is not None:
            batch_personas = personas[start : start + batch_size]
        if settings is None:
            texts += replies.lookup(batch, batch_personas)
            retrieved += [True] * len(batch)
        else:
            chosen = replies.respond(batch, batch_personas, settings)
            texts += list(chosen.reply)
            retrieved += chosen.retrieved.tolist()
    seconds = time.perf_counter() - started
    tokens = as_ragged_ids(replies.run.tokenizer(tf.constant(texts or [""]))).row_lengths().numpy().tolist()[: len(texts)]
    cap = settings.max_reply_length if settings else replies.run.model.sequence_length
    return StrategyReplies(settings, texts, tokens, [t < cap for t in tokens], seconds, retrieved)


def evaluate_run(run_dir: str | Path, data_path: str | None = None, strategies: list[str] = DEFAULT_STRATEGIES,
                 limit: int | None = 1000, probes: list[str] = (), batch_size: int = 64,
                 only_source: str | None = None, ssa_labels: list[str] = (), exclude_rated: list[str] = (),
                 spread: bool = False) -> Evaluation:
    """Replies of each strategy to the held-out examples, scored against the references (and by SSA
    ratings where `ssa_labels` files are given: the rated share and, over 90% rated, the SSA)."""
    unknown = [s for s in strategies if s not in EVALUATED_STRATEGIES]
    if unknown:
        raise ConfigError(f"unknown strategies {unknown}; choose from {', '.join(sorted(EVALUATED_STRATEGIES))}")
    started = time.perf_counter()
    run = load_run(run_dir)
    examples, source = held_out_examples(run, data_path, limit, only_source, exclude_rated, spread)
    likelihood = likelihood_scores(run.model, run.tokenizer, examples, run.config.data, batch_size)
    evaluation = Evaluation(run.run_dir, source, examples, likelihood, run=run)
    needs_index = any(name == RETRIEVAL or name.startswith("hybrid") for name in strategies)
    replies = RunReplies(run, retrieval=True if needs_index else None)
    contexts, references = [e.context for e in examples], [e.response for e in examples]
    personas = [e.persona for e in examples]
    labels = load_labels(ssa_labels) if ssa_labels else None
    for name in strategies:
        result = generate(replies, contexts, EVALUATED_STRATEGIES[name], batch_size, personas)
        evaluation.strategies[name] = result
        evaluation.scores[name] = {
            **score_replies(result.replies, references, result.reply_tokens, result.ended).to_dict(),
            "retrieved_share": round(float(np.mean(result.retrieved)), 4),
            "top_reply_share": round(Counter(result.replies).most_common(1)[0][1] / len(result.replies), 4),
            "seconds": round(result.seconds, 1),
        }
        if labels is not None:
            evaluation.ssa[name] = ssa_score(contexts, result.replies, labels)
            for row in unrated(contexts, result.replies, [e.source for e in examples], labels):
                evaluation.unrated.setdefault(key(row["question"], row["reply"]), row)
        if probes:
            answers = generate(replies, list(probes), EVALUATED_STRATEGIES[name], batch_size).replies
            for question, answer in zip(probes, answers):
                evaluation.probes.setdefault(question, []).append(answer)
    evaluation.seconds = time.perf_counter() - started
    return evaluation


def reply_length_arrays(evaluation: Evaluation) -> dict[str, np.ndarray]:
    return {name: np.array(r.reply_tokens) for name, r in evaluation.strategies.items()}
