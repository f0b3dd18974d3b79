"""model/training.py and train.py: a real run that learns, TensorBoard output, resume after kill -9."""

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import pytest
import tensorflow as tf

from config import build_config
from conftest import ROOT
from model.callbacks import read_history
from model.run_files import load_run
from model.training import RunConfigMismatch, check_or_save_config, make_optimizer, train
from model.transformer import build_model
from run_directory import RunDirectory
from serving.replies import RunReplies, TrainingReplies
from config import DecodingSettings


def event_tags(log_dir: Path) -> dict[str, list]:
    """tag -> values (floats for scalars, strings for text) from TensorBoard event files."""
    tags: dict[str, list] = {}
    for path in log_dir.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                array = tf.make_ndarray(value.tensor)
                item = array.item() if array.size == 1 else array.tolist()
                tags.setdefault(value.tag, []).append(item.decode() if isinstance(item, bytes) else item)
    return tags


def test_real_training_learns(real_run):
    run_dir, metrics = real_run
    history = read_history(run_dir / "history.csv")
    first, best = history[0]["val_loss"], min(r["val_loss"] for r in history)
    assert best <= 0.75 * first, f"validation loss fell only from {first:.3f} to {best:.3f}"
    vocabulary_size = len((run_dir / "vocab.txt").read_text(encoding="utf-8").splitlines())
    assert best <= 0.5 * math.log(vocabulary_size)  # Far below a uniform guess over the vocabulary (~8.1 nats).
    assert metrics["validation_loss"] == pytest.approx(best, rel=1e-3)  # Best weights kept.
    assert metrics["validation_token_accuracy"] > 0.2
    for key in ("validation_perplexity", "train_tokens_per_second", "train_seconds_per_epoch", "best_epoch"):
        assert metrics[key] > 0
    assert len(metrics["sample_replies"]) == 5


def test_run_directory_contents(real_run):
    run_dir, _ = real_run
    for name in ("config.yaml", "vocab.txt", "data/train.jsonl", "data/validation.jsonl", "data_report.json",
                 "checkpoints/best.weights.h5", "model.keras", "metrics.json", "history.csv"):
        assert (run_dir / name).exists(), name
    assert not (run_dir / "backup").exists()  # BackupAndRestore cleans up after a finished run.
    report = json.loads((run_dir / "data_report.json").read_text())
    assert report["read"]["duplicates_dropped"] == 73
    assert report["train_examples"] + report["validation_examples"] == 11023 - 73


def test_the_retrieval_index_holds_the_training_split_only(real_run):
    from data_pipeline.examples import load_examples
    from model.retrieval import RetrievalIndex

    run_dir, metrics = real_run
    index = RetrievalIndex.load(RunDirectory(run_dir).retrieval_index)
    train = load_examples(run_dir / "data" / "train.jsonl")
    assert set(index.keys) == {e.context for e in train}
    assert index.size == len({(e.context, e.response) for e in train}) == metrics["retrieval_index"]["entries"]
    held_out_only = {e.context for e in load_examples(run_dir / "data" / "validation.jsonl")} - set(index.keys)
    assert len(held_out_only) > 900  # Validation questions are not in it (a few also occur in training).


def test_tensorboard_events(real_run):
    run_dir, metrics = real_run
    train_tags, validation_tags = event_tags(run_dir / "logs" / "train"), event_tags(run_dir / "logs" / "validation")
    for tag in ("epoch_loss", "epoch_token_accuracy", "epoch_perplexity", "epoch_learning_rate"):
        assert len(train_tags[tag]) == metrics["epochs_trained"], tag
    for tag in ("epoch_loss", "epoch_token_accuracy", "epoch_perplexity"):
        assert len(validation_tags[tag]) == metrics["epochs_trained"], tag
    samples = event_tags(run_dir / "logs" / "samples")["sample_replies"]
    assert len(samples) == metrics["epochs_trained"] and "안녕하세요" in samples[-1]


def test_saved_model_reloads(real_run):
    run_dir, _ = real_run
    model = keras.saving.load_model(run_dir / "model.keras")
    assert model.count_params() > 0 and model.sequence_length == 24


def test_finished_run_is_not_retrained(real_run, capsys):
    run_dir, metrics = real_run
    before = (run_dir / "history.csv").read_text()
    config = build_config("tiny", overrides={"data": {"sources": ["unused.csv"]}})
    assert train(config, run_dir) == json.loads((run_dir / "metrics.json").read_text())
    assert "finished run" in capsys.readouterr().out
    assert (run_dir / "history.csv").read_text() == before


