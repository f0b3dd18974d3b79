"""model/compat.py: the version check, the decoder sublayers read, keras.ops.slice_update as a core op."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from config import build_config
from model import compat
from model.compat import core_op_slice_update, decoder_layer_parts, strided_slice_update
from config import DecodingSettings
from model.generation import ReplyGenerator
from model.transformer import build_model


def graph_op_types(concrete_function) -> set[str]:
    graph_def = concrete_function.graph.as_graph_def()
    ops = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        ops |= {node.op for node in function.node_def}
    return ops


def test_an_untested_version_is_refused_with_what_to_check(monkeypatch):
    compat.require_tested("keras", "anything")  # The pinned versions pass.
    monkeypatch.setitem(compat.TESTED_VERSIONS, "keras_hub", ("0.31.", "0.40.0"))
    with pytest.raises(RuntimeError, match=r"reading TransformerDecoder's sublayers was written for keras_hub 0.31.x, "
                                           r"but 0.40.0 is installed"):
        decoder_layer_parts(build_model(build_config("tiny").model, 50, 8).decoder_layers[0])


def test_the_decoder_parts_hold_every_weight_of_the_layer():
    model = build_model(build_config("tiny").model, 50, 8)
    for layer in model.decoder_layers:
        parts = decoder_layer_parts(layer)
        sublayers = [*parts.self_attention, *parts.cross_attention] + [p for p in parts if isinstance(p, keras.layers.Layer)]
        read = {id(v) for sublayer in sublayers for v in sublayer.weights}
        assert read == {id(v) for v in layer.weights}  # Nothing the fused decoder would miss.


def test_same_result_as_keras_slice_update():
    inputs = np.arange(2 * 5 * 3, dtype=np.float32).reshape(2, 5, 3)
    updates = -np.ones((2, 2, 3), np.float32)
    expected = keras.ops.convert_to_numpy(keras.ops.slice_update(inputs, [0, 2, 0], updates))
    np.testing.assert_array_equal(strided_slice_update(inputs, [0, 2, 0], updates).numpy(), expected)


def test_patch_is_scoped():
    @tf.function
    def update(x):
        return keras.ops.slice_update(x, [0, 1], tf.ones([2, 1]))

    with core_op_slice_update():
        inside = graph_op_types(update.get_concrete_function(tf.TensorSpec([2, 4])))
    outside = graph_op_types(tf.function(lambda x: keras.ops.slice_update(x, [0, 1], tf.ones([2, 1])))
                             .get_concrete_function(tf.TensorSpec([2, 4])))
    assert "TensorStridedSliceUpdate" in inside and not any(op.startswith("Xla") for op in inside)
    assert "XlaDynamicUpdateSlice" in outside  # keras' own lowering, untouched outside the block.


class FakeTokenizer:
    def detokenize(self, ids):
        return tf.strings.reduce_join(tf.strings.as_string(ids), axis=-1, separator=" ")


def test_decoding_graphs_have_no_xla_ops():
    model = build_model(build_config("tiny").model, vocabulary_size=40, sequence_length=16)
    generator = ReplyGenerator(model, FakeTokenizer())
    for settings in (DecodingSettings(max_reply_length=6), DecodingSettings(strategy="beam", max_reply_length=6),
                     DecodingSettings(strategy="sample", top_p=0.9, seed=1, max_reply_length=6, no_repeat_ngram_size=2)):
        graph = generator._graph(settings)[0]
        ops = graph_op_types(graph.get_concrete_function())
        assert not [op for op in ops if op.startswith("Xla")], settings
