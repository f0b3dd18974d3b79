"""Latency through the exported SavedModel, loaded as TF Serving loads it (XLA disabled, TF1 loader).

    python -m benchmarks.export_latency --run-dir runs/seed-ChatbotData [--questions 100]

Exports the run into a temporary directory: without its retrieval index (greedy
generation alone), with it as `export.py` writes it (the selector over the retrieved
responses, the greedy reply and the run's `selector.samples`), with the threshold hybrid
(`selector.enabled: false`, the served default before the selector), and with the selector
and `--samples` sampled candidates (sample-and-rank). Then, in this process after
`DisableXlaCompilation()`, it times `serving_default` on one validation question at
a time, the exports in alternating rounds, for each session thread setting (TF
Serving's `--tensorflow_inter_op_parallelism`), and the replies per second of
batches of 32 questions. `--reply-tokens` sets the export's reply length.

With `--turns N` (a run with held-out dialogues, `evaluation/held_out_dialogues.py`) it also
times the `chat` signature on one conversation turn at a time, N bot turns of the held-out
dialogues with their real history and the default controls: the request a chat client sends.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from benchmarks.harness import cpu_line, latencies_ms  # noqa: E402
from data_pipeline.examples import load_examples  # noqa: E402
from model.retrieval import run_index  # noqa: E402
from model.run_files import load_run  # noqa: E402
from run_directory import RunDirectory  # noqa: E402
from serving.client import chat_arrays  # noqa: E402
from serving.export import write_saved_model  # noqa: E402
from serving.loaded_model import LoadedVersion, disable_xla_compilation, session_config  # noqa: E402


def served_latencies_ms(version: LoadedVersion, questions: list[str], warmup: int = 0) -> np.ndarray:
    """`serving_default` on one question at a time."""
    return latencies_ms(lambda question: version.run("serving_default", {"text": np.array([question], object)}),
                        questions, warmup)


def chat_latencies_ms(version: LoadedVersion, histories: list[list[str]], warmup: int = 0) -> np.ndarray:
    """`chat` on one conversation at a time, with the default controls (as a chat client sends them)."""
    return latencies_ms(lambda history: version.run("chat", chat_arrays([history])), histories, warmup)


def held_out_histories(run_dir: str, count: int) -> list[list[str]]:
    """The histories of `count` bot turns of the run's held-out multi-turn dialogues (spread over them)."""
    from evaluation.held_out_dialogues import held_out_dialogues, reference_turns

    dialogues = held_out_dialogues(load_examples(RunDirectory(run_dir).validation_split), "")
    turns = reference_turns([d for d in dialogues if len(d.turns) > 2])  # Conversations, not single questions.
    step = max(1, len(turns) // max(count, 1))
    return [list(t.history) for t in turns[::step][:count]]


def replies_per_second(version: LoadedVersion, questions: list[str], batch: int = 32) -> float:
    batches = [questions[i:i + batch] for i in range(0, len(questions) - batch + 1, batch)]
    start = time.perf_counter()
    for rows in batches:
        version.run("serving_default", {"text": np.array(rows, object)})
    return len(batches) * batch / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--reply-tokens", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=4, help="sampled candidates of the sample-and-rank export")
    parser.add_argument("--turns", type=int, default=0, help="also time `chat` on this many held-out conversation turns")
    args = parser.parse_args(argv)

    run = load_run(args.run_dir)
    config = dataclasses.replace(
        run.config, export=dataclasses.replace(run.config.export, max_reply_length=args.reply_tokens)
    )
    questions = [e.context for e in load_examples(RunDirectory(args.run_dir).validation_split)][: args.questions]
    histories = held_out_histories(args.run_dir, args.turns) if args.turns else []
    disable_xla_compilation()
    print(f"run {args.run_dir}; {len(questions)} validation questions, batch 1, XLA disabled, TF1 loader + Session; "
          f"{args.rounds} alternating rounds")
    print(cpu_line())
    print(f"oneDNN {'off' if os.environ.get('TF_ENABLE_ONEDNN_OPTS') == '0' else 'on (default)'}")
    with tempfile.TemporaryDirectory() as tmp:
        index = run_index(run.run_dir, run.config.retrieval)
        threshold = dataclasses.replace(config, selector=dataclasses.replace(config.selector, enabled=False))
        sampled = dataclasses.replace(config, selector=dataclasses.replace(config.selector, samples=args.samples))
        exports = {"greedy (no retrieval index)": (None, config), "selector (as exported)": (index, config),
                   "threshold hybrid": (index, threshold), f"selector + {args.samples} samples": (index, sampled)}
        for label, (index, variant) in exports.items():
            write_saved_model(run.model, run.tokenizer, variant, Path(tmp) / label, index=index,
                              persona=run.persona)
        for inter_op in (0, 1):
            versions = {label: LoadedVersion(Path(tmp) / label, session_config(inter_op_threads=inter_op))
                        for label in exports}
            for version in versions.values():
                served_latencies_ms(version, questions[:5])  # Warm up.
            times = {label: [] for label in exports}
            rates = {label: [] for label in exports}
            for _ in range(args.rounds):
                for label, version in versions.items():
                    times[label].extend(served_latencies_ms(version, questions))
                    rates[label].append(replies_per_second(version, questions))
            header = f"{'serving_default':<28} {'inter-op threads':>16} {'p50 ms':>8} {'p95 ms':>8} {'replies/s at 32':>16}"
            print(header)
            print("-" * len(header))
            for label, version in versions.items():
                version.close()
                shown = inter_op or "TF default"
                print(f"{label:<28} {shown:>16} {np.percentile(times[label], 50):8.1f} "
                      f"{np.percentile(times[label], 95):8.1f} {np.median(rates[label]):16.1f}")
            greedy, *hybrids = (np.percentile(times[label], 50) for label in exports)
            for label, p50 in zip(list(exports)[1:], hybrids):
                print(f"{'ratio to greedy':<28} {'':>16} {p50 / greedy:8.2f}x  ({label})")
            if histories:
                print_chat_latencies(exports, tmp, histories, inter_op, args.rounds)
    return 0


def print_chat_latencies(exports: dict, folder: str, histories: list[list[str]], inter_op: int, rounds: int) -> None:
    """`chat` p50/p95 per export on one held-out turn at a time (alternating rounds), and the ratio to greedy."""
    versions = {label: LoadedVersion(Path(folder) / label, session_config(inter_op_threads=inter_op)) for label in exports}
    for version in versions.values():
        chat_latencies_ms(version, histories[:3])  # Warm up.
    times = {label: [] for label in exports}
    for _ in range(rounds):
        for label, version in versions.items():
            times[label].extend(chat_latencies_ms(version, histories))
    header = f"{'chat, one turn':<28} {'inter-op threads':>16} {'p50 ms':>8} {'p95 ms':>8}"
    print(header)
    print("-" * len(header))
    for label, version in versions.items():
        version.close()
        print(f"{label:<28} {inter_op or 'TF default':>16} {np.percentile(times[label], 50):8.1f} "
              f"{np.percentile(times[label], 95):8.1f}")
    greedy = np.percentile(times[next(iter(exports))], 50)
    for label in list(exports)[1:]:
        print(f"{'ratio to greedy':<28} {'':>16} {np.percentile(times[label], 50) / greedy:8.2f}x  ({label})")


if __name__ == "__main__":
    sys.exit(main())
