"""Does the model use what comes before the question? And does it answer as its character?

`context_use` scores the same held-out responses (teacher-forced loss per reply token,
no smoothing) under five encoder inputs built from each multi-turn example:

    real            the dialogue's persona, the earlier turns, the question (as trained)
    no_history      persona + question (earlier turns removed)
    no_persona      earlier turns + question, with the run's own persona (its
                    character's, or none) instead of the dialogue's
    no_context      the question alone (with the run's own persona)
    other_dialogue  persona and earlier turns of another held-out dialogue + the question

If the model uses context, `real` has the lowest loss. Examples are the held-out ones
that have a persona of their own or earlier turns (ChatbotData's single questions
have neither and are left out).

`character_probe` asks paraphrased who-are-you questions (the hybrid reply, as served: the
run's persona, no history) and counts replies that name the character.
"""

from __future__ import annotations

import dataclasses

from data_pipeline.context import SEP_TEXT
from data_pipeline.examples import Example, earlier_turns, question_of
from evaluation.likelihood import likelihood_scores
from config import DecodingSettings

CONDITIONS = ("real", "no_history", "no_persona", "no_context", "other_dialogue")


def multi_turn_examples(examples: list[Example], run_persona: str) -> list[Example]:
    """Held-out examples with context to remove: earlier turns, or a persona of their own."""
    return [e for e in examples if earlier_turns(e) > 0 or (e.persona and e.persona != run_persona)]


def _history_of(example: Example) -> str:
    """The earlier-turns part of a context ("" when there is none)."""
    return example.context.rsplit(SEP_TEXT, 1)[0] if earlier_turns(example) else ""


def _with(example: Example, persona: str, history: str) -> Example:
    question = question_of(example)
    context = f"{history}{SEP_TEXT}{question}" if history else question
    return dataclasses.replace(example, context=context, persona=persona)


def other_dialogue_partner(examples: list[Example], index: int) -> Example:
    """A fixed example from a different dialogue: the first after index + N/2 (cyclic)."""
    count = len(examples)
    for step in range(count):
        other = examples[(index + count // 2 + step) % count]
        if other.source != examples[index].source:
            return other
    raise ValueError("context_use needs examples from at least two dialogues")


def condition_examples(examples: list[Example], run_persona: str) -> dict[str, list[Example]]:
    """The five variants of every example (see the module docstring)."""
    variants = {name: [] for name in CONDITIONS}
    for index, example in enumerate(examples):
        other = other_dialogue_partner(examples, index)
        history = _history_of(example)
        variants["real"].append(example)
        variants["no_history"].append(_with(example, example.persona, ""))
        variants["no_persona"].append(_with(example, run_persona, history))
        variants["no_context"].append(_with(example, run_persona, ""))
        variants["other_dialogue"].append(_with(example, other.persona, _history_of(other)))
    return variants


def context_use(run, examples: list[Example], batch_size: int = 64) -> dict:
    """Loss per condition on the multi-turn held-out examples, and each one's change against `real`."""
    selected = multi_turn_examples(examples, run.persona)
    if len(selected) < 2:
        raise ValueError("no held-out multi-turn examples (train with a multi-turn source such as XPersona)")
    results = {
        name: likelihood_scores(run.model, run.tokenizer, variant, run.config.data, batch_size)
        for name, variant in condition_examples(selected, run.persona).items()
    }
    real = results["real"]["loss"]
    return {
        "examples": len(selected),
        "dialogues": len({e.source for e in selected}),
        "conditions": {
            name: {**scores, "loss_change_vs_real": round(scores["loss"] / real - 1.0, 4)}
            for name, scores in results.items()
        },
        # The bar's figure: how much lower the loss is with the real context than without any.
        "real_vs_no_context_reduction": round(1.0 - real / results["no_context"]["loss"], 4),
    }


def character_probe(run, questions: list[str], name: str, run_replies=None) -> dict:
    """Replies as `serving_default` gives them (the hybrid, the run's persona, no history); which name `name`.

    `run_replies`: a `serving.replies.RunReplies` of `run` (made here when not given).
    """
    from serving.replies import RunReplies

    run_replies = run_replies or RunReplies(run)
    replies = list(run_replies.respond(questions, None, DecodingSettings()).reply)
    named = [name in reply for reply in replies]
    return {
        "name": name,
        "named": sum(named),
        "asked": len(questions),
        "replies": [{"question": q, "reply": r, "names_character": n} for q, r, n in zip(questions, replies, named)],
    }
