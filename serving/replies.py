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

(`serving/chat_session.LocalReplies` turns a chat history into the packed context.)
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import tensorflow as tf

from errors import UserError
from model.generation import DecodingSettings
from model.hybrid import Selection
from model.retrieval import run_index
from serving.signatures import CHAT_SPECS, ServingFunctions


def decoded(strings: tf.Tensor) -> list[str]:
    return [s.decode("utf-8") for s in strings.numpy()]


class RunReplies:
    """The served reply path of a `TrainedRun` (see `model/run_files.py`), in this process."""

    def __init__(self, run, retrieval: bool | None = None):
        self.run = run
        self.history_turns = run.history_turns  # Earlier turns sent with the question.
        enabled = run.config.retrieval.enabled if retrieval is None else retrieval
        self.index = run_index(run.run_dir, run.config.retrieval) if enabled else None
        self._functions: dict[tuple, tuple] = {}

    def functions(self, settings: DecodingSettings):
        """(ServingFunctions, compiled respond, compiled lookup) for the export-time fields of `settings`."""
        fixed = (settings.num_beams, settings.length_penalty, settings.no_repeat_ngram_size, settings.stop_at_end)
        if fixed not in self._functions:
            config = self.run.config
            export = dataclasses.replace(config.export, num_beams=fixed[0], length_penalty=fixed[1],
                                         no_repeat_ngram_size=fixed[2])
            functions = ServingFunctions(self.run.model, self.run.tokenizer, self.history_turns, export, fixed[3],
                                         persona=self.run.persona, max_persona_length=config.data.max_persona_length,
                                         index=self.index, retrieval=config.retrieval, selector=config.selector)
            strings = tf.TensorSpec([None], tf.string)
            respond = tf.function(lambda c, p, *controls: _as_tuple(functions.respond(c, p, *controls)),
                                  input_signature=[strings, strings, *CHAT_SPECS[1:]])
            lookup = tf.function(functions.lookup, input_signature=[strings, strings]) if self.index else None
            self._functions[fixed] = (functions, respond, lookup)
        return self._functions[fixed]

    def respond(self, contexts: list[str], personas: list[str] | None, settings: DecodingSettings) -> Selection:
        """Packed contexts (as `Example.context`) and personas (None: the run's) -> a `Selection` of numpy arrays."""
        _, respond, _ = self.functions(settings)
        personas = [self.run.persona] * len(contexts) if personas is None else personas
        reply, retrieved, similarity = respond(tf.constant(contexts, tf.string), tf.constant(personas, tf.string),
                                               *controls_of(settings))
        return Selection(np.array(decoded(reply), dtype=object), retrieved.numpy(), similarity.numpy())

    def lookup(self, contexts: list[str], personas: list[str] | None = None) -> list[str]:
        """The retrieval anchor: the response of the most similar training key."""
        _, _, lookup = self.functions(DecodingSettings())
        if lookup is None:
            raise UserError(f"{self.run.run_dir} replies without retrieval (retrieval.enabled: false)")
        personas = [self.run.persona] * len(contexts) if personas is None else personas
        return decoded(lookup(tf.constant(contexts, tf.string), tf.constant(personas, tf.string)))


def controls_of(settings: DecodingSettings) -> tuple[tf.Tensor, ...]:
    """`settings` as the `chat` signature's control tensors (strategy ... seed, retrieval)."""
    seed = settings.seed if settings.seed is not None else random.randrange(2**31)  # As `RemoteReplies`.
    return (tf.constant(settings.strategy), tf.constant(settings.temperature, tf.float32),
            tf.constant(settings.top_k, tf.int32), tf.constant(settings.top_p, tf.float32),
            tf.constant(settings.max_reply_length, tf.int32), tf.constant(seed, tf.int64),
            tf.constant(settings.retrieval))


def _as_tuple(selection: Selection) -> tuple:
    return selection.reply, selection.retrieved, selection.similarity
