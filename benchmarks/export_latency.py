"""Latency through the exported SavedModel, loaded as TF Serving loads it (XLA disabled, TF1 loader).

    python benchmarks/export_latency.py --run-dir runs/seed-ChatbotData [--questions 100]

Exports the run twice into a temporary directory: as `export.py` does, and a
variant whose replies never stop at [END] (every reply exactly `--reply-tokens`
long, for a like-for-like figure). Then, in this process after
`DisableXlaCompilation()`, it times `serving_default` on one validation question at
a time and prints p50 / p95 for each session thread setting
(TF Serving's `--tensorflow_inter_op_parallelism`).
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
from model.run_files import load_run  # noqa: E402
from serving.export import write_saved_model  # noqa: E402
from serving.loaded_model import LoadedVersion, disable_xla_compilation, session_config  # noqa: E402


def latencies_ms(version: LoadedVersion, questions: list[str], warmup: int = 5) -> np.ndarray:
    for question in questions[:warmup]:
        version.run("serving_default", {"text": np.array([question], object)})
    times = []
    for question in questions:
        start = time.perf_counter()
        version.run("serving_default", {"text": np.array([question], object)})
        times.append((time.perf_counter() - start) * 1000)
    return np.array(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--reply-tokens", type=int, default=24)
    args = parser.parse_args(argv)

    run = load_run(args.run_dir)
    config = dataclasses.replace(
        run.config, export=dataclasses.replace(run.config.export, max_reply_length=args.reply_tokens)
    )
    questions = [e.context for e in load_examples(Path(args.run_dir) / "data" / "validation.jsonl")][: args.questions]
    disable_xla_compilation()
    print(f"run {args.run_dir}; {len(questions)} validation questions, batch 1, XLA disabled, TF1 loader + Session")
    print(f"oneDNN {'off' if os.environ.get('TF_ENABLE_ONEDNN_OPTS') == '0' else 'on (default)'}")
    header = f"{'export':<28} {'inter-op threads':>16} {'p50 ms':>8} {'p95 ms':>8}"
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        exports = {
            f"{args.reply_tokens} tokens, no early [END]": (Path(tmp) / "fixed", False),
            "as exported (stops at [END])": (Path(tmp) / "served", True),
        }
        for label, (path, stop_at_end) in exports.items():
            write_saved_model(run.model, run.tokenizer, config, path, stop_at_end=stop_at_end)
            for inter_op in (0, 1):
                version = LoadedVersion(path, session_config(inter_op_threads=inter_op))
                times = latencies_ms(version, questions)
                version.close()
                shown = inter_op or "TF default"
                print(f"{label:<28} {shown:>16} {np.percentile(times, 50):8.1f} {np.percentile(times, 95):8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
