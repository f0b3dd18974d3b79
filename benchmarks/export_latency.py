"""Latency through the exported SavedModel, loaded as TF Serving loads it (XLA disabled, TF1 loader).

    python benchmarks/export_latency.py --run-dir runs/seed-ChatbotData [--questions 100]

Exports the run three times into a temporary directory: with its retrieval index (the
hybrid `serving_default`, as `export.py` writes it), without (greedy generation alone,
`serving_default` before retrieval existed), and with the other hybrid design measured
(`retrieval.rerank_top_k: 8`, model reranking). Then, in this process after
`DisableXlaCompilation()`, it times `serving_default` on one validation question at
a time, the exports in alternating rounds, for each session thread setting (TF
Serving's `--tensorflow_inter_op_parallelism`), and the replies per second of
batches of 32 questions. `--reply-tokens` sets the export's reply length.
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
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from data_pipeline.examples import load_examples  # noqa: E402
from model.retrieval import run_index  # noqa: E402
from model.run_files import load_run  # noqa: E402
from run_directory import RunDirectory  # noqa: E402
from serving.export import write_saved_model  # noqa: E402
from serving.loaded_model import LoadedVersion, disable_xla_compilation, session_config  # noqa: E402


def latencies_ms(version: LoadedVersion, questions: list[str]) -> np.ndarray:
    times = []
    for question in questions:
        start = time.perf_counter()
        version.run("serving_default", {"text": np.array([question], object)})
        times.append((time.perf_counter() - start) * 1000)
    return np.array(times)


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
    args = parser.parse_args(argv)

    run = load_run(args.run_dir)
    config = dataclasses.replace(
        run.config, export=dataclasses.replace(run.config.export, max_reply_length=args.reply_tokens)
    )
    questions = [e.context for e in load_examples(RunDirectory(args.run_dir).validation_split)][: args.questions]
    disable_xla_compilation()
    print(f"run {args.run_dir}; {len(questions)} validation questions, batch 1, XLA disabled, TF1 loader + Session; "
          f"{args.rounds} alternating rounds")
    print(f"oneDNN {'off' if os.environ.get('TF_ENABLE_ONEDNN_OPTS') == '0' else 'on (default)'}")
    with tempfile.TemporaryDirectory() as tmp:
        index = run_index(run.run_dir, run.config.retrieval)
        rerank = dataclasses.replace(config, retrieval=dataclasses.replace(config.retrieval, rerank_top_k=8))
        exports = {"greedy (no retrieval index)": (None, config), "hybrid (as exported)": (index, config),
                   "hybrid, model reranking of 8": (index, rerank)}
        for label, (index, variant) in exports.items():
            write_saved_model(run.model, run.tokenizer, variant, Path(tmp) / label, index=index)
        for inter_op in (0, 1):
            versions = {label: LoadedVersion(Path(tmp) / label, session_config(inter_op_threads=inter_op))
                        for label in exports}
            for version in versions.values():
                latencies_ms(version, questions[:5])  # Warm up.
            times = {label: [] for label in exports}
            rates = {label: [] for label in exports}
            for _ in range(args.rounds):
                for label, version in versions.items():
                    times[label].extend(latencies_ms(version, questions))
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
