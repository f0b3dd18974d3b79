"""Fit and compare reply selectors on blind SSA ratings, cross-validated over questions.

    python -m evaluation.fit_selector --run-dir runs/seed-ChatbotData \\
        --ssa-labels ../shared/data/ssa_validation_labels.jsonl --ssa-labels evaluation/ssa_labels.jsonl \\
        --questions-of ../shared/data/ssa_validation_labels.jsonl

For every rated question, or conversation (rendered as `evaluation/conversations.py` renders it,
the user's message last: its turns are the history of a `chat` request), the served graph's own
functions form the candidates (`ServingFunctions.candidate_table`: the run's selector settings,
the greedy reply) and their features; every rated reply of the question gets the same features (a
rated reply that is not a candidate counts as generated). Folds are drawn over conversations (the
turns of one conversation, which share its first message, stay in one fold) and single questions.

Selectors compared, each choosing among the served candidates of a question:
- `served`: the run's own selector weights (`selector:` in its config; the defaults were fitted
  on these labels with the default run's model, so for that run this line is not held out);
- `lookup`: the most similar training key's response (similarity alone);
- `likelihood`: the seq2seq model's mean token log-probability of the candidate;
- `mmi`: likelihood minus half the no-context likelihood (Li et al. 2016, lambda 0.5);
- `reward model`: a logistic regression of (sensible + specific) / 2 on the features, fitted on
  the rated replies of the other folds' questions; only held-out questions' choices are scored;
- `best candidate (oracle)`: the best-rated candidate, the ceiling of any selector here.
The reward model's held-out choices are also scored in five groups by how sure it was (the
chosen candidate's score): how well the score tells a poor choice from a good one.
Each line gives SSA with the rated count and share (none under 90% rated, `evaluation/ssa.py`).
The chosen replies no label file rates go to a blind sheet (`--sheet`). Last, the weights fitted
on every question, as the `selector:` section of a config (`config.SelectorConfig`).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections import defaultdict

import numpy as np
import tensorflow as tf

from config import SELECTOR_FEATURES
from errors import UserError, run_command
from evaluation.ssa import SSAScore, key, load_labels, rating_of, read_records, ssa_score, unrated, write_rating_sheet

LABEL_FREE = {
    "lookup": {"similarity": 1.0},
    "likelihood": {"likelihood": 1.0},
    "mmi": {"likelihood": 1.0, "prior": -0.5},
}


@dataclasses.dataclass
class QuestionTable:
    """One question: its candidates' features [C, F] and texts, and its rated replies' features and targets."""

    question: str
    source: str
    candidates: list[str]
    candidate_features: np.ndarray
    rated_features: np.ndarray
    rated_targets: np.ndarray


def rated_questions(paths) -> dict[str, dict]:
    """question -> {"source", "replies": {reply: target}} over the label files (human answers left out)."""
    questions: dict[str, dict] = defaultdict(lambda: {"source": "", "replies": {}})
    for path in paths:
        for where, record in read_records(path):
            rating = rating_of(record, where)
            if record.get("candidates") in (["human"], ["fallback"]):
                continue  # The corpus' own answer, a fixed "I have nothing specific" reply: never candidates.
            entry = questions[key(record["question"], "")[0]]
            entry["source"] = record.get("source", "")
            entry["replies"][key("", record["reply"])[1]] = (rating.sensible + rating.specific) / 2
    return dict(questions)


def feature_tables(run, questions: dict[str, dict], batch_size: int = 32) -> list[QuestionTable]:
    """The served candidates and the rated replies of each question, with the selector's features."""
    from config import DecodingSettings
    from serving.replies import RunReplies, decoded

    from evaluation.conversations import history_of

    functions = RunReplies(run, retrieval=True).functions(DecodingSettings()).functions
    table = tf.function(functions.candidate_table, input_signature=[
        tf.TensorSpec([None, None], tf.string), tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int64),
        tf.TensorSpec([None, None], tf.string)], autograph=False)
    texts = list(questions)
    tables = []
    for start in range(0, len(texts), batch_size):
        batch = texts[start:start + batch_size]
        rated = [list(questions[q]["replies"]) for q in batch]
        width = max(len(r) for r in rated)
        extras = tf.constant([r + [""] * (width - len(r)) for r in rated])
        histories = [history_of(q) for q in batch]
        turns = max(len(h) for h in histories)
        history = tf.constant([h + [""] * (turns - len(h)) for h in histories])
        candidates, features, extra_features = table(
            history, tf.constant(run.config.export.max_reply_length), tf.constant(0, tf.int64), extras)
        for row, question in enumerate(batch):
            count = len(rated[row])
            tables.append(QuestionTable(
                question, questions[question]["source"], decoded(candidates[row]), features[row].numpy(),
                extra_features[row, :count].numpy(), np.array([questions[question]["replies"][r] for r in rated[row]])))
    return tables


