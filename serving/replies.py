"""Replies in process through the exported model's own graph functions: one reply path everywhere.

`RunReplies` wraps a trained run in `serving.signatures.ServingFunctions`, the code
the SavedModel's `serving_default` and `chat` signatures run, compiled here with
`tf.function`. `chat.py` and `evaluate.py` reply through it (the latency benchmark
times the export itself), so the same controls and seed give the same reply in
process and from a server. The
decoding controls travel as tensors, as a request's do; the three fixed when a model
is exported (beam width, length penalty, no-repeat n-gram size) select a set of
functions built for them.

    replies = RunReplies(load_run("runs/seed"))
    replies.respond(["배고파"], None, DecodingSettings())   # packed contexts -> `Selection`
    replies.lookup(["배고파"])                               # the retrieval anchor
    replies.chat([["안녕", "안녕하세요", "배고파"]], DecodingSettings())  # histories -> replies (`chat`)

`TrainingReplies` is the same path over a model that is still training: the sample
replies `train.py` prints and writes to TensorBoard and `metrics.json`.
(`serving/chat_session.LocalReplies` sends a chat session's history to `chat`.)
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from config import DecodingSettings
from data_pipeline.loading import run_character
from errors import UserError
from model.hybrid import Selection
from model.retrieval import run_index
from serving.client import chat_arrays
from serving.signatures import CHAT_SPECS, ServingFunctions


def decoded(strings: tf.Tensor) -> list[str]:
    return [s.decode("utf-8") for s in strings.numpy()]


class RunReplies:
    """The served reply path of a `TrainedRun` (see `model/run_files.py`), in this process."""

    def __init__(self, run, retrieval: bool | None = None):
        self.run = run
        self.context_turns = run.context_turns  # Earlier turns sent with the question.
        enabled = run.config.retrieval.enabled if retrieval is None else retrieval
        self.index = run_index(run.run_dir, run.config.retrieval) if enabled else None
        character = run_character(run.run_dir)  # As the export: its name is never an answer about the user.
        self.character_lines = (character.name, character.greeting) if character else None
        self._functions: dict[tuple, Compiled] = {}

    def functions(self, settings: DecodingSettings) -> "Compiled":
        """The export's graph functions for the export-time fields of `settings`, compiled once."""
        fixed = (settings.num_beams, settings.length_penalty, settings.no_repeat_ngram_size, settings.stop_at_end)
        if fixed not in self._functions:
            config = self.run.config
            export = dataclasses.replace(config.export, num_beams=fixed[0], length_penalty=fixed[1],
                                         no_repeat_ngram_size=fixed[2])
            functions = ServingFunctions(self.run.model, self.run.tokenizer, self.context_turns, export, fixed[3],
                                         persona=self.run.persona, max_persona_length=config.data.max_persona_length,
                                         index=self.index, retrieval=config.retrieval, selector=config.selector,
                                         character_lines=self.character_lines)
            strings = tf.TensorSpec([None], tf.string)
            # Traced as the export traces its endpoints (Keras' `ExportArchive`: no autograph).
            lookup = (tf.function(functions.lookup, input_signature=[strings, strings], autograph=False)
                      if self.index else None)
            chat = tf.function(functions.chat, input_signature=list(CHAT_SPECS), autograph=False)
            self._functions[fixed] = Compiled(functions, {}, lookup, chat)
        return self._functions[fixed]

    def responder(self, settings: DecodingSettings):
        """The compiled `respond` for `settings`: its strategy and retrieval switch fixed, as
        `serving_default` fixes them (only that strategy's decoder is built); the other controls are inputs."""
        compiled = self.functions(settings)
        key = (settings.strategy, settings.retrieval)
        if key not in compiled.respond:
            strings, functions = tf.TensorSpec([None], tf.string), compiled.functions
            controls = list(CHAT_SPECS[2:-1])  # temperature, top_k, top_p, max_length, seed.
            compiled.respond[key] = tf.function(
                lambda c, p, *values: _as_tuple(functions.respond(c, p, tf.constant(key[0]), *values, key[1])),
                input_signature=[strings, strings, *controls], autograph=False)
        return compiled.respond[key]

    def refresh(self):
        """Read the model's weights again (after it trained further): the fused decoder keeps copies."""
        for compiled in self._functions.values():
            compiled.functions.decoder.refresh()

    def respond(self, contexts: list[str], personas: list[str] | None, settings: DecodingSettings) -> Selection:
        """Packed contexts (as `Example.context`) and personas (None: the run's) -> a `Selection` of numpy arrays."""
        respond = self.responder(settings)
        personas = [self.run.persona] * len(contexts) if personas is None else personas
        reply, retrieved, similarity = respond(tf.constant(contexts, tf.string), tf.constant(personas, tf.string),
                                               *controls_of(settings)[1:-1])
        return Selection(np.array(decoded(reply), dtype=object), retrieved.numpy(), similarity.numpy())

    def chat(self, histories: list[list[str]], settings: DecodingSettings) -> list[str]:
        """Conversations (oldest turn first, the user's last) -> replies: the `chat` signature itself."""
        controls = dict(zip(("strategy", "temperature", "top_k", "top_p", "max_length", "seed", "retrieval"),
                            controls_of(settings)))
        inputs = chat_arrays(histories)
        return decoded(self.functions(settings).chat(tf.constant(inputs["history"].tolist(), tf.string), **controls)
                       ["reply"])

    def lookup(self, contexts: list[str], personas: list[str] | None = None) -> list[str]:
        """The retrieval anchor: the response of the most similar training key."""
        lookup = self.functions(DecodingSettings()).lookup
        if lookup is None:
            raise UserError(f"{self.run.run_dir} replies without retrieval (retrieval.enabled: false)")
        personas = [self.run.persona] * len(contexts) if personas is None else personas
        return decoded(lookup(tf.constant(contexts, tf.string), tf.constant(personas, tf.string)))


