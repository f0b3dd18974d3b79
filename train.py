"""Train the Korean chatbot: `python train.py [--data FILE] [--preset seed|tiny] [...]`.

With no --data, ChatbotData comes through its TFDS builder (downloaded on a
connected machine; offline, pass --tfds-manual-dir DIR holding ChatbotData.csv).
Re-running the same command resumes an interrupted run. At the end the model is
exported once for TF Serving to saved_models/<run name>/<version>/ (`--name` picks another
folder, e.g. one a server is watching). See README.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="seed", help="seed (default, the design card's model) or tiny")
    parser.add_argument("--config", help="YAML file with overrides (same nesting as config.yaml)")
    parser.add_argument(
        "--data", action="append", metavar="FILE[@WEIGHT]",
        help="dialogue file: .csv (Q,A[,label]), .json (XPersona or AIHub), .jsonl; repeat to mix sources, "
             "@WEIGHT repeats a source's training examples (default 1); default: the TFDS builder",
    )
    parser.add_argument("--character", help="character YAML (name, persona, identity Q/A, dialogues in its voice); "
                                            "default: characters/haru.yaml, the example character 하루")
    parser.add_argument("--no-character", action="store_true",
                        help="train without a character (the seed's single-turn run: --config configs/single_turn.yaml)")
    parser.add_argument("--tfds-manual-dir", help="folder holding ChatbotData.csv for the TFDS builder offline")
    parser.add_argument("--tfds-data-dir", help="TFDS cache folder (default: TFDS's own)")
    parser.add_argument("--epochs", type=int, help="maximum epochs (early stopping may end sooner)")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--run-dir", help="run directory (default: runs/<preset>-<data name>)")
    parser.add_argument("--no-export", action="store_true", help="skip the SavedModel export at the end")
    parser.add_argument("--name", help="export to saved_models/NAME (e.g. chatbot, a served folder: its server "
                                       "picks the new version up); default: saved_models/<run directory name>")
    parser.add_argument(
        "--set", nargs="*", action="extend", default=[], metavar="SECTION.KEY=VALUE",
        help="any other setting, e.g. --set model.num_layers=4 train.label_smoothing=0",
    )
    return parser.parse_args(argv)


def resolve(args: argparse.Namespace):
    from config import build_config, dotted_to_nested
    from data_pipeline.character import character_path, load_character
    from data_pipeline.sources import DataError, parse_source

    overrides = dotted_to_nested(args.set)
    flags = {
        ("data", "sources"): args.data,
        ("data", "character"): args.character,
        ("data", "tfds_manual_dir"): args.tfds_manual_dir,
        ("data", "tfds_data_dir"): args.tfds_data_dir,
        ("train", "epochs"): args.epochs,
        ("train", "batch_size"): args.batch_size,
        ("export", "name"): args.name,
    }
    for (section, key), value in flags.items():
        if value is not None:
            overrides.setdefault(section, {})[key] = value
    if args.no_character:
        overrides.setdefault("data", {})["character"] = None
    config = build_config(args.preset, args.config, overrides)
    if config.data.character:
        config.data.character = str(character_path(config.data.character))
    sources = [parse_source(entry)[0] for entry in config.data.sources]
    for key, path in [*(("data.sources", p) for p in sources), ("data.character", config.data.character)]:
        if path and not Path(path).is_file():  # Found before any file is written.
            raise DataError(f"{path}: no such file ({key})")
    if config.data.character:
        for entry in load_character(config.data.character).dialogues:
            if not entry.path.is_file():
                raise DataError(f"{entry.path}: no such file (the dialogues of {config.data.character})")
    names = [Path(path).stem for path in sources] or ["chatbot_data"]
    data_name = "+".join(names) + (f"+{Path(config.data.character).stem}" if config.data.character else "")
    run_dir = Path(args.run_dir or Path("runs") / f"{config.preset}-{data_name}")
    return config, run_dir


def main(argv=None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    args = parse_args(argv)
    config, run_dir = resolve(args)  # Every setting checked here, before anything is written.

    from model.distribution import is_chief
    from model.training import train
    from serving.replies import TrainingReplies

    # Sample replies through the served path, by the chief alone (other workers keep private copies).
    train(config, run_dir, replies_for=TrainingReplies if is_chief() else None)
    print(f"run directory: {run_dir}  (tensorboard --logdir {run_dir / 'logs'})")
    if not args.no_export and is_chief():  # One export per run, by the chief.
        from serving.export import export_finished_run

        path = export_finished_run(run_dir)
        print(f"SavedModel for TF Serving: {path}  (python serve.py --model_base_path {path.parent})")
    return 0


if __name__ == "__main__":
    from errors import run_command

    sys.exit(run_command("train.py", main))
