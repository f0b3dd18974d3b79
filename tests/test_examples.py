"""data_pipeline/examples.py: examples per bot turn, a deterministic split by dialogue."""

from data_pipeline.examples import (
    SEP_TEXT, dialogue_examples, load_examples, save_examples, split_dialogues, to_examples,
)
from data_pipeline.sources import Dialogue


def test_single_exchange_is_question_to_answer():
    (example,) = dialogue_examples(Dialogue(("질문", "답")))
    assert (example.context, example.response) == ("질문", "답")


def test_multi_turn_context_window():
    dialogue = Dialogue(("a", "b", "c", "d", "e", "f"))
    examples = dialogue_examples(dialogue, context_turns=3)
    assert [(e.context, e.response) for e in examples] == [
        ("a", "b"), (SEP_TEXT.join("abc"), "d"), (SEP_TEXT.join("cde"), "f"),
    ]


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
    examples = to_examples([Dialogue(("안녕", "반가워"), source="f:2")])
    save_examples(examples, tmp_path / "x.jsonl")
    assert load_examples(tmp_path / "x.jsonl") == examples
