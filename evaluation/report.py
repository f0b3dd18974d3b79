"""An evaluation's files: eval.json, report.md, the replies, PNG plots, and TensorBoard scalars.

    <out>/eval.json                 every figure
    <out>/report.md                 tables: likelihood, one row per strategy, probe answers
    <out>/references.txt            one reference per line, and <out>/replies/<strategy>.txt,
                                    so `sacrebleu references.txt -i replies/greedy.txt -m bleu chrf`
                                    recomputes the scores independently
    <out>/training_curves.png       loss and token accuracy per epoch (the run's history.csv)
    <out>/ssa_sheet.jsonl           (with --ssa-labels) the replies no label file rates, blind and shuffled,
                                    to rate by shared/data/SSA_GUIDELINE.md and merge back
    <out>/reply_lengths.png         reply length histogram per strategy
    <out>/strategies.png            BLEU, chrF and distinct-2 per strategy
    <run>/logs/eval/                the same scores as TensorBoard scalars and the table as text
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # Files only; no display needed.
import matplotlib.pyplot as plt  # noqa: E402
import tensorflow as tf  # noqa: E402

from evaluation.evaluate_run import Evaluation, reply_length_arrays  # noqa: E402
from evaluation.ssa import MIN_COVERAGE, write_rating_sheet  # noqa: E402
from model.callbacks import read_history  # noqa: E402
from run_directory import RunDirectory  # noqa: E402

FORMATS = {"bleu": ".2f", "chrf": ".2f", "mean_reply_tokens": ".2f", "seconds": ".1f"}
COLUMNS = ("bleu", "chrf", "distinct_1", "distinct_2", "mean_reply_tokens", "ended_share", "exact_match_share",
           "retrieved_share", "top_reply_share", "seconds")


def write_report(evaluation: Evaluation, out_dir: str | Path) -> Path:
    out = Path(out_dir)
    (out / "replies").mkdir(parents=True, exist_ok=True)
    (out / "references.txt").write_text(_lines(e.response for e in evaluation.examples), encoding="utf-8")
    for name, result in evaluation.strategies.items():
        (out / "replies" / f"{name}.txt").write_text(_lines(result.replies), encoding="utf-8")
    if evaluation.ssa:
        write_rating_sheet(evaluation.unrated.values(), out / "ssa_sheet.jsonl")
    (out / "eval.json").write_text(json.dumps(_summary(evaluation), ensure_ascii=False, indent=2), encoding="utf-8")
    (out / "report.md").write_text(markdown(evaluation), encoding="utf-8")
    plot_training_curves(RunDirectory(evaluation.run_dir).history, out / "training_curves.png")
    plot_reply_lengths(evaluation, out / "reply_lengths.png")
    plot_strategies(evaluation, out / "strategies.png")
    log_to_tensorboard(evaluation, RunDirectory(evaluation.run_dir).logs / "eval")
    return out


def _lines(texts) -> str:
    return "".join(t.replace("\n", " ") + "\n" for t in texts)


def _summary(evaluation: Evaluation) -> dict:
    return {
        "run_dir": str(evaluation.run_dir),
        "data": evaluation.source,
        "examples": len(evaluation.examples),
        "likelihood": evaluation.likelihood,
        "strategies": {
            name: {"settings": _settings(evaluation.strategies[name].settings), **scores}
            for name, scores in evaluation.scores.items()
        },
        "ssa": {name: score.to_dict() for name, score in evaluation.ssa.items()},
        "unrated_pairs": len(evaluation.unrated),
        "probes": evaluation.probes,
        "seconds": round(evaluation.seconds, 1),
    }


def _settings(settings) -> dict | str:
    return asdict(settings) if settings is not None else "the most similar training key's response"


def strategy_table(evaluation: Evaluation) -> str:
    header = ("| strategy | BLEU | chrF | distinct-1 | distinct-2 | mean tokens | ends with [END] | exact match "
              "| retrieved | most common reply | seconds |")
    rows = [header, "|" + "---|" * (len(COLUMNS) + 1)]
    for name, scores in evaluation.scores.items():
        cells = [f"{scores[c]:{FORMATS.get(c, '.3f')}}" for c in COLUMNS]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def ssa_table(evaluation: Evaluation) -> str:
    """SSA per strategy with the rated count and share (no SSA below `MIN_COVERAGE` rated)."""
    rows = ["| strategy | SSA | sensible | specific | rated replies | rated share |", "|---|---|---|---|---|---|"]
    for name, score in evaluation.ssa.items():
        ssa = f"{score.ssa:.1%}" if score.ssa is not None else f"(under {MIN_COVERAGE:.0%} rated)"
        rows.append(f"| {name} | {ssa} | {score.sensible:.1%} | {score.specific:.1%} | {score.rated} of {score.replies} "
                    f"| {score.coverage:.1%} |")
    return "\n".join(rows)


def markdown(evaluation: Evaluation) -> str:
    lk = evaluation.likelihood
    parts = [
        f"# Evaluation of `{evaluation.run_dir}`",
        f"{len(evaluation.examples)} held-out examples from {evaluation.source}; {evaluation.seconds:.0f} s in all.",
        "## Likelihood (teacher-forced, non-padding tokens)",
        f"| loss | perplexity | token accuracy |\n|---|---|---|\n| {lk['loss']:.4f} | {lk['perplexity']:.2f} | {lk['token_accuracy']:.4f} |",
        "## Replies",
        "BLEU and chrF: sacrebleu corpus scores (defaults). distinct-n over space-separated words.",
        strategy_table(evaluation),
        *(["## SSA (blind ratings, shared/data/SSA_GUIDELINE.md)", ssa_table(evaluation),
            f"{len(evaluation.unrated)} distinct replies had no rating: `ssa_sheet.jsonl`."] if evaluation.ssa else []),
        "![training curves](training_curves.png)\n\n![reply lengths](reply_lengths.png)\n\n![strategies](strategies.png)",
    ]
    if evaluation.probes:
        names = list(evaluation.scores)
        table = ["| question | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
        table += [f"| {q} | " + " | ".join(a.replace("|", "\\|") for a in answers) + " |"
                  for q, answers in evaluation.probes.items()]
        parts += ["## Probe questions", "\n".join(table)]
    return "\n\n".join(parts) + "\n"


def plot_training_curves(history_path: Path, path: Path) -> None:
    rows = read_history(history_path) if history_path.exists() else []
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = [r["epoch"] + 1 for r in rows]
    for key, axis in (("loss", left), ("token_accuracy", right)):
        for prefix, style in (("", "-"), ("val_", "--")):
            if rows and prefix + key in rows[0]:
                axis.plot(epochs, [r[prefix + key] for r in rows], style, label=(prefix or "train_") + key)
        axis.set_xlabel("epoch")
        axis.set_title(key)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_reply_lengths(evaluation: Evaluation, path: Path) -> None:
    figure, axis = plt.subplots(figsize=(6, 4))
    for name, lengths in reply_length_arrays(evaluation).items():
        axis.hist(lengths, bins=range(0, int(lengths.max(initial=1)) + 2), histtype="step", label=name)
    axis.set_xlabel("reply length (WordPiece tokens)")
    axis.set_ylabel("replies")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_strategies(evaluation: Evaluation, path: Path) -> None:
    names = list(evaluation.scores)
    if not names:  # --strategies none: likelihood only.
        return
    metrics = {"BLEU": "bleu", "chrF": "chrf", "distinct-2 x 100": "distinct_2"}
    figure, axis = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(metrics)
    for k, (label, key) in enumerate(metrics.items()):
        scale = 100 if key == "distinct_2" else 1
        axis.bar([i + k * width for i in range(len(names))], [evaluation.scores[n][key] * scale for n in names],
                 width, label=label)
    axis.set_xticks([i + width for i in range(len(names))], names)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def log_to_tensorboard(evaluation: Evaluation, log_dir: Path) -> None:
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        for name, value in evaluation.likelihood.items():
            tf.summary.scalar(f"eval/{name}", value, step=0)
        for strategy, scores in evaluation.scores.items():
            for key in COLUMNS:
                tf.summary.scalar(f"eval_{strategy}/{key}", scores[key], step=0)
        tf.summary.text("eval/report", strategy_table(evaluation), step=0)
    writer.flush()


def context_use_table(result: dict) -> str:
    """Markdown table of `evaluation.context_use.context_use`'s result."""
    rows = [
        f"{result['examples']} held-out multi-turn examples from {result['dialogues']} dialogues",
        "",
        "| encoder input | loss | perplexity | token accuracy | loss vs real |",
        "|---|---|---|---|---|",
    ]
    for name, scores in result["conditions"].items():
        rows.append(f"| {name} | {scores['loss']:.4f} | {scores['perplexity']:.2f} | "
                    f"{scores['token_accuracy']:.4f} | {scores['loss_change_vs_real']:+.1%} |")
    rows.append(f"\nloss with the real context is {result['real_vs_no_context_reduction']:.1%} lower than with none")
    return "\n".join(rows)