def test_weight_decay_shrinks_kernels_and_embeddings_only():
    config = build_config("tiny", overrides={"train": {"weight_decay": 0.5}})
    model = build_model(config.model, vocabulary_size=50, sequence_length=8)
    for v in model.trainable_variables:  # Non-zero everywhere (biases start at 0, which decay keeps).
        v.assign(tf.random.uniform(v.shape, 0.5, 1.5))
    before = {v.path: v.numpy() for v in model.trainable_variables}
    # Zero gradients leave Adam's step at zero, so any change is the decay alone.
    make_optimizer(config).apply_gradients([(tf.zeros_like(v), v) for v in model.trainable_variables])
    factors = {v.path: float((v.numpy() / before[v.path]).mean()) for v in model.trainable_variables}
    kept = {path for path, factor in factors.items() if factor == 1.0}
    assert kept and kept == {p for p in factors if p.rsplit("/", 1)[-1] in ("bias", "gamma", "beta")}
    decayed = {round(factor, 6) for path, factor in factors.items() if path not in kept}
    assert len(decayed) == 1 and 0.0 < decayed.pop() < 1.0  # One factor, 1 - rate * decay, for all.
    assert any(path.endswith("token_embedding/embeddings") for path in set(factors) - kept)
    with pytest.raises(ValueError, match="train.weight_decay"):
        make_optimizer(build_config("tiny", overrides={"train": {"weight_decay": -0.1}}))


def first_pairs(csv_path, pairs: int, folder):
    """A CSV of the header and the first `pairs` rows of `csv_path`, in `folder`."""
    small = folder / "small.csv"
    small.write_text("\n".join(csv_path.read_text(encoding="utf-8").splitlines()[:pairs + 1]) + "\n", encoding="utf-8")
    return small


@pytest.mark.slow
def test_bfloat16_run_cools_down_to_zero_and_saves_a_float32_model(tmp_path, chatbot_csv):
    small = first_pairs(chatbot_csv, 400, tmp_path)
    config = build_config("tiny", overrides={
        "data": {"sources": [str(small)]},
        "train": {"epochs": 2, "mixed_precision": "mixed_bfloat16", "cooldown_fraction": 0.5},
    })
    metrics = train(config, tmp_path / "run", replies_for=TrainingReplies)
    assert keras.mixed_precision.global_policy().name == "float32"  # The run's policy is the model's own.
    assert metrics["precision"] == "mixed_bfloat16"
    run = load_run(tmp_path / "run")  # What exports load.
    assert {layer.compute_dtype for layer in run.model._flatten_layers()} == {"float32"}
    assert len(run.generator().reply(["안녕하세요"])) == 1  # The fused decoder reads the built layers.
    served_then = [row["reply"] for row in metrics["sample_replies"]]  # By the float32 copy of the best weights:
    contexts = [row["context"] for row in metrics["sample_replies"]]  # what the saved model serves.
    assert served_then == list(RunReplies(run).respond(contexts, None, DecodingSettings(seed=0)).reply)
    rates = event_tags(tmp_path / "run" / "logs" / "train")["epoch_learning_rate"]
    assert rates[0] > 0.0 and rates[-1] == 0.0  # Logged after the last step of the plan.


def test_changed_config_is_refused(tmp_path):
    check_or_save_config(build_config("tiny"), tmp_path)
    check_or_save_config(build_config("tiny", overrides={"train": {"epochs": 9}}), tmp_path)  # Allowed.
    with pytest.raises(RunConfigMismatch, match="model.hidden_dim: saved 128, now 32"):
        check_or_save_config(build_config("tiny", overrides={"model": {"hidden_dim": 32}}), tmp_path)


def run_train(args, **kwargs):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs,
    )


