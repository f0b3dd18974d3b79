"""The fused decoder step computes keras-hub's cached TransformerDecoder step."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from config import START_ID, build_config
from model.fused_decoding import FusedDecoder
from model.transformer import build_model


def randomized_model(normalize_first: bool, seed: int = 0):
    """A tiny model whose every weight (biases and norms too) is random, so none is skipped silently."""
    keras.utils.set_random_seed(seed)
    config = build_config("tiny").model
    config.normalize_first = normalize_first
    model = build_model(config, vocabulary_size=50, sequence_length=16)
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        variable.assign(rng.normal(0.0, 0.3, variable.shape).astype("float32"))
    return model


def keras_hub_steps(model, encoder_ids, tokens):
    caches = model.empty_caches(encoder_ids.shape[0], encoder_ids.shape[1], tokens.shape[1])
    outputs, mask = model.encode(encoder_ids)
    logits = []
    for index in range(tokens.shape[1]):
        step_logits, caches = model.decode_step(tokens[:, index : index + 1], index, outputs, mask, caches,
                                                fill_cross_cache=index == 0)
        logits.append(step_logits)
    return np.stack(logits, axis=1)


def fused_steps(decoder, model, encoder_ids, tokens):
    outputs, mask = model.encode(encoder_ids)
    request, caches = decoder.start(outputs, mask, tokens.shape[1])
    logits = []
    for index in range(tokens.shape[1]):
        step_logits, caches = decoder.step(tokens[:, index], index, request, caches)
        logits.append(step_logits)
    return np.stack(logits, axis=1)


ENCODER_IDS = tf.constant([[5, 6, 7, 0, 0], [8, 9, 10, 11, 12], [0, 0, 0, 0, 0]], tf.int32)  # Last row: all padding.
TOKENS = tf.constant([[START_ID, 11, 12, 13, 14, 15], [START_ID, 20, 21, 22, 0, 0], [START_ID, 7, 7, 7, 7, 7]], tf.int32)


@pytest.mark.parametrize("normalize_first", [True, False])
def test_fused_step_gives_keras_hub_logits(normalize_first):
    model = randomized_model(normalize_first)
    expected = keras_hub_steps(model, ENCODER_IDS, TOKENS)
    actual = fused_steps(FusedDecoder(model), model, ENCODER_IDS, TOKENS)
    assert actual.shape == expected.shape == (3, 6, 50)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)
    # And the whole-prefix decoder agrees with both (teacher forcing over the same tokens).
    outputs, mask = model.encode(ENCODER_IDS)
    np.testing.assert_allclose(model.decode(TOKENS, outputs, mask).numpy()[:2, :4], actual[:2, :4], rtol=1e-4, atol=1e-4)


def test_refresh_copies_weights_trained_after_the_decoder_was_built():
    model = randomized_model(True)
    decoder = FusedDecoder(model)
    before = fused_steps(decoder, model, ENCODER_IDS, TOKENS)
    for layer in model.decoder_layers:  # "Training" changes the decoder's kernels.
        kernel = layer._self_attention_layer._query_dense.kernel
        kernel.assign(kernel * 2.0)
    expected = keras_hub_steps(model, ENCODER_IDS, TOKENS)
    assert not np.allclose(before, expected, atol=1e-3)
    decoder.refresh()
    np.testing.assert_allclose(fused_steps(decoder, model, ENCODER_IDS, TOKENS), expected, rtol=1e-4, atol=1e-4)
