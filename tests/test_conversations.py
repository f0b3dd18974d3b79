"""evaluation/conversations.py: the conversation file, playing it as a client does, what raters see."""

import pytest

from errors import UserError
from evaluation.conversations import CONVERSATIONS, Conversation, load_conversations, play, render


def test_the_shipped_conversations_are_twelve_of_six_turns():
    conversations = load_conversations(CONVERSATIONS)
    assert len(conversations) >= 12 and all(len(c.turns) == 6 for c in conversations)
    assert len({c.id for c in conversations}) == len(conversations)


def test_each_request_carries_the_whole_history_with_the_bots_own_replies():
    calls = []

    def chat(histories):
        calls.append(histories)
        return [f"r{len(h)}" for h in histories]

    turns = play(chat, [Conversation("a", "", ("안녕", "배고파", "뭐 먹지?")), Conversation("b", "", ("잘 자",))])
    assert calls == [[["안녕"], ["잘 자"]], [["안녕", "r1", "배고파"]], [["안녕", "r1", "배고파", "r3", "뭐 먹지?"]]]
    assert [(t.conversation, t.index, t.reply) for t in turns] == [("a", 0, "r1"), ("a", 1, "r3"), ("a", 2, "r5"),
                                                                  ("b", 0, "r1")]
    assert turns[2].rendered == "사용자: 안녕\n챗봇: r1\n사용자: 배고파\n챗봇: r3\n사용자: 뭐 먹지?"
    assert render(["안녕"]) == "사용자: 안녕"


@pytest.mark.parametrize("line, message", [
    ('{"id": "x", "turns": []}', "field 'turns'"),
    ('{"id": "x", "turns": ["안녕", " "]}', "field 'turns'"),
    ('{"id": "c01", "turns": ["안녕"]}', "id 'c01' appears twice"),
])
def test_a_bad_line_is_named_by_file_and_line(tmp_path, line, message):
    path = tmp_path / "conversations.jsonl"
    path.write_text('{"id": "c01", "turns": ["안녕"]}\n\n' + line + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=f"{path}:3: {message}"):
        load_conversations(path)
    path.write_text("", encoding="utf-8")
    with pytest.raises(UserError, match="no conversations"):
        load_conversations(path)


def test_a_text_file_of_messages_is_one_conversation_per_message(tmp_path):
    path = tmp_path / "probes.txt"
    path.write_text("# questions about the bot\n너 점심 먹었어?\n\n어디 살아?\n", encoding="utf-8")
    conversations = load_conversations(path)
    assert [(c.id, c.turns) for c in conversations] == [("m01", ("너 점심 먹었어?",)), ("m02", ("어디 살아?",))]
    assert len(load_conversations(CONVERSATIONS.with_name("life_probes.txt"))) == 40
