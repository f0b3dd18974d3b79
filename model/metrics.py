"""Loss and metrics that ignore padding.

Token id 0 (`[PAD]`) fills batches to a common length. Counting it would make a
model that predicts padding look good (the popular tutorial's "accuracy" of 0.17
is really near-perfect fit once padding is excluded), so every number here is
computed over non-padding target tokens only. Perplexity is keras-hub's
`Perplexity` with `mask_token_id=PAD_ID`, computed without label smoothing.
"""

from __future__ import annotations

import keras
import tensorflow as tf
import keras_hub
from keras import ops

from config import PAD_ID


@keras.saving.register_keras_serializable(package="chatbot")
class MaskedSparseCrossentropy(keras.losses.Loss):
    """Mean cross-entropy over non-padding tokens, with optional label smoothing.

    Args:
        label_smoothing: float in [0, 1); spreads this much probability mass
            uniformly over the vocabulary.
        pad_id: target id to ignore.
    """

    def __init__(self, label_smoothing=0.0, pad_id=PAD_ID, name="masked_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing
        self.pad_id = pad_id

    def call(self, y_true, y_pred):
        # y_true: [B, T] int, y_pred: [B, T, V] logits.
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        y_true = ops.cast(y_true, "int32")
        nll = -ops.squeeze(ops.take_along_axis(log_probs, y_true[..., None], axis=-1), -1)
        if self.label_smoothing:
            uniform = -ops.mean(log_probs, axis=-1)
            nll = (1.0 - self.label_smoothing) * nll + self.label_smoothing * uniform
        mask = ops.cast(ops.not_equal(y_true, self.pad_id), "float32")
        loss = ops.sum(nll * mask) / ops.maximum(ops.sum(mask), 1.0)
        # Keras divides a batch-mean loss by the number of replicas (tf.distribute sums their
        # gradients) but skips a loss that `call` already reduced to a scalar, as this one is.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return loss / replicas if replicas > 1 else loss

    def get_config(self):
        config = super().get_config()
        config.update({"label_smoothing": self.label_smoothing, "pad_id": self.pad_id})
        return config


@keras.saving.register_keras_serializable(package="chatbot")
class MaskedAccuracy(keras.metrics.Metric):
    """Share of non-padding target tokens whose arg-max prediction is right."""

    def __init__(self, pad_id=PAD_ID, name="token_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.pad_id = pad_id
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        mask = ops.not_equal(y_true, self.pad_id)
        hits = ops.logical_and(ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), y_true), mask)
        self.correct.assign_add(ops.sum(ops.cast(hits, "float32")))
        self.count.assign_add(ops.sum(ops.cast(mask, "float32")))

    def result(self):
        return self.correct / ops.maximum(self.count, 1.0)

    def reset_state(self):
        self.correct.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "pad_id": self.pad_id}


def perplexity() -> keras_hub.metrics.Perplexity:
    return keras_hub.metrics.Perplexity(from_logits=True, mask_token_id=PAD_ID, name="perplexity")
