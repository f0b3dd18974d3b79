"""data_pipeline/context.py: the encoder input, the same in Python, in tf.data and in the export."""

import pytest
import tensorflow as tf

from config import PERSONA_ID, RESERVED_TOKENS
from data_pipeline.context import (
    encoder_token_ids, format_history, format_turns, history_speakers, history_to_context,
)
from data_pipeline.vocab import make_tokenizer

WORDS = ["하나", "둘", "셋", "넷", "다섯", "나는", "개", "좋아", "."]


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer(list(RESERVED_TOKENS) + WORDS)


def ids(tokenizer, text):
    return [int(i) for i in tokenizer(tf.constant([text]))[0]]  # Eager keras-hub returns lists.


def test_format_turns_marks_earlier_turns_only():
    assert format_turns(["질문"], ["user"]) == "질문"
    assert format_turns(["a", "b", "c"], ["user", "bot", "user"]) == "[USER] a [SEP] [BOT] b [SEP] c"
    with pytest.raises(ValueError):
        format_turns([], [])


def test_history_speakers_count_back_from_the_user():
    assert history_speakers(1) == ["user"]
    assert history_speakers(4) == ["bot", "user", "bot", "user"]


@pytest.mark.parametrize("context_turns", [0, 1, 3])
def test_in_graph_history_matches_python(context_turns):
    histories = [["a"], ["a", "b", "c"], ["a", "b", "c", "d", "e", "f", "g"]]
    ragged = tf.ragged.constant(histories)
    in_graph = [t.decode() for t in history_to_context(ragged, context_turns).numpy()]
    assert in_graph == [format_history(h, context_turns) for h in histories]


def test_encoder_ids_without_persona_are_the_last_tokens(tokenizer):
    context = "하나 둘 셋 넷 다섯"
    packed = encoder_token_ids(tokenizer, tf.constant([""]), tf.constant([context]), 3, 8)
    assert packed.to_list() == [ids(tokenizer, context)[-3:]]  # Single questions: as before personas.


def test_persona_comes_first_is_capped_and_keeps_its_separator(tokenizer):
    persona, context = "나는 개 좋아 .", "[USER] 하나 [SEP] [BOT] 둘 [SEP] 셋"
    packed = encoder_token_ids(tokenizer, tf.constant([persona, ""]), tf.constant([context, context]), 6, 3)
    persona_part = ids(tokenizer, persona)[:2] + [PERSONA_ID]
    assert packed.to_list() == [
        persona_part + ids(tokenizer, context)[-3:],  # Oldest context tokens dropped first.
        ids(tokenizer, context)[-6:],
    ]
