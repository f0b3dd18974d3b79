"""model/generation.py: each strategy on known scores, stop handling, seeds, repetition control,
and cached decoding that gives exactly the tokens of full re-computation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from config import END_ID, PAD_ID, START_ID, DecodingSettings, build_config
from model.generation import ReplyGenerator, apply_controls, finish_replies, make_sampler, restore_spacing
from model.transformer import build_model

V = 8  # 0 [PAD] 1 [UNK] 2 [START] 3 [END] 4 [SEP], 5..7 words.


def table_next(table: dict[int, dict[int, float]], no_repeat: int = 0):
    """A `next` whose probabilities depend only on the previous token."""
    scores = np.full((V, V), -1e9, np.float32)
    for previous, row in table.items():
        for token, probability in row.items():
            scores[previous, token] = np.log(probability)
    scores = tf.constant(scores)

    def next_fn(prompt, cache, index):
        logits = tf.gather(scores, prompt[:, index - 1])
        return apply_controls(logits, prompt, index, no_repeat), None, cache

    return next_fn


def decode_loop(next_fn, prompt, settings: DecodingSettings) -> tf.Tensor:
    """`settings`' keras-hub sampler from position 1 of `prompt` -> reply ids, as `ReplyGenerator` runs it."""
    stop = [END_ID] if settings.stop_at_end else None
    return finish_replies(make_sampler(settings)(next_fn, prompt, cache=None, index=1, stop_token_ids=stop), settings)


def run(table, settings, batch=1):
    length = settings.max_reply_length + 1
    prompt = tf.concat([tf.fill([batch, 1], START_ID), tf.fill([batch, length - 1], PAD_ID)], axis=1)
    return decode_loop(table_next(table, settings.no_repeat_ngram_size), prompt, settings).numpy()


# Greedy takes 5 (0.6) and ends with 0.6 * 0.34 = 0.20; the best sequence is 6, [END] (0.4).
TRAP = {START_ID: {5: 0.6, 6: 0.4}, 5: {7: 0.34, 6: 0.33, END_ID: 0.33}, 6: {END_ID: 1.0}, 7: {END_ID: 1.0}}


def test_greedy_follows_the_best_next_token_and_pads_after_end():
    out = run(TRAP, DecodingSettings(max_reply_length=6))
    assert out.tolist() == [[5, 7, END_ID, PAD_ID, PAD_ID, PAD_ID]]


def test_beam_finds_the_more_likely_sequence():
    out = run(TRAP, DecodingSettings(strategy="beam", num_beams=2, length_penalty=0.0, max_reply_length=6))
    assert out.tolist() == [[6, END_ID, PAD_ID, PAD_ID, PAD_ID, PAD_ID]]


def test_beam_length_penalty_can_prefer_longer_replies():
    table = {START_ID: {5: 0.5, 6: 0.5}, 5: {END_ID: 1.0}, 6: {7: 0.9, END_ID: 0.1}, 7: {END_ID: 0.95, 5: 0.05}}
    short = run(table, DecodingSettings(strategy="beam", num_beams=3, length_penalty=0.0, max_reply_length=5))
    long = run(table, DecodingSettings(strategy="beam", num_beams=3, length_penalty=5.0, max_reply_length=5))
    assert short[0, :2].tolist() == [5, END_ID]
    assert long[0, :3].tolist() == [6, 7, END_ID]


def test_length_cap_without_end():
    loop = {START_ID: {5: 1.0}, 5: {6: 1.0}, 6: {5: 1.0}}
    out = run(loop, DecodingSettings(max_reply_length=5, no_repeat_ngram_size=0))
    assert out.tolist() == [[5, 6, 5, 6, 5]]


def test_no_repeat_ngram():
    loop = {START_ID: {5: 1.0}, 5: {5: 0.7, 6: 0.2, 7: 0.1}, 6: {5: 0.7, 6: 0.2, 7: 0.1}, 7: {5: 0.7, 6: 0.2, 7: 0.1, END_ID: 0.01}}
    out = run(loop, DecodingSettings(max_reply_length=8, no_repeat_ngram_size=2))[0].tolist()
    bigrams = [tuple(out[i : i + 2]) for i in range(len(out) - 1) if PAD_ID not in out[i : i + 2]]
    assert len(bigrams) == len(set(bigrams)), out
    trigram = run(loop, DecodingSettings(max_reply_length=12, no_repeat_ngram_size=3))[0].tolist()
    trigrams = [tuple(trigram[i : i + 3]) for i in range(len(trigram) - 2) if PAD_ID not in trigram[i : i + 3]]
    assert len(trigrams) == len(set(trigrams)) and trigram[:2] == [5, 5], trigram
    unigram = run(loop, DecodingSettings(max_reply_length=4, no_repeat_ngram_size=1))[0].tolist()
    assert unigram[:3] == [5, 6, 7] and unigram[3] == END_ID


