"""model/candidate_scoring.py and model/hybrid.py: candidate likelihoods and the threshold hybrid."""

import pytest
import tensorflow as tf

from model.candidate_scoring import candidate_log_likelihood, target_ids
from model.generation import encode_contexts
from model.hybrid import threshold_selection

QUESTIONS = ["배고파", "오늘 너무 피곤해"]
CANDIDATES = [["뭐라도 드세요.", "푹 쉬세요.", ""], ["일찍 주무세요.", "푹 쉬세요.", "저랑 놀아요."]]


def test_candidate_log_likelihood_is_the_teacher_forced_log_probability(random_model, tokenizer):
    encoder_ids = encode_contexts(tokenizer, tf.constant(QUESTIONS), 24)
    total, tokens = candidate_log_likelihood(random_model, tokenizer, encoder_ids, tf.constant(CANDIDATES))
    for b, row in enumerate(CANDIDATES):
        decoder_inputs, targets = target_ids(tokenizer, tf.constant(row), 24)
        logits = random_model({"encoder_inputs": tf.repeat(encoder_ids[b:b + 1], len(row), axis=0),
                        "decoder_inputs": decoder_inputs})
        log_probs = tf.nn.log_softmax(logits).numpy()
        for c, reply in enumerate(row):
            ids = [int(t) for t in targets[c].numpy() if t != 0]
            expected = sum(log_probs[c, i, t] for i, t in enumerate(ids))
            assert total.numpy()[b, c] == pytest.approx(expected, rel=1e-4, abs=1e-4)
            assert tokens.numpy()[b, c] == len(ids) == len(tokenizer(reply)) + 1  # [END] counts.


def test_threshold_selection_retrieves_close_questions_and_generates_only_when_needed():
    calls = []

    def generate():
        calls.append(1)
        return tf.constant(["생성 하나", "생성 둘"])

    similarity = tf.constant([0.9, 0.1])
    responses = tf.constant(["검색 하나", "검색 둘"])
    chosen = threshold_selection(similarity, responses, generate, 0.3, True)
    assert [r.decode() for r in chosen.reply.numpy()] == ["검색 하나", "생성 둘"]
    assert chosen.retrieved.numpy().tolist() == [True, False]
    off = threshold_selection(similarity, responses, generate, 0.3, False)
    assert [r.decode() for r in off.reply.numpy()] == ["생성 하나", "생성 둘"]
    calls.clear()
    close = threshold_selection(tf.constant([0.9, 0.5]), responses, generate, 0.3, True)
    assert not calls and [r.decode() for r in close.reply.numpy()] == ["검색 하나", "검색 둘"]  # No generation run.
