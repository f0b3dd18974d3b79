"""serving/chat_session.py and chat.py: history, commands, and the stdin loop."""

import subprocess
import sys

import pytest

from conftest import ROOT
from serving.chat_session import ChatSession, LocalReplies, QuitChat
from model.generation import DecodingSettings
from model.hybrid import Selection


class EchoGenerator:
    """Replies with what it was given (as `RunReplies.respond` would), so tests can see the context sent."""

    def __init__(self):
        self.calls = []

    def respond(self, contexts, personas, settings):
        self.calls.append((contexts, settings))
        return Selection(reply=[f"<{contexts[0]}>"], retrieved=None, similarity=None)


def test_history_window_speaker_marks_and_reset():
    generator = EchoGenerator()
    session = ChatSession(LocalReplies(generator, history_turns=2))
    assert session.handle("안녕") == "<안녕>"
    session.handle("  뭐 해?  ")
    assert generator.calls[-1][0] == ["[USER] 안녕 [SEP] [BOT] <안녕> [SEP] 뭐 해?"]
    session.handle("셋")
    assert generator.calls[-1][0][0].startswith("[USER] 뭐 해? [SEP] [BOT] ")  # Two earlier turns at most.
    assert session.handle("/reset") == "(conversation cleared)"
    session.handle("다시")
    assert generator.calls[-1][0] == ["다시"]


def test_single_turn_model_sees_only_the_question():
    generator = EchoGenerator()
    session = ChatSession(LocalReplies(generator, history_turns=0))
    session.handle("하나")
    session.handle("둘")
    assert generator.calls[-1][0] == ["둘"]


def test_set_command_changes_settings_and_checks_them():
    session = ChatSession(LocalReplies(EchoGenerator()))
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