@pytest.mark.slow
def test_resume_after_kill_9(tmp_path, chatbot_csv):
    small = first_pairs(chatbot_csv, 2000, tmp_path)
    run_dir = tmp_path / "run"
    args = ["--preset", "tiny", "--data", str(small), "--run-dir", str(run_dir), "--epochs", "4",
            "--set", "train.early_stopping_patience=10", "train.ema_momentum=0.9",  # EMA state resumes too.
            f"export.base_dir={tmp_path / 'saved_models'}"]

    first = run_train(args)
    metadata = run_dir / "backup" / "training_metadata.json"
    deadline = time.time() + 300
    while time.time() < deadline and first.poll() is None:
        with contextlib.suppress(ValueError):  # Read while being written.
            if metadata.exists() and json.loads(metadata.read_text() or "{}").get("epoch", 0) >= 2:
                break
        time.sleep(0.05)
    assert first.poll() is None, "first run ended before it could be killed:\n" + first.stdout.read()
    time.sleep(0.5)  # Into epoch 3.
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert not (run_dir / "metrics.json").exists()
    # The latest backup damaged as a full disk or a kill mid-write leaves it: the resume falls back to the
    # backup before it and says which epoch it trains again.
    latest = run_dir / "backup" / "latest.weights.h5"
    assert (run_dir / "backup" / "latest.weights.h5.bkp").exists()
    latest.write_bytes(latest.read_bytes()[:1000])

    second = run_train(args)
    output, _ = second.communicate(timeout=600)
    assert second.returncode == 0, output
    assert "resuming from the one before it, after epoch 1: epoch 2 is trained again" in output
    assert "Resuming" in output and "Traceback" not in output
    history = (run_dir / "history.csv").read_text().splitlines()
    epochs = [int(row.split(",")[0]) for row in history[1:]]
    assert epochs == [0, 1, 2, 3], history
    assert json.loads((run_dir / "metrics.json").read_text())["epochs_trained"] == 4
    # The finished run was exported once for TF Serving, under its own name (never into a served folder such
    # as saved_models/chatbot unless --name says so); running again exports nothing new.
    assert (tmp_path / "saved_models" / "run" / "1" / "saved_model.pb").exists()
    assert not (tmp_path / "saved_models" / "chatbot").exists()
    assert json.loads((run_dir / "export.json").read_text())["version"] == 1
    again, _ = run_train(args).communicate(timeout=300)
    assert "nothing to train" in again and not (tmp_path / "saved_models" / "run" / "2").exists()


def test_cli_reports_bad_data(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("question,answer\n안녕,반가워\n", encoding="utf-8")
    process = run_train(["--preset", "tiny", "--data", str(bad), "--run-dir", str(tmp_path / "r")])
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 1
    assert f"{bad}: missing column(s)" in output and "found columns ['question', 'answer']" in output


@pytest.mark.slow
def test_a_bad_setting_writes_nothing_and_the_corrected_command_trains(tmp_path, chatbot_csv):
    small = first_pairs(chatbot_csv, 300, tmp_path)
    run_dir = tmp_path / "run"
    args = ["--preset", "tiny", "--data", str(small), "--run-dir", str(run_dir), "--epochs", "1", "--no-export"]
    for bad, code in ((["--set", "train.ema_momentum=1.5"], 2), (["--data", str(tmp_path / "missing.csv")], 1)):
        process = run_train(args + bad)
        output, _ = process.communicate(timeout=300)
        lines = output.strip().splitlines()
        assert (process.returncode, len(lines)) == (code, 1), output
        assert lines[0].startswith("train.py: ") and "Traceback" not in output
        assert not run_dir.exists()
    process = run_train(args + ["--set", "train.ema_momentum=0.5"])
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0 and (run_dir / "metrics.json").exists(), output


def test_the_default_run_trains_the_character_and_the_single_turn_run_is_one_flag_away(tmp_path, chatbot_csv,
                                                                                      monkeypatch):
    from train import parse_args, resolve

    monkeypatch.chdir(tmp_path)  # The default character is found from any working directory.
    config, run_dir = resolve(parse_args(["--data", str(chatbot_csv)]))
    assert Path(config.data.character) == ROOT / "characters" / "haru.yaml"
    assert run_dir == Path("runs/seed-ChatbotData+haru") and config.data.sequence_length == 64
    for flags in (["--no-character"], ["--config", str(ROOT / "configs" / "single_turn.yaml")]):
        config, run_dir = resolve(parse_args(["--data", str(chatbot_csv), *flags]))
        assert config.data.character is None and run_dir == Path("runs/seed-ChatbotData")
    config, _ = resolve(parse_args(["--data", str(chatbot_csv), "--config", str(ROOT / "configs" / "single_turn.yaml")]))
    assert (config.data.sequence_length, config.train.epochs) == (40, 30)  # The seed's own run, as it was.


def test_a_characters_missing_dialogue_file_is_named_before_anything_is_written(tmp_path, chatbot_csv):
    character = tmp_path / "c.yaml"
    character.write_text("name: n\npersona: [a]\nidentity: [{q: x, a: y}]\ndialogues: [gone.jsonl]\n", encoding="utf-8")
    process = run_train(["--preset", "tiny", "--data", str(chatbot_csv), "--character", str(character),
                         "--run-dir", str(tmp_path / "r")])
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 1 and output.strip() == f"train.py: {tmp_path / 'gone.jsonl'}: no such file " \
                                                         f"(the dialogues of {character})"
    assert not (tmp_path / "r").exists()
