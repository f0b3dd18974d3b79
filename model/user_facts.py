"""What the user said about themself in a conversation: their name, kept and asked back.

A chat client sends the whole conversation with every `chat` request, so the graph can
remember without keeping state: the user's turns are searched for a stated name ("내 이름은
민지야", "제 이름은 서연이에요"), and
- the message that states it is answered with a greeting by that name;
- a later message asking for it ("내 이름 기억해?", "내 이름이 뭐였지?") is answered with the
  last name the user gave, or, where no turn gave one, with a question for it.
Every other message keeps the selector's reply. A name is remembered while its turn is among
those the client sends (the chat page and `serving/client.py`: the latest 16). Only the forms
above are read: "나는 민지야" could as well be "나는 대학생이야", so it is left to the selector.
Core string ops (RE2) only, so TF Serving runs it.

    replies = answer_about_the_user(user_turns, questions, replies)  # [B, T] user turns, [B], [B]
"""

from __future__ import annotations

import tensorflow as tf

_NAME = r"([가-힣A-Za-z]{1,8}?)"
_MY_NAME = r"(내|제|나의|저의) 이름"
# "내 이름은 민지야", "제 이름은 서연이에요", "내 이름은 지훈이라고 해": the whole message.
STATES_NAME = (r"^\s*(.*\s)?" + _MY_NAME + r"은 " + _NAME +
               r"(이야|야|이에요|예요|에요|입니다|이고|이라고 해|라고 해|이라고 합니다|라고 합니다)?[\s.!~]*$")
NOT_A_NAME = r"(뭐|뭘|무엇|뭔지|뭐게|모야|비밀)"
# "내 이름 기억할 수 있어?", "제 이름이 뭐였죠?", "내 이름 알아?"
ASKS_NAME = r".*" + _MY_NAME + r"(이|은|을)? ?(뭐|뭔지|기억|알아|알지|아니|아세요|알고|말해|불러).*"

GREETING = "반가워요, {name}님! 이름 기억해 둘게요."
RECALL = "{name}님이잖아요. 기억하고 있어요."
NOT_TOLD = "아직 이름을 듣지 못했어요. 이름이 뭐예요?"


def stated_names(turns: tf.Tensor) -> tf.Tensor:
    """[...] user turns -> [...] the name each states ("" where it states none)."""
    states = tf.strings.regex_full_match(turns, STATES_NAME)
    names = tf.strings.regex_replace(turns, STATES_NAME, r"\3")
    return tf.where(states & ~tf.strings.regex_full_match(names, NOT_A_NAME), names, "")


def last_stated_name(user_turns: tf.Tensor) -> tf.Tensor:
    """[B, T] user turns, oldest first ("" elsewhere) -> [B] the last name given ("" for none)."""
    names = stated_names(user_turns)
    given = tf.strings.length(names) > 0
    count = tf.shape(names)[1]
    last = count - 1 - tf.argmax(tf.cast(tf.reverse(given, [1]), tf.int32), axis=1, output_type=tf.int32)
    return tf.where(tf.reduce_any(given, axis=1), tf.gather(names, last, batch_dims=1), "")


def answer_about_the_user(user_turns: tf.Tensor, questions: tf.Tensor, replies: tf.Tensor) -> tf.Tensor:
    """[B, T] user turns, oldest first (the question among them), [B] questions and [B] selected replies
    -> [B] replies, the user's name kept."""
    stated_now = stated_names(questions)
    name = last_stated_name(user_turns)
    asks = tf.strings.regex_full_match(questions, ASKS_NAME) & (tf.strings.length(stated_now) == 0)
    known = tf.strings.length(name) > 0

    def filled(template):
        before, after = template.split("{name}")
        return tf.strings.join([before, name, after])

    replies = tf.where(asks, tf.where(known, filled(RECALL), NOT_TOLD), replies)
    return tf.where(tf.strings.length(stated_now) > 0, filled(GREETING), replies)