class TrainingReplies:
    """What an export of a training model's weights of this moment would reply (greedy, seed 0).

    `run` is a `TrainedRun` whose model is a float32 copy of `training_model` (or the
    model itself where it trains in float32): every call copies the training weights
    in, refreshes the fused decoder and replies through `RunReplies`, so the graph
    functions are traced once per run, not once per epoch. `model.training.train`
    calls it for the sample replies of each epoch and of `metrics.json`.
    """

    def __init__(self, run, training_model):
        self.training_model = training_model
        self.replies = RunReplies(run)

    def __call__(self, contexts: list[str], personas: list[str] | None = None) -> list[str]:
        model = self.replies.run.model
        if model is not self.training_model:
            model.set_weights(self.training_model.get_weights())
        self.replies.refresh()
        return list(self.replies.respond(contexts, personas, DecodingSettings(seed=0)).reply)


class Compiled(NamedTuple):
    """`ServingFunctions` and its compiled functions: respond (packed contexts) per (strategy, retrieval),
    lookup, and chat (histories)."""

    functions: ServingFunctions
    respond: dict
    lookup: Callable | None
    chat: Callable


def controls_of(settings: DecodingSettings) -> tuple[tf.Tensor, ...]:
    """`settings` as the `chat` signature's control tensors (strategy ... seed, retrieval)."""
    seed = settings.seed if settings.seed is not None else random.randrange(2**31)  # As `RemoteReplies`.
    return (tf.constant(settings.strategy), tf.constant(settings.temperature, tf.float32),
            tf.constant(settings.top_k, tf.int32), tf.constant(settings.top_p, tf.float32),
            tf.constant(settings.max_reply_length, tf.int32), tf.constant(seed, tf.int64),
            tf.constant(settings.retrieval))


def _as_tuple(selection: Selection) -> tuple:
    return selection.reply, selection.retrieved, selection.similarity
