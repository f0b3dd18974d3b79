"""data_pipeline/examples.py: examples per bot turn, a deterministic split by dialogue."""

import json

import pytest

from data_pipeline.examples import (
    dialogue_examples, earlier_turns, load_examples, question_of, save_examples, split_dialogues,
    to_examples,
)
from data_pipeline.sources import BOT, Dialogue


def test_single_exchange_is_question_to_answer():
    (example,) = dialogue_examples(Dialogue(("질문", "답")))
    assert (example.context, example.response) == ("질문", "답")


def test_multi_turn_context_window_with_speaker_marks():
    dialogue = Dialogue(("a", "b", "c", "d", "e", "f"))
    examples = dialogue_examples(dialogue, context_turns=3)
    assert [(e.context, e.response) for e in examples] == [
        ("a", "b"),
        ("[USER] a [SEP] [BOT] b [SEP] c", "d"),
        ("[BOT] b [SEP] [USER] c [SEP] [BOT] d [SEP] e", "f"),  # Three earlier turns, oldest dropped.
    ]
    assert [earlier_turns(e) for e in examples] == [0, 2, 3]
    assert {question_of(e) for e in examples} == {"a", "c", "e"}


def test_zero_context_turns_is_the_single_turn_case():
    examples = dialogue_examples(Dialogue(("a", "b", "c", "d")), context_turns=0)
    assert [(e.context, e.response) for e in examples] == [("a", "b"), ("c", "d")]
    with pytest.raises(ValueError, match="context_turns"):
        dialogue_examples(Dialogue(("a", "b")), context_turns=-1)


def test_persona_travels_beside_the_context():
    (example,) = dialogue_examples(Dialogue(("안녕", "반가워"), persona=("나는 개를 키워.", "나는 학생이야.")))
    assert example.persona == "나는 개를 키워. 나는 학생이야." and example.context == "안녕"


def test_a_dialogue_the_bot_opens_has_no_example_for_the_opening():
    dialogue = Dialogue(("어서 와", "안녕", "반가워"), first_speaker=BOT)
    (example,) = dialogue_examples(dialogue, context_turns=3)
    assert (example.context, example.response) == ("[BOT] 어서 와 [SEP] 안녕", "반가워")


def test_split_is_seeded_disjoint_and_sized(chatbot_dialogues):
    train, validation = split_dialogues(chatbot_dialogues, 0.1, seed=42)
    again_train, again_validation = split_dialogues(chatbot_dialogues, 0.1, seed=42)
    assert validation == again_validation and train == again_train
    assert len(validation) == round(0.1 * len(chatbot_dialogues))
    assert len(train) + len(validation) == len(chatbot_dialogues)
    assert not {d.turns for d in train} & {d.turns for d in validation}
    _, other_validation = split_dialogues(chatbot_dialogues, 0.1, seed=7)
    assert other_validation != validation


def test_examples_round_trip(tmp_path):
    examples = to_examples([Dialogue(("안녕", "반가워"), persona=("p",), source="f:2")])
    save_examples(examples, tmp_path / "x.jsonl")
    assert load_examples(tmp_path / "x.jsonl") == examples


def test_split_files_from_before_persona_and_weight_still_load(tmp_path):
    (tmp_path / "old.jsonl").write_text(json.dumps({"context": "q", "response": "a", "source": "f:2"}) + "\n")
    (example,) = load_examples(tmp_path / "old.jsonl")
    assert (example.persona, example.weight) == ("", 1.0)
