"""What the user said in a conversation, told back when asked: their name, and anything else they said.

A chat client sends the whole conversation with every `chat` request, so the graph can
remember without keeping state, however many turns ago something was said (the model itself
sees only the last `data.context_turns`):
- **the name**: the user's turns are searched for a stated name ("내 이름은 민지야", "제 이름은
  서연이에요", "저는 김순자라고 해요"); the message that states it is answered with a greeting by
  that name, and a later message asking for it ("내 이름 기억해?", "내 이름이 뭐였지?") with the
  last name given, or, where no turn gave one, with a question for it;
- **anything else** (a pet's name, a city, tomorrow's plan): a message asking whether the bot
  remembers what the user said ("내 고양이 이름 기억나?", "내가 어디로 이사 간다고 했지?") is
  answered from the user's own earlier turn that shares the most with it (TF-IDF cosine of
  character n-grams, at least `RECALL_MIN_SIMILARITY`): a pet's or a person's name given as
  "… 이름은 X" is told back, any other turn is quoted. Where no earlier turn is close enough the
  selector's reply stands (the corpus teaches 하루 to say it does not know).
Every other message keeps the selector's reply. Something is remembered while its turn is among
those the client sends (the chat page and `serving/client.py`: the latest 16). "나는 민지야"
could as well be "나는 대학생이야", so it is not read as a name. Core ops only (RE2 and a matmul),
so TF Serving runs it.

    replies = answer_about_the_user(user_turns, questions, replies)  # [B, T] user turns, [B], [B]
    replies = recall_what_was_said(earlier_user_turns, questions, replies, idf)
"""

from __future__ import annotations

import tensorflow as tf

from model.retrieval import text_vectors

_NAME = r"([가-힣A-Za-z]{1,8}?)"
_MY_NAME = r"(내|제|나의|저의) 이름"
# "내 이름은 민지야", "제 이름은 서연이에요", "내 이름은 지훈이라고 해", "저는 김순자라고 해요": the whole message.
STATES_NAME = (r"^\s*(.*\s)?(" + _MY_NAME + r"은|저는|나는|난|전) " + _NAME +
               r"(이야|야|이에요|예요|에요|입니다|이고|이라고 해|라고 해|이라고 합니다|라고 합니다|이라고 해요|라고 해요)?"
               r"([\s.!~]*|[.!~]\s.*)$")  # The message, or its first sentence.
# Without "이름은", only the naming forms: "저는 김순자라고 해요" is a name, "나는 대학생이야" is not.
NAMED_BY_SAYING = r".*(이라고|라고) (해|해요|합니다|불러).*"
NOT_A_NAME = r"(뭐|뭘|무엇|뭔지|뭐게|모야|비밀)"
# "내 이름 기억할 수 있어?", "제 이름이 뭐였죠?", "내 이름 알아?"
ASKS_NAME = r".*" + _MY_NAME + r"(이|은|을)? ?(뭐|뭔지|기억|알아|알지|아니|아세요|알고|말해|불러).*"

GREETING = "반가워요, {name}님! 이름 기억해 둘게요."
RECALL = "{name}님이잖아요. 기억하고 있어요."
NOT_TOLD = "아직 이름을 듣지 못했어요. 이름이 뭐예요?"


def stated_names(turns: tf.Tensor) -> tf.Tensor:
    """[...] user turns -> [...] the name each states ("" where it states none)."""
    states = tf.strings.regex_full_match(turns, STATES_NAME)
    with_name_word = tf.strings.regex_full_match(turns, r".*" + _MY_NAME + r"은 .*")
    states &= with_name_word | tf.strings.regex_full_match(turns, NAMED_BY_SAYING)
    names = tf.strings.regex_replace(turns, STATES_NAME, r"\4")
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


# Asking whether the bot remembers what the user said: "내 고양이 이름 기억나?", "내가 어디로 이사 간다고 했는지
# 기억나?", "제가 누구랑 간다고 했죠?", "엄마 생신이 언제라고 했는지 기억나세요?": asking to recall something said.
_RECALL_WORD = r"(기억|생각)\s?(나|해|하|할|나세요|하세요|하시|하니|하지|나니|났)"
ASKS_RECALL = (r".*((했|였|이었|라고 했|다고 했|랬|댔)(는지|던지|던가)\s.*" + _RECALL_WORD +  # "...했는지 기억나?"
               r"|(했|였|이었|그랬|랬|댔)(지|죠|더라|던가|었지|었죠)[\s?？!.~]*$"  # "...라고 했지?"
               r"|(^|\s)(내|제|나의|저의|우리|내가|제가)\s.*" + _RECALL_WORD + r").*")  # "내 고양이 이름 기억나?"
RECALL_MIN_SIMILARITY = 0.08  # TF-IDF cosine of the question (its asking words left out) and the earlier turn.
# How the question asks, left out before it is compared with the earlier turns.
ASKING_WORDS = (r"(\S*(했|였|이었|랬|댔)(는지|던지|던가|지|죠|더라|었지|었죠)|\S*(기억|생각)\S*|내가|제가|근데|혹시|"
                r"하루야|하루 ?씨|[?？!.~])")
