"""evaluation/fit_selector.py: the reward model's fit, held-out choices, and the rated questions it reads."""

import json

import numpy as np

from config import SELECTOR_FEATURES
from evaluation.fit_selector import QuestionTable, by_score, choices, cross_validated, fit_weights, rated_questions
from evaluation.ssa import Rating

F = len(SELECTOR_FEATURES)


def table(question, candidate_features, rated_features, targets, texts=None):
    texts = texts or [f"{question}-{i}" for i in range(len(candidate_features))]
    return QuestionTable(question, "s", texts, np.array(candidate_features, float), np.array(rated_features, float),
                         np.array(targets, float))


def test_the_fit_finds_the_feature_that_predicts_the_ratings():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(400, F))
    targets = (features[:, 2] > 0).astype(float)  # Only the third feature matters.
    weights = fit_weights(features, targets)
    assert np.argmax(np.abs(weights)) == 2 and weights[2] > 0
    features[:, 4] = 3.0  # A constant feature gets no weight (and no division by zero).
    assert fit_weights(features, targets)[4] == 0.0


def test_choices_pass_over_empty_candidates():
    weights = np.zeros(F)
    weights[0] = 1.0
    rows = [table("q", [[0.9] + [0] * (F - 1), [0.1] + [0] * (F - 1)], [[0] * F], [1], texts=["", "답"])]
    assert choices(rows, weights) == ["답"]


def test_held_out_choices_do_not_depend_on_their_own_ratings():
    rng = np.random.default_rng(1)
    rows = []
    for q in range(20):
        candidates = rng.normal(size=(3, F))
        rows.append(table(f"q{q}", candidates, candidates, (candidates[:, 0] > 0).astype(float)))
    picked, fitted, scores = cross_validated(rows, folds=4)
    assert len(fitted) == 4 and len(picked) == len(scores) == 20
    flipped = [QuestionTable(t.question, t.source, t.candidates, t.candidate_features, t.rated_features,
                             1 - t.rated_targets) if i == 0 else t for i, t in enumerate(rows)]
    assert cross_validated(flipped, folds=4)[0][0] == picked[0]  # Question 0's own ratings never chose for it.


def test_rated_questions_leave_out_the_human_answer_and_the_fallback(tmp_path):
    path = tmp_path / "labels.jsonl"
    rows = [
        {"question": "배고파", "reply": "밥 드세요.", "sensible": 1, "specific": 1, "candidates": ["human"], "source": "a"},
        {"question": "배고파", "reply": "그렇군요.", "sensible": 1, "specific": 0, "candidates": ["fallback"], "source": "a"},
        {"question": "배고파", "reply": "뭐라도 드세요.", "sensible": 1, "specific": 0, "candidates": ["retrieved-1"],
         "source": "a"},
        {"question": "배고파", "reply": "사랑해요.", "sensible": 0, "specific": 0, "candidates": ["greedy", "human"],
         "source": "a"},
    ]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    questions = rated_questions([path])
    assert questions == {"배고파": {"source": "a", "replies": {"뭐라도 드세요.": 0.5, "사랑해요.": 0.0}}}


def test_choices_are_scored_in_groups_by_how_sure_the_selector_was():
    texts, picked = ["q1", "q2", "q3", "q4"], ["a", "b", "c", "d"]
    labels = {("q1", "a"): Rating(1, 1), ("q2", "b"): Rating(0, 0), ("q3", "c"): Rating(1, 0), ("q4", "d"): Rating(1, 1)}
    lines = by_score(texts, picked, np.array([2.0, -1.0, 0.5, 1.5]), labels, parts=2)
    assert len(lines) == 2
    assert "score -1.00 to 0.50" in lines[0] and "SSA" in lines[0] and "25.0%" in lines[0]  # q2 and q3.
    assert "score 1.50 to 2.00" in lines[1] and "100.0%" in lines[1]  # q4 and q1.
