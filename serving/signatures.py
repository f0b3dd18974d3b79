"""The exported model's graph functions: text in, reply out, everything in between in the graph.

Two signatures, both returning `{"reply": [batch] string}`:

    serving_default(text [B] string)
        greedy replies with the export's fixed settings (`ExportConfig`);
    chat(history [B, T] string, strategy [] string, temperature [] float,
         top_k [] int, top_p [] float, max_length [] int, seed [] int)
        one conversation per row, oldest turn first, the user's question last, ""
        where a row has fewer turns; the question and the earlier turns the model was
        trained to see are packed as in training (`data_pipeline/context.py`); the
        decoding controls apply to the whole request.

Both put the run's persona (the character's, when trained with `data.character_persona`) before the turns, as training did.

Inside: NFC normalisation and whitespace folding (as `normalize_text`), WordPiece
tokenization, the cached decoder with a keras-hub sampler (greedy, beam, or greedy
over Gumbel-perturbed logits for sampling, see `sampling_logits`), detokenization
with the training text's spacing. No `py_function`, and no `Xla*` op
(`core_op_slice_update`), so TF Serving, which runs with XLA disabled, can serve it.
Bad controls fail the request with InvalidArgument (HTTP 400 from TF Serving).
"""

from __future__ import annotations

import keras_hub
import tensorflow as tf
import tensorflow_text as tf_text

from config import DataConfig, ExportConfig
from data_pipeline.context import history_to_context
from model.core_ops import core_op_slice_update
from model.fused_decoding import FusedDecoder
from model.generation import (
    apply_controls, best_beam, detokenize_replies, encode_contexts, generate_reply_ids, sampling_logits,
)

STRATEGIES = ("greedy", "beam", "sample")
TEXT_SPEC = tf.TensorSpec([None], tf.string, name="text")
CHAT_SPECS = (
    tf.TensorSpec([None, None], tf.string, name="history"),
    tf.TensorSpec([], tf.string, name="strategy"),
    tf.TensorSpec([], tf.float32, name="temperature"),
    tf.TensorSpec([], tf.int32, name="top_k"),
    tf.TensorSpec([], tf.float32, name="top_p"),
    tf.TensorSpec([], tf.int32, name="max_length"),
    tf.TensorSpec([], tf.int64, name="seed"),
)


def normalize_in_graph(text: tf.Tensor) -> tf.Tensor:
    """NFC, whitespace runs (Unicode separators included) folded to one space, stripped."""
    text = tf_text.normalize_utf8(text, "NFC")
    return tf.strings.strip(tf.strings.regex_replace(text, r"[\s\p{Z}]+", " "))


def join_history(history: tf.Tensor, context_turns: int) -> tf.Tensor:
    """[B, T] turns, oldest first, "" for none -> [B] contexts: the question and `context_turns` earlier turns."""
    turns = normalize_in_graph(history)
    return history_to_context(tf.ragged.boolean_mask(turns, tf.strings.length(turns) > 0), context_turns)


class ServingFunctions:
    """The graph functions of an export, around a trained model and its tokenizer."""

    def __init__(self, model, tokenizer, context_turns: int, export_config: ExportConfig, stop_at_end: bool = True,
                 persona: str = "", max_persona_length: int = DataConfig.max_persona_length):
        self.model = model
        self.stop_at_end = stop_at_end  # False: always max_length tokens (latency benchmarks only).
        self.tokenizer = tokenizer
        self.context_turns = context_turns  # Earlier turns kept before the question.
        self.persona, self.max_persona_length = persona, max_persona_length
        self.settings = export_config
        vocabulary = tokenizer.get_vocabulary()
        self.continuation_pieces = tf.constant([token.startswith("##") for token in vocabulary])
        # The decoder's weights laid out for one token at a time, kept as variables.
        self.decoder = FusedDecoder(model)
        self.greedy = keras_hub.samplers.GreedySampler()
        self.beam = keras_hub.samplers.BeamSampler(num_beams=export_config.num_beams, return_all_beams=True)

    def reply(self, text):
        """serving_default: [B] questions -> {"reply": [B] greedy replies}."""
        encoder_ids = self._encode(normalize_in_graph(text))
        with core_op_slice_update():
            reply_ids = self._greedy(encoder_ids, self.settings.max_reply_length)
        return {"reply": detokenize_replies(self.tokenizer, reply_ids)}

    def chat(self, history, strategy, temperature, top_k, top_p, max_length, seed):
        """[B, T] conversations and decoding controls -> {"reply": [B] replies}."""
        strategy_index = self._check_controls(strategy, temperature, top_k, top_p, max_length)
        with tf.control_dependencies([strategy_index]):
            encoder_ids = self._encode(join_history(history, self.context_turns))
        with core_op_slice_update():  # No Xla* ops in the graph (see model/core_ops.py).
            reply_ids = tf.switch_case(strategy_index, [
                lambda: self._greedy(encoder_ids, max_length),
                lambda: self._beam(encoder_ids, max_length),
                lambda: self._sample(encoder_ids, max_length, temperature, top_k, top_p, seed),
            ])
        return {"reply": detokenize_replies(self.tokenizer, reply_ids)}

    def _encode(self, contexts):
        personas = tf.fill(tf.shape(contexts), self.persona)
        return encode_contexts(self.tokenizer, contexts, self.model.max_length, personas, self.max_persona_length)

    # -- strategies: each returns reply ids [B, L] ---------------------------
    def _controlled(self, logits, prompt, index):
        return apply_controls(logits, prompt, index, self.settings.no_repeat_ngram_size, self.continuation_pieces)

    def _decode(self, encoder_ids, sampler, max_length, controlled, beams: int = 1):
        return generate_reply_ids(
            self.model, encoder_ids, sampler, max_length, controlled, beams=beams,
            stop_at_end=self.stop_at_end, decoder=self.decoder,
        )

    def _greedy(self, encoder_ids, max_length):
        return self._decode(encoder_ids, self.greedy, max_length, self._controlled)[:, 1:]

    def _beam(self, encoder_ids, max_length):
        prompts, log_probs = self._decode(encoder_ids, self.beam, max_length, self._controlled, self.settings.num_beams)
        return best_beam(prompts, log_probs, alpha=self.settings.length_penalty)[:, 1:]

    def _sample(self, encoder_ids, max_length, temperature, top_k, top_p, seed):
        def perturbed(logits, prompt, index):
            logits = self._controlled(logits, prompt, index)
            return sampling_logits(logits, index, temperature, top_k, top_p, seed)

        return self._decode(encoder_ids, self.greedy, max_length, perturbed)[:, 1:]

    def _check_controls(self, strategy, temperature, top_k, top_p, max_length):
        """The strategy's index; InvalidArgument naming the field for out-of-range controls."""
        matches = tf.equal(tf.constant(STRATEGIES), strategy)
        checks = [
            tf.debugging.assert_equal(tf.reduce_any(matches), True, message=f"strategy must be one of {STRATEGIES}"),
            tf.debugging.assert_positive(temperature, message="temperature must be > 0"),
            tf.debugging.assert_non_negative(top_k, message="top_k must be >= 0 (0: no limit)"),
            tf.debugging.assert_positive(top_p, message="top_p must be in (0, 1]"),
            tf.debugging.assert_less_equal(top_p, 1.0, message="top_p must be in (0, 1]"),
            tf.debugging.assert_positive(max_length, message="max_length must be >= 1"),
        ]
        with tf.control_dependencies(checks):
            return tf.argmax(tf.cast(matches, tf.int32), output_type=tf.int32)