# What a "when", "where" or "who" question asks for, and the turns that say such a thing.
ANSWER_KINDS = (
    (r".*(몇 ?시|언제|며칠|무슨 ?요일|몇 ?월).*",
     r".*([0-9]+ ?(시|월|일)|오전|오후|새벽|아침|저녁|밤|내일|모레|주말|다음 ?(주|달)|이번 ?(주|달)|[월화수목금토일]요일).*"),
    (r".*(어디|어느 ?(곳|나라|도시|동네)).*", r".*[가-힣A-Za-z0-9]+(으로|로|에서|에) .*"),
    (r".*누구.*", r".*(엄마|아빠|아내|남편|친구|동생|언니|오빠|누나|형|남친|여친|애인|아들|딸|할머니|할아버지|손주|가족|선배|후배|"
                  r"동료|[가-힣]+(이랑|랑|하고) ).*"),
)
NAMED = r"^.*이름은 " + _NAME + r"(이야|야|이에요|예요|에요|입니다|이고|이라고|라고|이래|래)?([\s.!~,].*)?$"


def recall_what_was_said(earlier_turns: tf.Tensor, questions: tf.Tensor, replies: tf.Tensor,
                         idf: tf.Tensor) -> tf.Tensor:
    """[B, T] the user's earlier turns, oldest first ("" elsewhere), [B] questions and replies, `idf` (an index's)
    -> [B] replies, a question asking to recall answered from the earlier turns.

    The turn that shares the most with the question (at least `RECALL_MIN_SIMILARITY`) is the topic;
    for a "when/where/who" question the latest turn that says such a thing is the answer. Both are
    quoted, in the order they were said (one where they are the same turn or the other is missing); a
    name given as "… 이름은 X" in the topic turn is told back as the name.
    """
    asks = tf.strings.regex_full_match(questions, ASKS_RECALL) & ~tf.strings.regex_full_match(questions, ASKS_NAME)
    earlier_turns = tf.pad(earlier_turns, [[0, 0], [0, 1]], constant_values="")  # One unspoken turn: a first message has none before it.
    spoken = tf.strings.length(earlier_turns) > 0
    batch, count = tf.shape(earlier_turns)[0], tf.shape(earlier_turns)[1]
    turn_vectors = tf.reshape(text_vectors(tf.reshape(earlier_turns, [-1]), idf), [batch, count, -1])
    asked = tf.strings.strip(tf.strings.regex_replace(tf.strings.regex_replace(questions, ASKING_WORDS, " "), " +", " "))
    similarity = tf.where(spoken, tf.linalg.matvec(turn_vectors, text_vectors(asked, idf)), -1.0)  # [B, T]
    topic = tf.where(tf.reduce_max(similarity, axis=1) >= RECALL_MIN_SIMILARITY,
                     tf.argmax(similarity, axis=1, output_type=tf.int32), -1)  # -1: no turn close enough
    answer = _answering_turn(earlier_turns, questions, spoken)  # -1: none, or not a "when/where/who" question
    found = asks & ((topic >= 0) | (answer >= 0))
    first, second = tf.minimum(topic, answer), tf.maximum(topic, answer)  # In the order they were said.
    first = tf.where(first < 0, second, first)
    quoted = tf.strings.join(['"', tf.gather(earlier_turns, tf.maximum(first, 0), batch_dims=1), '"'])
    quoted = tf.where(second != first, tf.strings.join(
        [quoted, ', "', tf.gather(earlier_turns, tf.maximum(second, 0), batch_dims=1), '"']), quoted)
    topic_turn = tf.gather(earlier_turns, tf.maximum(topic, 0), batch_dims=1)
    named = (topic >= 0) & tf.strings.regex_full_match(topic_turn, NAMED) & \
        tf.strings.regex_full_match(questions, r".*이름.*")
    name = tf.strings.regex_replace(topic_turn, NAMED, r"\1")
    told = tf.where(named, tf.strings.join([name, _copula(name), "잖아요. 기억하고 있어요."]),
                    tf.strings.join([quoted, "라고 했잖아요. 기억하고 있어요."]))
    return tf.where(found, told, replies)


def _answering_turn(turns: tf.Tensor, questions: tf.Tensor, spoken: tf.Tensor) -> tf.Tensor:
    """[B] the latest of `turns` [B, T] that says what the question's "when/where/who" asks for; -1 for none."""
    position = tf.range(tf.shape(turns)[1])[None, :]
    answer = tf.fill(tf.shape(questions), -1)
    for asked, said in ANSWER_KINDS:
        says = spoken & tf.strings.regex_full_match(turns, said)
        latest = tf.reduce_max(tf.where(says, position, -1), axis=1)
        answer = tf.where(tf.strings.regex_full_match(questions, asked) & (answer < 0), latest, answer)
    return answer


def _copula(words: tf.Tensor) -> tf.Tensor:
    """[...] Korean words -> "이" after a final consonant (받침: "솜이잖아요"), else "" ("나비잖아요")."""
    last_character = tf.strings.substr(tf.strings.join([" ", words]), -1, 1, unit="UTF8_CHAR")  # " " for "".
    last = tf.strings.unicode_decode(last_character, "UTF-8").to_tensor(0)[..., 0]
    syllable = (last >= 0xAC00) & (last <= 0xD7A3)
    return tf.where(syllable & ((last - 0xAC00) % 28 != 0), "이", "")