UNIFORM = {START_ID: {5: 0.34, 6: 0.33, 7: 0.33}, **{t: {END_ID: 1.0} for t in (5, 6, 7)}}


def test_sampling_is_reproducible_with_a_seed():
    settings = DecodingSettings(strategy="sample", seed=7, max_reply_length=3)
    first, second = run(UNIFORM, settings, batch=64), run(UNIFORM, settings, batch=64)
    np.testing.assert_array_equal(first, second)
    assert len(set(first[:, 0])) == 3  # It really samples.
    other = run(UNIFORM, DecodingSettings(strategy="sample", seed=8, max_reply_length=3), batch=64)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("settings", [
    DecodingSettings(strategy="sample", top_k=1, seed=1, max_reply_length=6),
    DecodingSettings(strategy="sample", top_p=0.05, seed=1, max_reply_length=6),
    DecodingSettings(strategy="sample", temperature=0.001, seed=1, max_reply_length=6),
])
def test_sampling_controls_narrow_to_greedy(settings):
    np.testing.assert_array_equal(run(TRAP, settings, batch=16), run(TRAP, DecodingSettings(max_reply_length=6), batch=16))


def test_top_k_limits_the_choices():
    out = run(UNIFORM, DecodingSettings(strategy="sample", top_k=2, seed=3, max_reply_length=3), batch=200)
    assert set(out[:, 0]) == {5, 6}


def test_settings_are_checked():
    with pytest.raises(ValueError, match="strategy"):
        DecodingSettings(strategy="nucleus")
    with pytest.raises(ValueError, match="temperature"):
        DecodingSettings(temperature=0)


def test_restore_spacing():
    text = tf.constant(["맛있게 드세요 .", "정말 ? ! ( 웃음 ) 그래요 ~", "10 % 할인"])
    assert [t.decode() for t in restore_spacing(text).numpy()] == ["맛있게 드세요.", "정말?! (웃음) 그래요~", "10% 할인"]


class FakeTokenizer:
    def detokenize(self, ids):
        return tf.strings.reduce_join(tf.strings.as_string(ids), axis=-1, separator=" ")


@pytest.mark.parametrize("settings", [
    DecodingSettings(max_reply_length=12),
    DecodingSettings(strategy="beam", num_beams=3, max_reply_length=12),
    DecodingSettings(strategy="sample", top_p=0.9, top_k=20, seed=5, max_reply_length=12),
    DecodingSettings(max_reply_length=12, no_repeat_ngram_size=2),
])
def test_cached_decoding_equals_full_recomputation(settings):
    keras.utils.set_random_seed(0)
    model = build_model(build_config("tiny").model, vocabulary_size=60, sequence_length=24)
    encoder_ids = tf.constant([[5, 6, 7, 8, 0, 0], [9, 10, 11, 12, 13, 14], [20, 0, 0, 0, 0, 0]], tf.int32)
    full = ReplyGenerator(model, FakeTokenizer(), decoder="full").generate_ids(encoder_ids, settings)
    for decoder in ("fused", "keras_hub"):
        cached = ReplyGenerator(model, FakeTokenizer(), decoder=decoder).generate_ids(encoder_ids, settings)
        np.testing.assert_array_equal(cached, full, err_msg=decoder)
    assert full.shape == (3, 12)


def test_reply_never_starts_with_a_continuation_piece():
    continuation = tf.constant([False] * 6 + [True, False])  # Token 6 is a "##" piece.
    table = {START_ID: {6: 0.9, 5: 0.1}, 5: {6: 0.9, END_ID: 0.1}, 6: {END_ID: 1.0}}
    scores = np.full((V, V), -1e9, np.float32)
    for previous, row in table.items():
        for token, probability in row.items():
            scores[previous, token] = np.log(probability)

    def next_fn(prompt, cache, index):
        logits = tf.gather(tf.constant(scores), prompt[:, index - 1])
        return apply_controls(logits, prompt, index, 0, continuation), None, cache

    settings = DecodingSettings(max_reply_length=4)
    prompt = tf.constant([[START_ID, PAD_ID, PAD_ID, PAD_ID, PAD_ID]])
    out = decode_loop(next_fn, prompt, settings).numpy()
    assert out.tolist() == [[5, 6, END_ID, PAD_ID]]  # 6 only after a word has started.
