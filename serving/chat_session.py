"""A conversation with the model: history, decoding settings and slash commands.

`ChatSession.handle(line)` returns what to print: a reply, or a command's answer.
It keeps the conversation's turns and hands them to a replier: `LocalReplies` (a run in
this process, through the exported `chat` signature's own function, `serving/replies.py`) or
`serving.client.RemoteReplies` (a server's `chat` signature). Either keeps the latest turns the
model was trained to see, formatted as in training, behind the run's character persona, and
never repeats a reply the bot gave earlier in the conversation while it has another.

Commands: /reset, /quit, /settings, /help, /set NAME VALUE (any `DecodingSettings`
field, e.g. `/set strategy sample`, `/set temperature 0.8`, `/set top_p 0.9`).
"""

from __future__ import annotations

import dataclasses

import yaml

from config import DecodingSettings
from data_pipeline.sources import normalize_text
from serving.client import MAX_TURNS

HELP = "commands: /reset  /quit  /settings  /set NAME VALUE  /help   (NAME: " + ", ".join(
    f.name for f in dataclasses.fields(DecodingSettings)
) + ")"


class QuitChat(Exception):
    pass


class LocalReplies:
    """Replies in this process to a chat history (oldest turn first, the user's last).

    `replies`: a `serving.replies.RunReplies`, whose `chat` is the exported `chat` signature's
    function; like `serving.client.RemoteReplies`, it sends the latest `MAX_TURNS` turns.
    """

    def __init__(self, replies):
        self.replies = replies

    def reply_to(self, history: list[str], settings: DecodingSettings) -> str:
        return self.replies.chat([history[-MAX_TURNS:]], settings)[0]


class ChatSession:
    def __init__(self, replier, settings: DecodingSettings = DecodingSettings()):
        self.replier = replier  # `LocalReplies` or `serving.client.RemoteReplies`.
        self.settings = settings
        self.history: list[str] = []

    def handle(self, line: str) -> str:
        line = normalize_text(line)
        if not line:
            return ""
        if line.startswith("/"):
            return self._command(line)
        self.history.append(line)
        reply = self.replier.reply_to(self.history, self.settings)
        self.history.append(reply)
        return reply

    def _command(self, line: str) -> str:
        name, *args = line[1:].split()
        if name == "quit":
            raise QuitChat
        if name == "reset":
            self.history.clear()
            return "(conversation cleared)"
        if name == "settings":
            return ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(self.settings).items())
        if name == "set" and len(args) == 2:
            return self._set(*args)
        return HELP

    def _set(self, field: str, value: str) -> str:
        names = {f.name for f in dataclasses.fields(DecodingSettings)}
        if field not in names:
            return f"unknown setting {field!r}; {HELP}"
        parsed = yaml.safe_load(value)
        try:
            self.settings = dataclasses.replace(self.settings, **{field: parsed})
        except (ValueError, TypeError) as error:
            return f"not changed: {error}"
        return f"{field} = {parsed!r}"
