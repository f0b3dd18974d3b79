"""SSA from label files: lookup, coverage, the blind sheet, merging, and clear errors for bad lines."""

import json

import pytest

from conftest import SHARED_DATA
from errors import UserError
from evaluation.ssa import (
    MIN_COVERAGE, life_claims, load_labels, merge_rating_sheet, ssa_score, unrated, write_rating_sheet,
)


def write_lines(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def label(question, reply, sensible, specific):
    return {"question": question, "reply": reply, "sensible": sensible, "specific": specific,
            "candidates": ["test"], "source": "test.csv:1"}


@pytest.fixture
def labels(tmp_path):
    return load_labels([write_lines(tmp_path / "labels.jsonl", [
        label("배고파", "뭐 좀 드세요.", 1, 1),
        label("배고파", "좋아요.", 1, 0),
        label("졸려", "사랑해요.", 0, 0),
    ])])


def test_ssa_averages_sensible_and_specific_over_rated_replies(labels):
    score = ssa_score(["배고파", "배고파", "졸려"], ["뭐 좀 드세요.", "좋아요.", "사랑해요."], labels)
    assert (score.rated, score.replies) == (3, 3)
    assert score.sensible == pytest.approx(2 / 3) and score.specific == pytest.approx(1 / 3)
    assert score.ssa == pytest.approx(0.5)


def test_whitespace_differences_still_find_the_rating(labels):
    assert ssa_score([" 배고파 "], ["뭐 좀  드세요."], labels).rated == 1


def test_no_ssa_under_the_coverage_floor(labels):
    questions = ["배고파"] * 10
    replies = ["뭐 좀 드세요."] * 8 + ["새로운 답", "또 다른 답"]
    score = ssa_score(questions, replies, labels)
    assert score.coverage == 0.8 < MIN_COVERAGE
    assert score.ssa is None and score.to_dict()["ssa"] is None
    nine_of_ten = ssa_score(questions, replies[:9] + ["뭐 좀 드세요."], labels)
    assert nine_of_ten.coverage == MIN_COVERAGE and nine_of_ten.ssa == pytest.approx(1.0)


def test_the_sheet_is_blind_shuffled_and_lists_each_unrated_pair_once(labels, tmp_path):
    questions = ["배고파"] * 4 + [f"질문 {i}" for i in range(20)]
    replies = ["뭐 좀 드세요.", "새 답", "새 답", "또 새 답"] + [f"답 {i}" for i in range(20)]
    rows = unrated(questions, replies, ["s"] * len(questions), labels)
    assert [(r["question"], r["reply"]) for r in rows[:2]] == [("배고파", "새 답"), ("배고파", "또 새 답")]
    assert len(rows) == 22
    sheet = tmp_path / "sheet.jsonl"
    assert write_rating_sheet(rows, sheet) == 22
    lines = [json.loads(line) for line in sheet.read_text(encoding="utf-8").splitlines()]
    assert set(lines[0]) == {"id", "question", "reply", "sensible", "specific", "source"}  # Nothing on strategies.
    assert [line["reply"] for line in lines] != [r["reply"] for r in rows]  # Shuffled.
    assert sorted(line["reply"] for line in lines) == sorted(r["reply"] for r in rows)


def test_a_filled_sheet_merges_into_the_label_file(labels, tmp_path):
    sheet = write_lines(tmp_path / "sheet.jsonl", [
        {"id": 1, "question": "배고파", "reply": "새 답", "sensible": 1, "specific": 0, "source": "s"},
        {"id": 2, "question": "졸려", "reply": "주무세요.", "sensible": None, "specific": None, "source": "s"},
    ])
    target = tmp_path / "added.jsonl"
    assert merge_rating_sheet(sheet, target) == 1
    assert merge_rating_sheet(sheet, target) == 0  # Already there: not added twice.
    merged = load_labels([target])
    assert merged[("배고파", "새 답")].sensible == 1 and ("졸려", "주무세요.") not in merged


@pytest.mark.parametrize("row, message", [
    ({"question": "q", "reply": "r", "sensible": 2, "specific": 0}, "'sensible' must be 0 or 1"),
    ({"question": "q", "reply": "r", "sensible": 0, "specific": 1}, "'specific' is 1 but 'sensible' is 0"),
    ({"question": "q", "sensible": 1, "specific": 1}, "needs text fields"),
])
def test_bad_rows_fail_naming_file_and_line(tmp_path, row, message):
    path = write_lines(tmp_path / "labels.jsonl", [label("a", "b", 1, 1), row])
    with pytest.raises(UserError, match=rf"labels.jsonl:2: .*{message}"):
        load_labels([path])


def test_a_bad_sheet_line_writes_nothing(tmp_path):
    sheet = write_lines(tmp_path / "sheet.jsonl", [
        {"question": "q", "reply": "r1", "sensible": 1, "specific": 1},
        {"question": "q", "reply": "r2", "sensible": "yes", "specific": 0},
    ])
    target = tmp_path / "added.jsonl"
    with pytest.raises(UserError, match="sheet.jsonl:2"):
        merge_rating_sheet(sheet, target)
    assert not target.exists()


def test_the_shared_label_file_loads():
    labels = load_labels([SHARED_DATA / "ssa_validation_labels.jsonl"])
    assert len(labels) == 1900


def test_a_mark_for_claiming_a_human_life_is_kept_and_counted(tmp_path):
    sheet = write_lines(tmp_path / "sheet.jsonl", [
        {"id": 1, "question": "너 점심 먹었어?", "reply": "네, 김밥 먹었어요.", "sensible": 1, "specific": 1,
         "human_life": 1, "source": "s"},
        {"id": 2, "question": "너 점심 먹었어?", "reply": "저는 먹을 수 없어요.", "sensible": 1, "specific": 1,
         "human_life": 0, "source": "s"},
        {"id": 3, "question": "배고파", "reply": "뭐라도 드세요.", "sensible": 1, "specific": 0, "source": "s"},
    ])
    target = tmp_path / "labels.jsonl"
    assert merge_rating_sheet(sheet, target) == 3
    labels = load_labels([target])
    questions = ["너 점심 먹었어?", "너 점심 먹었어?", "배고파"]
    replies = ["네, 김밥 먹었어요.", "저는 먹을 수 없어요.", "뭐라도 드세요."]
    assert life_claims(questions, replies, labels) == (1, 2)  # The third reply has no mark.
