"""Examples -> batched `tf.data` pipelines in the model's data contract.

Each element is `({"encoder_inputs": [B, S], "decoder_inputs": [B, T]}, targets [B, T])`:

    encoder_inputs = context tokens
    decoder_inputs = [START] + response tokens
    targets        = response tokens + [END]      (decoder_inputs shifted by one)

Tokenization runs inside the graph (tensorflow-text ops through keras-hub's
WordPieceTokenizer). Truncation rule, with L = `sequence_length`:
- the encoder input is the persona part (its first `max_persona_length` tokens) and
  the context's *last* tokens up to L in all (the newest turns matter most), packed
  by `data_pipeline/context.py` exactly as the exported model packs a request;
- the response keeps its *first* L - 1 tokens as decoder input and its first L
  as target; a response longer than L - 1 tokens has no [END] in its target,
  so the model never learns to stop mid-sentence.
Batches are grouped by the lengths of both sides (`LengthBuckets`: an example's key is the
pair of its encoder and decoder buckets) and each side is padded only to the longest sequence
of its batch, so little padding is computed on either side. Grouping by one length alone (the
longer side) left a third of the decoder's positions padding on multi-turn data, where a long
context often precedes a short reply, and the decoder's positions are the costly ones (each
also runs the output projection over the whole vocabulary).

The pipelines run without tf.data's autotuning thread (`WITHOUT_AUTOTUNE_THREAD`): Keras drops
each epoch's iterator at the epoch's end, and deleting one whose autotuning thread sleeps
(its sleeps double to ~41 s as the iterator ages) waited out the sleep with no CPU in use:
epochs of ~35 s took ~41 or ~81 s (docs/results.md, "Why some epochs took twice as long").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from config import DataConfig, END_ID, PAD_ID, START_ID, UNK_ID
from data_pipeline.context import encoder_token_ids
from data_pipeline.examples import Example



@dataclass(frozen=True)
class LengthBuckets:
    """Upper bounds (inclusive) of the length buckets of each side; an example's group is the pair.

    About 1.25x apart, so a batch pads each side by at most about a fifth; the groups that
    hold no example cost nothing. Each group's last, partial batch of an epoch is a smaller step.
    """

    encoder: tuple[int, ...] = (6, 8, 10, 12, 15, 19, 24, 30, 38, 48, 60, 76, 96)
    decoder: tuple[int, ...] = (5, 6, 7, 8, 10, 12, 15, 19, 24, 30, 38, 48)

    def key(self, encoder_length, decoder_length):
        """int64 group id of an example (graph-safe)."""
        def bucket(length, bounds):
            if not bounds:
                return tf.constant(0, tf.int64)
            return tf.reduce_sum(tf.cast(tf.cast(length, tf.int64) > tf.constant(bounds, tf.int64), tf.int64))

        return bucket(encoder_length, self.encoder) * (len(self.decoder) + 1) + bucket(decoder_length, self.decoder)


DEFAULT_BUCKETS = LengthBuckets()
NO_BUCKETS = LengthBuckets((), ())  # One group: every batch padded to its own longest sequences.

# AUTOTUNE stages still run in parallel, at tf.data's fixed default; only the optimisation thread,
# whose sleep an iterator's deletion waited for, is off.
WITHOUT_AUTOTUNE_THREAD = tf.data.Options()
WITHOUT_AUTOTUNE_THREAD.autotune.enabled = False


def tokenize_pair(tokenizer, personas, contexts, responses, sequence_length: int, max_persona_length: int):
    """Ragged token ids [B, None]: encoder inputs (persona + context) and responses."""
    encoder_ids = encoder_token_ids(tokenizer, personas, contexts, sequence_length, max_persona_length)
    response_ids = tokenizer(responses)[:, :sequence_length]
    return encoder_ids, tf.cast(response_ids, tf.int32)


def _to_model_tensors(context_ids, response_ids, sequence_length: int):
    """One example's encoder input, decoder input and target (1-D, unpadded, same length)."""
    decoder_inputs = tf.concat([tf.constant([START_ID], tf.int32), response_ids], axis=0)[:sequence_length]
    targets = tf.concat([response_ids, tf.constant([END_ID], tf.int32)], axis=0)[:sequence_length]
    return context_ids, decoder_inputs, targets


def repeat_by_weight(dataset: tf.data.Dataset, seed: int) -> tf.data.Dataset:
    """(c, d, t, weight) elements -> (c, d, t), each `weight` times per epoch.

    floor(weight) copies always, one more with probability equal to the fraction. The
    draw is fresh every epoch (`rerandomize_each_iteration`), so a weight below 1 samples
    a different share of its source each epoch instead of dropping the rest for good.
    """
    draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)

    def copies(element, draw):
        *tensors, weight = element
        uniform = tf.cast(draw % 1_000_000, tf.float32) / 1_000_000.0
        count = tf.cast(tf.floor(weight), tf.int64) + tf.cast(uniform < weight - tf.floor(weight), tf.int64)
        return tf.data.Dataset.from_tensors(tuple(tensors)).repeat(count)

    return tf.data.Dataset.zip((dataset, draws)).flat_map(copies)


