"""A conversation with the model: history, decoding settings and slash commands.

`ChatSession.handle(line)` returns what to print: a reply, or a command's answer.
It keeps the conversation's turns and sends the model as many of the latest as it
was trained to see (`data.context_turns`), joined with [SEP].

Commands: /reset, /quit, /settings, /help, /set NAME VALUE (any `DecodingSettings`
field, e.g. `/set strategy sample`, `/set temperature 0.8`, `/set top_p 0.9`).
"""

from __future__ import annotations

import dataclasses

import yaml

from data_pipeline.examples import SEP_TEXT
from data_pipeline.sources import normalize_text
from model.generation import DecodingSettings, ReplyGenerator

HELP = "commands: /reset  /quit  /settings  /set NAME VALUE  /help   (NAME: " + ", ".join(
    f.name for f in dataclasses.fields(DecodingSettings)
) + ")"


class QuitChat(Exception):
    pass


class ChatSession:
    def __init__(self, generator: ReplyGenerator, context_turns: int = 1, settings: DecodingSettings = DecodingSettings()):
        self.generator = generator
        self.context_turns = max(1, context_turns)
        self.settings = settings
        self.history: list[str] = []

    def context(self) -> str:
        return SEP_TEXT.join(self.history[-self.context_turns :])

    def handle(self, line: str) -> str:
        line = normalize_text(line)
        if not line:
            return ""
        if line.startswith("/"):
            return self._command(line)
        self.history.append(line)
        reply = self.generator.reply([self.context()], self.settings)[0]
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
