"""model/selector.py: the candidates' features and the choice (no empty reply, no repeat of an earlier one)."""

import numpy as np
import tensorflow as tf

from config import SELECTOR_FEATURES
from model.candidate_scoring import candidate_log_likelihood
from model.generation import encode_contexts
from model.retrieval import text_vectors
from model.selector import Turns, candidate_features, choose, response_frequencies

QUESTIONS = ["배고파", "오늘 너무 피곤해"]
CANDIDATES = [["뭐라도 드세요.", "푹 쉬세요.", "밥 먹어요."], ["일찍 주무세요.", "푹 쉬세요.", "저랑 놀아요."]]
COLUMN = {name: i for i, name in enumerate(SELECTOR_FEATURES)}


def test_response_frequencies_count_keys_sharing_a_response():
    np.testing.assert_allclose(response_frequencies([b"a", b"b", b"a", b"a"]), np.log1p([3, 1, 3, 3]), rtol=1e-6)


def test_features_are_the_model_likelihoods_with_and_without_context(random_model, tokenizer):
    encoder_ids = encode_contexts(tokenizer, tf.constant(QUESTIONS), 24)
    no_context = encode_contexts(tokenizer, tf.constant(["", ""]), 24)
    candidates = tf.constant(CANDIDATES)
    similarity = tf.constant([[0.9, 0.4, 0.0], [0.5, 0.3, 0.0]])
    frequency = tf.constant([[1.0, 2.0, 0.0], [0.5, 2.0, 0.0]])
    generated = tf.constant([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    turns = Turns(tf.constant(QUESTIONS), tf.constant([["", ""], ["푹 쉬세요.", ""]]), tf.ones([2**18]))
    features = candidate_features(random_model, tokenizer, encoder_ids, no_context, candidates, similarity, frequency,
                                  generated, turns).numpy()
    assert features.shape == (2, 3, len(SELECTOR_FEATURES))
    total, tokens = candidate_log_likelihood(random_model, tokenizer, encoder_ids, candidates)
    prior, _ = candidate_log_likelihood(random_model, tokenizer, no_context, candidates)
    np.testing.assert_allclose(features[..., COLUMN["likelihood"]], total / tokens, rtol=1e-5)
    np.testing.assert_allclose(features[..., COLUMN["prior"]], prior / tokens, rtol=1e-5)
    np.testing.assert_allclose(features[..., COLUMN["tokens"]], tokens / 10, rtol=1e-6)
    np.testing.assert_allclose(features[..., COLUMN["similarity"]], similarity)
    np.testing.assert_allclose(features[..., COLUMN["generated"]], generated)
    assert not np.allclose(features[..., COLUMN["likelihood"]], features[..., COLUMN["prior"]])  # Context counts.
    echo, repeat = features[..., COLUMN["echo"]], features[..., COLUMN["repeat"]]
    assert np.all(repeat[0] == 0) and repeat[1, 1] > 0.99 > repeat[1, 0]  # The bot said "푹 쉬세요." before.
    vectors = text_vectors(tf.constant(sum(CANDIDATES, []) + QUESTIONS), tf.ones([2**18])).numpy()
    expected = np.einsum("bcd,bd->bc", vectors[:6].reshape(2, 3, -1), vectors[6:])
    np.testing.assert_allclose(echo, expected, rtol=1e-5)  # The cosine with the user's message.


def weights(**named):
    return [named.get(name, 0.0) for name in SELECTOR_FEATURES]


def test_choose_takes_the_highest_weighted_sum():
    features = np.zeros([2, 3, len(SELECTOR_FEATURES)], np.float32)
    features[..., COLUMN["similarity"]] = [[0.9, 0.4, 0.0], [0.2, 0.3, 0.0]]
    features[..., COLUMN["likelihood"]] = [[-3.0, -1.0, -0.5], [-1.0, -2.0, -3.0]]
    candidates = tf.constant(CANDIDATES)
    by_similarity = choose(tf.constant(features), weights(similarity=1.0), candidates).numpy()
    by_likelihood = choose(tf.constant(features), weights(likelihood=1.0), candidates).numpy()
    assert by_similarity.tolist() == [0, 1] and by_likelihood.tolist() == [2, 0]
    mixed = weights(similarity=10.0, likelihood=1.0)
    expected = (features @ np.array(mixed, np.float32)).argmax(axis=1)
    assert choose(tf.constant(features), mixed, candidates).numpy().tolist() == expected.tolist()


def test_choose_passes_over_empty_replies_and_what_the_bot_already_said():
    features = np.zeros([2, 3, len(SELECTOR_FEATURES)], np.float32)
    features[..., COLUMN["similarity"]] = [[0.9, 0.4, 0.1], [0.9, 0.4, 0.1]]
    candidates = tf.constant([["", "푹 쉬세요.", "밥 먹어요."], ["푹 쉬세요.", "일찍 주무세요.", "자요."]])
    earlier = tf.constant([["", ""], ["푹 쉬세요.", "일찍 주무세요."]])
    chosen = choose(tf.constant(features), weights(similarity=1.0), candidates, earlier).numpy()
    assert chosen.tolist() == [1, 2]
    all_said = tf.constant([["", "푹 쉬세요.", "밥 먹어요."], ["푹 쉬세요.", "일찍 주무세요.", "자요."]])
    # Nothing left to choose: the best is said again rather than nothing.
    assert choose(tf.constant(features), weights(similarity=1.0), candidates, all_said).numpy()[1] == 0
