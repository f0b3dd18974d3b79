"""evaluation/reply_metrics.py on inputs whose scores are known."""

import pytest
import sacrebleu

from evaluation.reply_metrics import corpus_bleu, corpus_chrf, distinct_n, score_replies

REFERENCES = ["맛있는 거 드세요.", "푹 쉬세요.", "저도 반가워요!"]


def test_identical_replies_score_100():
    assert corpus_chrf(REFERENCES, REFERENCES) == pytest.approx(100.0)
    assert corpus_bleu(REFERENCES * 2, REFERENCES * 2) == pytest.approx(100.0)


def test_unrelated_replies_score_near_zero_and_partial_in_between():
    unrelated = ["xyz qrs", "abc def", "uvw"]
    assert corpus_chrf(unrelated, REFERENCES) < 5
    partial = ["맛있는 거 먹어요.", "푹 주무세요.", "저도 반가워요!"]
    assert 5 < corpus_chrf(partial, REFERENCES) < 100


def test_distinct_n():
    assert distinct_n(["좋아요 좋아요 좋아요"] * 4, 1) == pytest.approx(1 / 12)
    assert distinct_n(["좋아요 좋아요 좋아요"] * 4, 2) == pytest.approx(1 / 8)
    assert distinct_n(["하나 둘", "셋 넷"], 1) == 1.0 and distinct_n(["하나"], 2) == 0.0


def test_score_replies_counts_lengths_ends_and_exact_matches():
    hypotheses = ["맛있는 거 드세요.", "쉬세요.", "저도 반가워요!"]
    scores = score_replies(hypotheses, REFERENCES, reply_tokens=[5, 3, 6], ended=[True, False, True])
    assert scores.exact_match_share == pytest.approx(2 / 3)
    assert scores.ended_share == pytest.approx(2 / 3)
    assert scores.mean_reply_tokens == pytest.approx(14 / 3)
    assert scores.chrf == pytest.approx(sacrebleu.corpus_chrf(hypotheses, [REFERENCES]).score)
    with pytest.raises(ValueError, match="as many replies"):
        score_replies(hypotheses[:2], REFERENCES, [1, 1], [True, True])
