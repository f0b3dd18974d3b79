"""model/user_facts.py: the user's name, read from their turns, greeted and told back when asked; what else they said,
told back when asked to recall it."""

import pytest
import tensorflow as tf

from model.user_facts import NOT_TOLD, answer_about_the_user, last_stated_name, recall_what_was_said, stated_names


def texts(tensor) -> list[str]:
    return [t.decode("utf-8") for t in tensor.numpy().ravel()]


@pytest.mark.parametrize("message, name", [
    ("내 이름은 민지야", "민지"), ("내 이름은 지훈이야", "지훈"), ("제 이름은 서연이에요", "서연"),
    ("안녕 내 이름은 수아야!", "수아"), ("제 이름은 Alex입니다.", "Alex"), ("내 이름은 도윤이라고 해", "도윤"),
    ("내 이름은 뭐야?", ""), ("내 이름은 뭐게", ""), ("내 이름은 비밀이야", ""), ("나는 대학생이야", ""),
    ("내 이름 기억할 수 있어?", ""), ("강아지 이름은 몽이야", ""), ("네 이름은 하루야?", ""),
    ("저는 김순자라고 해요. 올해 예순여덟이에요", "김순자"), ("난 민지라고 해", "민지"), ("저는 학생이에요", ""),
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


@pytest.fixture(scope="module")
def idf(chatbot_dialogues):
    from data_pipeline.examples import to_examples
    from model.retrieval import RetrievalIndex

    return RetrievalIndex.build(to_examples(chatbot_dialogues[:3000])).idf


@pytest.mark.parametrize("said, question, told", [
    (["우리 고양이 이름은 치즈야", "노란 코숏인데 세 살이야", "요즘 밥을 잘 안 먹어"], "내 고양이 이름 기억나?",
     "치즈잖아요. 기억하고 있어요."),
    (["우리 강아지 이름은 솜이야"], "우리 강아지 이름 기억해?", "솜이잖아요. 기억하고 있어요."),  # 받침: 이잖아요
    (["나 이번 주 토요일에 이사 가", "대전으로 가는 거야. 회사가 옮겨서", "짐이 너무 많아"],
     "근데 내가 어디로 이사 간다고 했는지 기억나?", '"나 이번 주 토요일에 이사 가", "대전으로 가는 거야. 회사가 옮겨서"'),
    (["하루야 나 내일 면접 있어", "오전 10시에 강남에 있는 IT 회사야", "떨려"], "내 면접 몇 시라고 했는지 기억나?",
     '"오전 10시에 강남에 있는 IT 회사야"'),
    (["다음 달에 제주도 여행 가요", "결혼 30주년이라 아내랑 둘이 가요"], "제가 누구랑 간다고 했는지 기억나세요?",
     '"결혼 30주년이라 아내랑 둘이 가요"'),
    (["고민이 있어서 왔어요", "다음 주 일요일이 엄마 생신이에요", "작년엔 스카프를 드렸거든요"],
     "엄마 생신이 언제라고 했는지 기억나세요?", '"다음 주 일요일이 엄마 생신이에요"라고 했잖아요'),
])
def test_what_the_user_said_is_told_back_when_asked(idf, said, question, told):
    turns = tf.constant([said + [""] * (4 - len(said))])
    (reply,) = texts(recall_what_was_said(turns, tf.constant([question]), tf.constant(["selected"]), idf))
    assert told in reply and reply != "selected"


@pytest.mark.parametrize("said, question", [
    (["배고파", "라면 먹을까"], "어제 내가 한 얘기 기억나?"),  # Nothing said here: the selector's reply (하루 says so).
    (["배고파", "라면 먹을까"], "나 오늘 기분이 좋아"),  # Not asking to recall.
    (["나 내일 부산 가"], "너 부산 가 봤어?"),
    (["내 이름은 민지야"], "내 이름 기억나?"),  # The name: `answer_about_the_user`.
    (["", ""], "내가 언제 간다고 했지?"),  # Nothing said before.
])
def test_other_messages_keep_the_selected_reply(idf, said, question):
    turns = tf.constant([said])
    assert texts(recall_what_was_said(turns, tf.constant([question]), tf.constant(["selected"]), idf)) == ["selected"]
