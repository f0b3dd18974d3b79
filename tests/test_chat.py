"""serving/chat_session.py and chat.py: history, commands, and the stdin loop."""

import subprocess
import sys

import pytest

from conftest import ROOT
from config import DecodingSettings
from serving.chat_session import ChatSession, LocalReplies, QuitChat
from serving.client import MAX_TURNS


class EchoReplies:
    """Replies with the history it was given (as `RunReplies.chat` would reply), so tests can see it."""

    def __init__(self):
        self.calls = []

    def chat(self, histories, settings):
        self.calls.append((histories, settings))
        return [f"<{len(histories[0])}>"]


def test_the_session_sends_its_history_with_its_own_replies_and_reset_clears_it():
    replies = EchoReplies()
    session = ChatSession(LocalReplies(replies))
    assert session.handle("안녕") == "<1>"
    session.handle("  뭐 해?  ")
    assert replies.calls[-1][0] == [["안녕", "<1>", "뭐 해?"]]  # Normalised; the bot's reply kept.
    assert session.handle("/reset") == "(conversation cleared)"
    session.handle("다시")
    assert replies.calls[-1][0] == [["다시"]]


def test_a_long_conversation_sends_its_latest_turns():
    replies = EchoReplies()
    session = ChatSession(LocalReplies(replies))
    for number in range(12):
        session.handle(f"질문 {number}")
    sent = replies.calls[-1][0][0]
    assert len(session.history) == 24 and sent == session.history[:-1][-MAX_TURNS:] and sent[-1] == "질문 11"


def test_set_command_changes_settings_and_checks_them():
    session = ChatSession(LocalReplies(EchoReplies()))
    assert session.handle("/set temperature 0.8") == "temperature = 0.8"
    assert session.handle("/set strategy sample") == "strategy = 'sample'"
    assert session.settings == DecodingSettings(strategy="sample", temperature=0.8)
    assert session.handle("/set temperature -1").startswith("not changed")
    assert session.handle("/set colour blue").startswith("unknown setting")
    assert "temperature=0.8" in session.handle("/settings")
    assert session.handle("/nonsense").startswith("commands:")
    with pytest.raises(QuitChat):
        session.handle("/quit")


def test_chat_cli_reads_stdin(tmp_path, real_run):
    run_dir, _ = real_run
    process = subprocess.run(
        [sys.executable, str(ROOT / "chat.py"), "--run-dir", str(run_dir)],
        input="안녕하세요\n/set strategy beam\n배고파\n/reset\n", capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert process.returncode == 0, process.stderr
    lines = process.stdout.splitlines()
    assert len(lines) == 4
    assert lines[1] == "strategy = 'beam'" and lines[3] == "(conversation cleared)"
    assert lines[0] and lines[2]  # Replies, one line each.


def test_chat_cli_rejects_a_missing_run(tmp_path):
    process = subprocess.run(
        [sys.executable, str(ROOT / "chat.py"), "--run-dir", str(tmp_path)], capture_output=True, text=True, timeout=120,
    )
    assert process.returncode == 2 and "not a run directory" in process.stderr