def fit_weights(features: np.ndarray, targets: np.ndarray, l2: float = 1.0, steps: int = 2000) -> np.ndarray:
    """Logistic regression of `targets` in [0, 1] on `features` [N, F] -> weights [F] on the raw features.

    Features are standardised for the fit (a constant one gets weight 0); the bias is dropped, as
    it does not change which candidate is best.
    """
    mean, scale = features.mean(0), features.std(0)
    varies = scale > 1e-6
    z = np.where(varies, (features - mean) / np.where(varies, scale, 1.0), 0.0)
    weights, bias = np.zeros(features.shape[1]), 0.0
    for _ in range(steps):
        predicted = 1.0 / (1.0 + np.exp(-(z @ weights + bias)))
        error = predicted - targets
        weights -= 0.2 * (z.T @ error + l2 * weights) / len(targets)
        bias -= 0.2 * error.mean()
    return np.where(varies, weights / np.where(varies, scale, 1.0), 0.0)


def choices(tables: list[QuestionTable], weights: np.ndarray) -> list[str]:
    """Each question's best candidate by `weights` (the served `model.selector.choose`, no history)."""
    return [text for text, _ in best_candidates(tables, weights)]


def best_candidates(tables: list[QuestionTable], weights: np.ndarray) -> list[tuple[str, float]]:
    """Each question's best candidate and its score (how sure the selector is); empty ones passed over."""
    picked = []
    for table in tables:
        scores = table.candidate_features @ weights
        scores = np.where([bool(t.strip()) for t in table.candidates], scores, -np.inf)
        best = int(np.argmax(scores))
        picked.append((table.candidates[best], float(scores[best])))
    return picked


def best_rated(table: QuestionTable, labels: dict) -> str:
    """The candidate with the best rating (the ceiling of any selector over these candidates)."""
    def value(text):
        rating = labels.get(key(table.question, text))
        return -1.0 if rating is None else (rating.sensible + rating.specific) / 2
    return max(table.candidates, key=value)


def folds_of(groups: list[str], folds: int, seed: int = 0) -> np.ndarray:
    """A fold per item, the same for every item of one group."""
    distinct = list(dict.fromkeys(groups))
    fold_of = dict(zip(distinct, np.random.default_rng(seed).permutation(len(distinct)) % folds))
    return np.array([fold_of[g] for g in groups])


def conversation_of(table: QuestionTable) -> str:
    """What keeps a question's fold: its conversation's first message (a single question is its own)."""
    from evaluation.conversations import history_of

    return history_of(table.question)[0]


def cross_validated(tables: list[QuestionTable], folds: int) -> tuple[list[str], list[np.ndarray], np.ndarray]:
    """Held-out choices: each fold's questions chosen by weights fitted on the other folds.

    Returns the choices, each fold's weights, and each choice's score under its fold's weights.
    """
    fold = folds_of([conversation_of(t) for t in tables], folds)
    picked: list[str] = [""] * len(tables)
    scores = np.zeros(len(tables))
    fitted = []
    for k in range(folds):
        train = [t for t, f in zip(tables, fold) if f != k]
        weights = fit_weights(np.concatenate([t.rated_features for t in train]),
                              np.concatenate([t.rated_targets for t in train]))
        fitted.append(weights)
        held_out = [i for i, f in enumerate(fold) if f == k]
        for i, (choice, score) in zip(held_out, best_candidates([tables[i] for i in held_out], weights)):
            picked[i], scores[i] = choice, score
    return picked, fitted, scores


