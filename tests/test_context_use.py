"""evaluation/context_use.py: the context-removal conditions, and a multi-turn run that uses its context."""

from data_pipeline.examples import Example, load_examples
from evaluation.context_use import (
    CONDITIONS, character_probe, condition_examples, context_use, multi_turn_examples, other_dialogue_partner,
)
from model.run_files import load_run


def test_conditions_remove_history_persona_or_both_and_swap_dialogues():
    a = Example("[USER] a1 [SEP] [BOT] a2 [SEP] a3", "ra", "f:0", persona="pa")
    b = Example("b1", "rb", "f:1", persona="pb")
    variants = condition_examples([a, b], run_persona="run")
    assert list(variants) == list(CONDITIONS)
    assert variants["real"][0] == a
    assert (variants["no_history"][0].persona, variants["no_history"][0].context) == ("pa", "a3")
    assert (variants["no_persona"][0].persona, variants["no_persona"][0].context) == ("run", a.context)
    assert (variants["no_context"][0].persona, variants["no_context"][0].context) == ("run", "a3")
    assert (variants["other_dialogue"][0].persona, variants["other_dialogue"][0].context) == ("pb", "a3")
    assert (variants["other_dialogue"][1].persona, variants["other_dialogue"][1].context) == (
        "pa", "[USER] a1 [SEP] [BOT] a2 [SEP] b1")
    assert all(v[i].response == e.response for v in variants.values() for i, e in enumerate([a, b]))


def test_single_questions_with_the_run_persona_are_not_multi_turn():
    examples = [Example("q", "r", "f:0", persona="run"), Example("q", "r", "f:1", persona="own"),
                Example("[USER] x [SEP] q", "r", "f:2", persona="run")]
    assert [e.source for e in multi_turn_examples(examples, "run")] == ["f:1", "f:2"]
    assert other_dialogue_partner(examples, 0).source != "f:0"


def test_a_multi_turn_run_uses_its_context_and_knows_its_name(persona_run):
    run = load_run(persona_run[0])
    result = context_use(run, load_examples(run.run_dir / "data" / "validation.jsonl"))
    losses = {name: scores["loss"] for name, scores in result["conditions"].items()}
    assert result["examples"] > 100
    assert losses["real"] < losses["no_context"] and result["real_vs_no_context_reduction"] > 0.02, losses
    probe = character_probe(run, ["너는 누구니?", "이름이 뭐야?"], "하루")  # Questions it was trained on.
    assert probe["named"] == 2, probe["replies"]