def word_dropout(context_ids, decoder_inputs, targets, rate: float, seed: int):
    """Replace a random `rate` of input tokens with [UNK] (training only; targets untouched).

    Paraphrased questions share most of their words; hiding some words of the
    question makes the model rely on the rest, and hiding some of the decoder's
    previous tokens makes it rely on the question. Position 0 ([START]) is kept.
    """
    def hide(ids, keep_first):
        drop = tf.random.uniform(tf.shape(ids), seed=seed) < rate
        if keep_first:
            drop = tf.concat([[False], drop[1:]], axis=0)
        return tf.where(drop, UNK_ID, ids)

    return hide(context_ids, False), hide(decoder_inputs, True), targets


def make_dataset(
    examples: list[Example],
    tokenizer,
    *,
    sequence_length: int,
    batch_size: int,
    shuffle: bool,
    max_persona_length: int = DataConfig.max_persona_length,
    seed: int = 0,
    shuffle_buffer: int = 20000,
    word_dropout_rate: float = 0.0,
    buckets: LengthBuckets = DEFAULT_BUCKETS,
    pad_to: int | None = None,
) -> tf.data.Dataset:
    """The training (shuffle=True) or evaluation (shuffle=False) pipeline.

    `pad_to` replaces length buckets with every batch padded to that many tokens, the
    way tutorial pipelines do it (for benchmarks that compare against them). In the
    training pipeline (shuffle=True) each example appears `weight` times per epoch:
    the whole part always, the fraction as a fresh seeded draw each epoch.
    """
    if not examples:
        raise ValueError("make_dataset: no examples")
    columns = (
        tf.constant([e.persona for e in examples], tf.string),
        tf.constant([e.context for e in examples], tf.string),
        tf.constant([e.response for e in examples], tf.string),
        tf.constant([e.weight for e in examples], tf.float32),
    )
    dataset = (
        tf.data.Dataset.from_tensor_slices(columns)
        .batch(1024)
        .map(lambda p, c, r, w: (*tokenize_pair(tokenizer, p, c, r, sequence_length, max_persona_length), w),
             num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
        .map(lambda c, r, w: (*_to_model_tensors(c, r, sequence_length), w), num_parallel_calls=tf.data.AUTOTUNE)
        .filter(lambda c, d, t, w: tf.shape(c)[0] > 0)
        .cache()
    )
    if shuffle and any(e.weight != 1.0 for e in examples):
        dataset = repeat_by_weight(dataset, seed)
    else:
        dataset = dataset.map(lambda c, d, t, w: (c, d, t))
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if word_dropout_rate:
        dataset = dataset.map(
            lambda c, d, t: word_dropout(c, d, t, word_dropout_rate, seed), num_parallel_calls=tf.data.AUTOTUNE
        )
    if pad_to:
        dataset = dataset.padded_batch(batch_size, padded_shapes=([pad_to], [pad_to], [pad_to]),
                                       padding_values=(PAD_ID, PAD_ID, PAD_ID))
        return _to_model_inputs(dataset)
    dataset = dataset.group_by_window(
        key_func=lambda c, d, t: buckets.key(tf.shape(c)[0], tf.shape(d)[0]),
        reduce_func=lambda _, window: window.padded_batch(batch_size, padding_values=(PAD_ID, PAD_ID, PAD_ID)),
        window_size=batch_size,
    )
    return _to_model_inputs(dataset)


def _to_model_inputs(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """(context, decoder input, target) batches -> Keras' ({"encoder_inputs", "decoder_inputs"}, target)."""
    dataset = dataset.map(
        lambda c, d, t: ({"encoder_inputs": c, "decoder_inputs": d}, t),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(WITHOUT_AUTOTUNE_THREAD)


@dataclass
class PaddingStats:
    """How much of what a pipeline feeds the model is padding."""

    batches: int
    real_tokens: int
    total_tokens: int
    mean_batch_padding: float  # Mean over batches of each batch's padding fraction.

    @property
    def padding_fraction(self) -> float:
        return 1.0 - self.real_tokens / max(1, self.total_tokens)

    def to_dict(self) -> dict:
        return {
            "batches": self.batches,
            "real_tokens": self.real_tokens,
            "total_tokens": self.total_tokens,
            "padding_fraction": round(self.padding_fraction, 4),
            "mean_batch_padding_fraction": round(self.mean_batch_padding, 4),
        }


def padding_stats(dataset: tf.data.Dataset) -> PaddingStats:
    """Count real and padded positions over one pass (encoder + decoder inputs)."""
    real = total = batches = 0
    per_batch = []
    for inputs, _ in dataset:
        batch_real = batch_total = 0
        for name in ("encoder_inputs", "decoder_inputs"):
            ids = inputs[name].numpy()
            batch_real += int(np.count_nonzero(ids != PAD_ID))
            batch_total += ids.size
        real, total, batches = real + batch_real, total + batch_total, batches + 1
        per_batch.append(1.0 - batch_real / batch_total)
    return PaddingStats(batches, real, total, float(np.mean(per_batch)) if per_batch else 0.0)
