"""Decoding graphs without XLA ops: `keras.ops.slice_update` as a core TensorFlow op.

keras-hub writes attention caches (`CachedMultiHeadAttention`) and sampler output
buffers with `keras.ops.slice_update`, which the TensorFlow backend lowers to
`XlaDynamicUpdateSlice`. Outside an XLA-compiled graph that op is compiled on
demand at every decoding step (most of a reply's latency here), and TF Serving,
which disables XLA, cannot run it at all. Inside `core_op_slice_update()` the same
call emits `TensorStridedSliceUpdate`, a core op with the same result. It is
meant for tracing a decoding graph: the graph keeps the core op after the block ends.
"""

from __future__ import annotations

import contextlib

import tensorflow as tf
from keras.src.backend.tensorflow import core as keras_tf_core


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
    if not hasattr(keras_tf_core, "slice_update"):  # Guard against a Keras that moved it.
        raise RuntimeError("keras' TensorFlow backend has no core.slice_update; update model/core_ops.py")
    original = keras_tf_core.slice_update
    keras_tf_core.slice_update = strided_slice_update
    try:
        yield
    finally:
        keras_tf_core.slice_update = original