def by_score(texts: list[str], picked: list[str], scores: np.ndarray, labels: dict, parts: int = 5) -> list[str]:
    """SSA of the held-out choices in `parts` equal groups by their score, least sure first.

    Where the least sure choices rate far below the rest, the score knows when the candidates
    are poor: the place for a reply that admits it over one that misleads.
    """
    order = np.argsort(scores, kind="stable")
    lines = []
    for group in np.array_split(order, parts):
        if len(group):
            score = ssa_score([texts[i] for i in group], [picked[i] for i in group], labels)
            lines.append(describe(f"  score {scores[group[0]]:.2f} to {scores[group[-1]]:.2f}", score))
    return lines


def as_weights(named: dict) -> np.ndarray:
    return np.array([named.get(name, 0.0) for name in SELECTOR_FEATURES])


def describe(name: str, score: SSAScore) -> str:
    ssa = f"{score.ssa:.1%}" if score.ssa is not None else "n/a (under 90% rated)"
    return (f"{name:<22} SSA {ssa:>22}  sensible {score.sensible:.1%}  specific {score.specific:.1%}  "
            f"rated {score.rated}/{score.replies} ({score.coverage:.0%})")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--ssa-labels", action="append", required=True, metavar="FILE",
                        help="blind SSA ratings (repeatable); the questions to fit and score on")
    parser.add_argument("--questions-of", metavar="FILE",
                        help="fit and score on the questions this label file rates only (default: every rated question)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--sheet", help="write the chosen replies no label file rates here (blind, shuffled)")
    parser.add_argument("--candidates-sheet", help="write every served candidate no label file rates here (blind, "
                                                   "shuffled): rated, they make the oracle and the fit complete")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.folds < 2:
        raise UserError(f"--folds {args.folds}: at least 2 folds are needed to hold questions out")
    from model.run_files import load_run

    run = load_run(args.run_dir)
    labels = load_labels(args.ssa_labels)
    questions = rated_questions(args.ssa_labels)
    if args.questions_of:
        kept = {q for q, _ in load_labels([args.questions_of])}
        questions = {q: entry for q, entry in questions.items() if q in kept}
    if not questions:
        raise UserError("no rated questions to fit on")
    tables = feature_tables(run, questions)
    texts = [t.question for t in tables]
    results = {"served (run's weights)": choices(tables, np.array(run.config.selector.weights()))}
    results.update({name: choices(tables, as_weights(w)) for name, w in LABEL_FREE.items()})
    results["reward model (CV)"], fitted, scores = cross_validated(tables, args.folds)
    results["best candidate (oracle)"] = [best_rated(t, labels) for t in tables]
    print(f"{len(tables)} rated questions; candidates: {run.config.selector.retrieved} retrieved, the greedy "
          f"reply, {run.config.selector.samples} samples; {args.folds} folds over questions")
    pending = []
    for name, picked in results.items():
        print(describe(name, ssa_score(texts, picked, labels)))
        pending += unrated(texts, picked, [t.source for t in tables], labels)
    print("reward model's held-out choices by their score (least sure first):")
    print("\n".join(by_score(texts, results["reward model (CV)"], scores, labels)))
    spread = np.std(fitted, axis=0)
    print("fold weights' spread: " + ", ".join(f"{n} {s:.2f}" for n, s in zip(SELECTOR_FEATURES, spread)))
    if args.sheet:
        unique = list({key(r["question"], r["reply"]): r for r in pending}.values())
        print(f"{write_rating_sheet(unique, args.sheet)} chosen replies without a rating: {args.sheet}")
    if args.candidates_sheet:
        every = [(t.question, c, t.source) for t in tables for c in t.candidates if c.strip()]
        missing = unrated(*map(list, zip(*every)), labels) if every else []
        print(f"{write_rating_sheet(missing, args.candidates_sheet)} candidates without a rating: {args.candidates_sheet}")
    weights = fit_weights(np.concatenate([t.rated_features for t in tables]),
                          np.concatenate([t.rated_targets for t in tables]))
    print("selector:  # fitted on all rated questions")
    for name, weight in zip(SELECTOR_FEATURES, weights):
        print(f"  {name}: {weight:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(run_command("fit_selector", main))
