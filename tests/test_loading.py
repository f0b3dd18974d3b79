"""data_pipeline/loading.py: mixing sources with weights, the character, per-source splits, history depth."""

import json

import pytest

from config import DataConfig
from conftest import AIHUB_SAMPLE, HARU
from data_pipeline.character import load_character
from data_pipeline.context import format_persona
from data_pipeline.examples import load_examples
from data_pipeline.loading import prepare_data, run_context_turns, run_persona
from data_pipeline.sources import parse_source
from data_pipeline.sources import DataError


def test_parse_source():
    assert parse_source("a/b.csv") == ("a/b.csv", 1.0)
    assert parse_source("a/b.json@2.5") == ("a/b.json", 2.5)
    with pytest.raises(DataError, match="must be a number"):
        parse_source("a.csv@two")
    with pytest.raises(DataError, match="must be a finite number > 0"):
        parse_source("a.csv@0")


def test_mixed_sources_weights_and_character(persona_run, haru_sample):
    run_dir, _ = persona_run
    train = load_examples(run_dir / "data" / "train.jsonl")
    validation = load_examples(run_dir / "data" / "validation.jsonl")
    character = load_character(haru_sample)
    persona = format_persona(character.persona)

    identity = [e for e in train if "identity" in e.source]
    assert len(identity) == len(character.identity) and {e.weight for e in identity} == {character.weight}
    assert not [e for e in validation if "identity" in e.source]  # The character is never held out.
    xpersona = [e for e in train if "xpersona" in e.source]
    assert xpersona and {e.weight for e in xpersona} == {2.0}
    assert all(e.persona and e.persona != persona for e in xpersona)  # XPersona keeps its own personas.
    aihub = [e for e in train + validation if "aihub" in e.source]
    assert aihub and {e.persona for e in aihub} == {persona}  # No persona of its own: the character's.
    assert not {e.source for e in train} & {e.source for e in validation}  # Split by dialogue.
    assert (run_dir / "character.yaml").read_bytes() == haru_sample.read_bytes()
    assert run_persona(run_dir, DataConfig(character_persona=True)) == persona

    report = json.loads((run_dir / "data_report.json").read_text(encoding="utf-8"))
    assert [r["weight"] for r in report["read"]] == [2.0, 1.0, 1.0]  # XPersona, AIHub, the character's dialogues.
    assert report["character"]["name"] == "하루" and report["context_turns_seen"] == 3
    assert run_context_turns(run_dir, 3) == 3 and run_context_turns(run_dir, 1) == 1


def test_single_turn_runs_send_no_history(real_run):
    assert run_context_turns(real_run[0], 3) == 0  # ChatbotData: the model never saw earlier turns.
    assert run_persona(real_run[0], DataConfig(character_persona=True)) == ""


def test_by_default_the_character_adds_identity_pairs_but_no_persona(tmp_path):
    data = prepare_data(DataConfig(sources=[str(AIHUB_SAMPLE)], character=str(HARU), vocab_size=300), tmp_path)
    identity = [e for e in data.train if "identity" in e.source]
    assert len(identity) == len(load_character(HARU).identity) and {e.weight for e in identity} == {20.0}
    assert not {e.persona for e in data.train + data.validation} - {""}
    assert data.persona == "" and run_persona(tmp_path, DataConfig(character=str(HARU))) == ""


def test_a_sources_split_does_not_depend_on_what_it_is_mixed_with(tmp_path, chatbot_csv):
    alone = prepare_data(DataConfig(sources=[str(chatbot_csv)], character=None, vocab_size=500), tmp_path / "alone")
    mixed = prepare_data(DataConfig(sources=[str(chatbot_csv), str(AIHUB_SAMPLE)], character=None, vocab_size=500),
                         tmp_path / "mixed")
    chatbot = [e.source for e in mixed.validation if "ChatbotData" in e.source]
    assert chatbot == [e.source for e in alone.validation]
    assert len(mixed.validation) > len(chatbot)  # The sample contributed its own held-out dialogue.


def test_unreadable_source_names_the_file(tmp_path):
    with pytest.raises(DataError, match="missing.jsonl"):
        prepare_data(DataConfig(sources=[str(tmp_path / "missing.jsonl")], character=None), tmp_path / "run")


def test_the_characters_dialogues_are_one_more_source_split_by_dialogue(tmp_path):
    corpus = tmp_path / "talk.jsonl"
    lines = [json.dumps({"turns": [{"speaker": "user", "text": f"안녕 {i}"}, {"speaker": "bot", "text": f"반가워요 {i}"},
                                   {"speaker": "user", "text": f"잘 지내 {i}"}, {"speaker": "bot", "text": f"네 {i}"}]},
                        ensure_ascii=False) for i in range(20)]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    character = tmp_path / "c.yaml"
    (tmp_path / "more.jsonl").write_text(lines[0] + "\n" + lines[1] + "\n", encoding="utf-8")
    character.write_text("name: n\npersona: [a]\nidentity: [{q: 누구야, a: 저는 n이에요}]\n"
                         "dialogues: [talk.jsonl@3, {file: more.jsonl, held_out: false}]\n", encoding="utf-8")
    (tmp_path / "run").mkdir()
    data = prepare_data(DataConfig(sources=[str(AIHUB_SAMPLE)], character=str(character), vocab_size=300),
                        tmp_path / "run")
    train = [e for e in data.train if "talk.jsonl" in e.source]
    validation = [e for e in data.validation if "talk.jsonl" in e.source]
    assert len(train) + len(validation) == 40 and validation and {e.weight for e in train} == {3.0}
    assert not {e.source for e in train} & {e.source for e in validation}
    assert any(" [SEP] " in e.context for e in train)  # The second bot turn sees the first exchange.
    more = [e for e in data.train if "more.jsonl" in e.source]
    assert len(more) == 4 and not [e for e in data.validation if "more.jsonl" in e.source]  # Trains whole.
    assert [(r["weight"], r["held_out"]) for r in data.report["read"]] == [(1.0, True), (3.0, True), (1.0, False)]
