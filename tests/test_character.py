"""data_pipeline/character.py: the character file, its checks, and the shipped example."""

from pathlib import Path

import pytest

from conftest import ROOT
from data_pipeline.character import DialogueFile, character_path, load_character
from data_pipeline.sources import DataError

HARU = ROOT / "characters" / "haru.yaml"


def test_example_character_loads():
    character = load_character(HARU)
    assert character.name == "하루" and len(character.persona) >= 1 and len(character.identity) >= 20
    (first, *_) = character.identity_dialogues(with_persona=True)
    assert first.persona == character.persona and first.source.startswith(str(HARU))
    assert character.identity_dialogues()[0].persona == ()
    assert character.greeting.startswith("안녕하세요! 저는 하루예요.")  # The chat page's first line.
    assert character.dialogues == (DialogueFile(HARU.parent / "haru_dialogues.jsonl"),  # Resolved against the file.
                                   DialogueFile(HARU.parent / "haru_dialogues_more.jsonl", held_out=False))


def test_the_shipped_corpus_is_read_whole():
    from data_pipeline.sources import read_dialogues

    (first, first_report), (more, more_report) = [read_dialogues(entry.path) for entry in load_character(HARU).dialogues]
    assert (len(first), len(more)) == (2857, 900)
    assert not (first_report.skipped or first_report.duplicates or more_report.skipped or more_report.duplicates)
    assert all(d.first_speaker == "user" and 8 <= len(d.turns) <= 12 for d in first + more)
    assert not {d.turns[0] for d in first} & {d.turns[0] for d in more}  # No opening line is reused.
    assert (HARU.parent / "haru_dialogues.LICENSE").exists() and (HARU.parent / "HARU_DIALOGUES_GUIDE.md").exists()


def test_dialogue_files_are_resolved_against_the_character_file_and_weighted(tmp_path):
    path = tmp_path / "sub" / "c.yaml"
    path.parent.mkdir()
    path.write_text('name: n\npersona: [a]\nidentity: [{q: x, a: y}]\ndialogues: [talk.jsonl@2, /abs/t.jsonl, '
                    '{file: more.jsonl, weight: 0.5, held_out: false}]\n', encoding="utf-8")
    assert load_character(path).dialogues == (DialogueFile(path.parent / "talk.jsonl", 2.0),
                                              DialogueFile(Path("/abs/t.jsonl")),
                                              DialogueFile(path.parent / "more.jsonl", 0.5, held_out=False))


def test_the_default_character_is_found_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert character_path("characters/haru.yaml") == HARU
    assert character_path("elsewhere.yaml") == Path("elsewhere.yaml")  # Left for the error that names it.


def test_the_greeting_defaults_to_the_first_identity_answer(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text('name: n\npersona: [a]\nidentity: [{q: "누구야?", a: "저는 n이에요."}]\n', encoding="utf-8")
    assert load_character(path).greeting == "저는 n이에요."


def read_probe_file(name: str) -> list[str]:
    lines = (ROOT / "evaluation" / name).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_probe_questions_are_paraphrases_not_in_the_file():
    questions = {q for q, _ in load_character(HARU).identity}
    probes, more = read_probe_file("character_probes.txt"), read_probe_file("character_probes_more.txt")
    assert len(probes) == 10 and len(more) == len(set(more)) == 20
    assert not (set(probes) | set(more)) & questions and not set(probes) & set(more)


def test_probes_about_the_user_are_distinct_and_not_identity_questions():
    questions = {q for q, _ in load_character(HARU).identity}
    lists = [read_probe_file(name) for name in ("user_probes.txt", "user_probes_more.txt", "user_probes_blind.txt")]
    assert [len(probes) for probes in lists] == [10, 10, 20]
    every = [probe for probes in lists for probe in probes]
    assert len(set(every)) == len(every) and not set(every) & questions


@pytest.mark.parametrize("text, message", [
    ("persona: [a]\nidentity: [{q: x, a: y}]\n", "field 'name' is missing"),
    ("name: n\npersona: []\nidentity: [{q: x, a: y}]\n", "field 'persona'"),
    ("name: n\npersona: [a]\nidentity: []\n", "field 'identity' needs"),
    ("name: n\npersona: [a]\nidentity: [{q: x}]\n", "identity[0] must be a mapping"),
    ("name: n\npersona: [a]\nidentity: [{q: x, a: ' '}]\n", "identity[0] has an empty"),
    ("name: n\npersona: [a]\nidentity: [{q: x, a: y}]\nweight: 0\n", "field 'weight'"),
    ("name: n\npersona: [a]\nidentity: [{q: x, a: y}]\ncolour: red\n", "unknown field(s) ['colour']"),
    ("name: n\npersona: [a]\nidentity: [{q: x, a: y}]\ngreeting: [hi]\n", "field 'greeting'"),
    ("name: n\npersona: [a]\nidentity: [{q: x, a: y}]\ndialogues: talk.jsonl\n", "field 'dialogues' must be a list"),
    ("name: n\npersona: [a]\nidentity: [{q: x, a: y}]\ndialogues: [talk.jsonl@0]\n", "dialogues[0]: the weight"),
    ("name: n\npersona: [a]\nidentity: [{q: x, a: y}]\ndialogues: [{file: t.jsonl, held_out: maybe}]\n",
     "dialogues[0]: held_out must be true or false"),
    ("name: n\npersona: [a]\nidentity: [{q: x, a: y}]\ndialogues: [{path: t.jsonl}]\n", "dialogues[0] must be"),
    ("name: [unclosed\n", "not valid YAML"),
    ("- just a list\n", "expected a mapping"),
])
def test_bad_character_files_name_the_field(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=r".*".join(map(__import__("re").escape, [str(path), message]))):
        load_character(path)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="cannot read character file"):
        load_character(Path(tmp_path) / "none.yaml")
