"""model/transformer.py: masks that really mask, and a .keras save/load round trip."""

import keras
import numpy as np

from config import build_config
from model.transformer import Seq2SeqTransformer, build_model


def tiny_model(vocabulary_size=50, sequence_length=16):
    return build_model(build_config("tiny").model, vocabulary_size, sequence_length)


def inputs(encoder, decoder):
    return {"encoder_inputs": np.array(encoder, np.int32), "decoder_inputs": np.array(decoder, np.int32)}


def test_output_shape():
    logits = tiny_model()(inputs([[5, 6, 7, 0]], [[2, 8, 9]]))
    assert tuple(logits.shape) == (1, 3, 50)


def test_encoder_padding_is_masked():
    model = tiny_model()
    short = model(inputs([[5, 6, 7]], [[2, 8, 9]]))
    padded = model(inputs([[5, 6, 7, 0, 0, 0]], [[2, 8, 9]]))
    np.testing.assert_allclose(short, padded, atol=1e-5)


def test_decoder_is_causal():
    model = tiny_model()
    a = model(inputs([[5, 6, 7]], [[2, 8, 9, 10]]))
    b = model(inputs([[5, 6, 7]], [[2, 8, 30, 31]]))
    np.testing.assert_allclose(a[:, :2], b[:, :2], atol=1e-5)
    assert not np.allclose(a[:, 2:], b[:, 2:])


def test_keras_round_trip(tmp_path):
    model = tiny_model()
    batch = inputs([[5, 6, 7, 0]], [[2, 8, 9]])
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(restored, Seq2SeqTransformer)
    assert restored.get_config() == model.get_config()
    np.testing.assert_allclose(model(batch), restored(batch), atol=1e-6)
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in restored._flatten_layers())
