"""model/user_facts.py: the user's name, read from their turns, greeted and told back when asked."""

import pytest
import tensorflow as tf

from model.user_facts import NOT_TOLD, answer_about_the_user, last_stated_name, stated_names


def texts(tensor) -> list[str]:
    return [t.decode("utf-8") for t in tensor.numpy().ravel()]


@pytest.mark.parametrize("message, name", [
    ("내 이름은 민지야", "민지"), ("내 이름은 지훈이야", "지훈"), ("제 이름은 서연이에요", "서연"),
    ("안녕 내 이름은 수아야!", "수아"), ("제 이름은 Alex입니다.", "Alex"), ("내 이름은 도윤이라고 해", "도윤"),
    ("내 이름은 뭐야?", ""), ("내 이름은 뭐게", ""), ("내 이름은 비밀이야", ""), ("나는 대학생이야", ""),
    ("내 이름 기억할 수 있어?", ""), ("강아지 이름은 몽이야", ""), ("네 이름은 하루야?", ""),
])
def test_a_name_is_read_only_from_a_message_that_gives_the_users_own(message, name):
    assert texts(stated_names(tf.constant([message]))) == [name]


def test_the_last_name_given_counts():
    turns = tf.constant([["내 이름은 민지야", "배고파", "아니 내 이름은 수아야", ""], ["안녕", "배고파", "", ""]])
    assert texts(last_stated_name(turns)) == ["수아", ""]


def test_the_name_is_greeted_told_back_and_asked_for():
    turns = tf.constant([
        ["내 이름은 민지야", "", ""],                       # states it now: greeted
        ["내 이름은 민지야", "과제가 많아", "내 이름 기억할 수 있어?"],  # asked later: told back
        ["안녕", "내 이름 알아?", ""],                       # asked, never given: asked for
        ["내 이름은 민지야", "과제가 많아", ""],                 # anything else: the selector's reply
    ])
    questions = tf.constant(["내 이름은 민지야", "내 이름 기억할 수 있어?", "내 이름 알아?", "과제가 많아"])
    replies = texts(answer_about_the_user(turns, questions, tf.constant(["a", "b", "c", "d"])))
    assert "민지" in replies[0] and replies[0] != "a"
    assert "민지" in replies[1] and "기억" in replies[1]
    assert replies[2] == NOT_TOLD
    assert replies[3] == "d"
