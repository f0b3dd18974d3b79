"""Everything this project reads or changes inside Keras and keras-hub, in one place, for the versions pinned.

Public APIs do not reach three things the project needs; each is here, and each
first checks (`require_tested`) that the installed package is the version it was
written against (`requirements.txt`), so an upgrade fails with a line saying what
to re-check instead of computing something else:

- `decoder_layer_parts`: the sublayers of a keras-hub `TransformerDecoder`
  (private attributes), whose weights `model/fused_decoding.py` lays out for
  one-token decoding.
- `core_op_slice_update`: within the block, `keras.ops.slice_update` builds the core
  op `TensorStridedSliceUpdate`. keras-hub writes attention caches
  (`CachedMultiHeadAttention`) and sampler output buffers with `slice_update`, which
  the TensorFlow backend lowers to `XlaDynamicUpdateSlice`: outside an XLA-compiled
  graph that op is compiled on demand at every decoding step (most of a reply's
  latency here), and TF Serving, which disables XLA, cannot run it at all. It is
  meant for tracing a decoding graph: the graph keeps the core op after the block ends.
- `patch_keras_for_multi_worker`: Keras' TF trainer fixed for
  MultiWorkerMirroredStrategy (`model/distribution.py`).
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import keras
import keras_hub
import tensorflow as tf
from keras.src.backend.tensorflow import core as tensorflow_backend_core

# The versions these were written and tested against (major.minor; requirements.txt pins the patch).
TESTED_VERSIONS = {"keras": ("3.15.", keras.__version__), "keras_hub": ("0.32.", keras_hub.__version__)}


def require_tested(package: str, what: str) -> None:
    """RuntimeError unless `package` is the version this module was written for."""
    tested, installed = TESTED_VERSIONS[package]
    if not installed.startswith(tested):
        raise RuntimeError(
            f"model/compat.py: {what} was written for {package} {tested}x, but {installed} is installed; "
            f"check it against that version (or install requirements.txt)"
        )


class AttentionParts(NamedTuple):
    query: keras.layers.Layer
    key: keras.layers.Layer
    value: keras.layers.Layer
    output: keras.layers.Layer


class DecoderLayerParts(NamedTuple):
    """The sublayers of one keras-hub `TransformerDecoder`, in the order its step uses them."""

    self_attention: AttentionParts
    self_attention_norm: keras.layers.Layer
    cross_attention: AttentionParts
    cross_attention_norm: keras.layers.Layer
    feedforward_intermediate: keras.layers.Layer  # Its `.activation` is the feed-forward activation.
    feedforward_output: keras.layers.Layer
    feedforward_norm: keras.layers.Layer


def decoder_layer_parts(layer: keras_hub.layers.TransformerDecoder) -> DecoderLayerParts:
    """The attention projections, norms and feed-forward layers of a built `TransformerDecoder`."""
    require_tested("keras_hub", "reading TransformerDecoder's sublayers")

    def attention(mha):
        return AttentionParts(mha._query_dense, mha._key_dense, mha._value_dense, mha._output_dense)

    return DecoderLayerParts(
        self_attention=attention(layer._self_attention_layer),
        self_attention_norm=layer._self_attention_layer_norm,
        cross_attention=attention(layer._cross_attention_layer),
        cross_attention_norm=layer._cross_attention_layer_norm,
        feedforward_intermediate=layer._feedforward_intermediate_dense,
        feedforward_output=layer._feedforward_output_dense,
        feedforward_norm=layer._feedforward_layer_norm,
    )


def strided_slice_update(inputs, start_indices, updates):
    """`inputs[start : start + updates.shape] = updates`, as `keras.ops.slice_update`."""
    inputs = tf.convert_to_tensor(inputs)
    begin = tf.stack([tf.cast(i, tf.int32) for i in start_indices])
    end = begin + tf.shape(updates, out_type=tf.int32)
    return tf.raw_ops.TensorStridedSliceUpdate(
        input=inputs, begin=begin, end=end, strides=tf.ones_like(begin), value=tf.cast(updates, inputs.dtype)
    )


@contextlib.contextmanager
def core_op_slice_update():
    """Within the block, `keras.ops.slice_update` builds `TensorStridedSliceUpdate`."""
    require_tested("keras", "keras.ops.slice_update as a core op")
    original = tensorflow_backend_core.slice_update
    tensorflow_backend_core.slice_update = strided_slice_update
    try:
        yield
    finally:
        tensorflow_backend_core.slice_update = original


def patch_keras_for_multi_worker() -> None:
    """Fix Keras' TF trainer for MultiWorkerMirroredStrategy. Idempotent.

    Keras 3.15's `fit` fails under MultiWorkerMirroredStrategy in two places of
    `keras/src/backend/tensorflow/trainer.py` (still so upstream): the first batch is
    reduced with `strategy.reduce("MEAN", ...)` to build the model symbolically, and
    rank-0 logs are reduced with `axis=0`. This fixes both.
    """
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer, "_chatbot_multi_worker_patch", False):
        return
    require_tested("keras", "the multi-worker fix of its TF trainer")
    original_reduce = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            # Rank-0 logs: reduce across replicas only (Keras passes axis=0, which they lack).
            def mean(v):
                axis = None if v.shape.rank == 0 else 0
                return strategy.reduce("MEAN", v, axis=axis)

            return tf.nest.map_structure(mean, values)
        return original_reduce(values, strategy, reduction)

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None:
            return
        if iterator is not None:
            for _, _, it in iterator:
                batch = next(it)
                # One replica's local batch has the right structure and dtypes; no cross-worker reduce.
                data_batch = tf.nest.map_structure(
                    lambda v: self.distribute_strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues) else v,
                    batch,
                )
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    trainer.reduce_per_replica = reduce_per_replica
    trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    trainer._chatbot_multi_worker_patch = True
