"""Shared fixtures: the shared Korean data, a tokenizer, the real-data runs and their exports, a server.

The suite runs in two pytest-xdist workers (`-n 2` in pyproject.toml). The expensive session
fixtures (a trained run, an export) are built once per test session even so: the first worker to
need one builds it under a file lock, the other waits and reuses it (`built_once`).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]  # On sys.path through pyproject.toml (pytest pythonpath).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED_DATA = Path(os.environ.get("CHATBOT_SHARED_DATA", ROOT.parent / "shared" / "data"))
CHATBOT_CSV = SHARED_DATA / "ChatbotData.csv"
XPERSONA = SHARED_DATA / "xpersona_ko_dialogues.json"
AIHUB_SAMPLE = ROOT / "tests" / "data" / "aihub_emotional_sample.json"  # Written for the tests.
HARU = ROOT / "characters" / "haru.yaml"


@pytest.fixture(scope="session")
def chatbot_csv() -> Path:
    assert CHATBOT_CSV.exists(), f"shared data not found at {CHATBOT_CSV}; set CHATBOT_SHARED_DATA"
    return CHATBOT_CSV


@pytest.fixture(scope="session")
def chatbot_dialogues(chatbot_csv):
    from data_pipeline.sources import read_qa_csv

    dialogues, _ = read_qa_csv(chatbot_csv)
    return dialogues


@pytest.fixture(scope="session")
def vocabulary(chatbot_dialogues):
    from data_pipeline.vocab import learn_vocabulary

    texts = [turn for d in chatbot_dialogues[:3000] for turn in d.turns]
    return learn_vocabulary(texts, vocab_size=8000)


@pytest.fixture(scope="session")
def tokenizer(vocabulary):
    from data_pipeline.vocab import make_tokenizer

    return make_tokenizer(vocabulary)


# Fixtures that train on the real data, start a server or a browser: a test using one is in the slow
# lane (`python -m pytest -m slow`); the fast lane is `python -m pytest -m "not slow"`.
SLOW_FIXTURES = {"real_run", "persona_run", "exported", "persona_export", "server", "served", "browser"}


def pytest_collection_modifyitems(items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def built_once(tmp_path_factory, name: str, build) -> Path:
    """`build(directory)` once per test session, also across xdist workers; returns the directory.

    Under xdist the directory lies in the session's temporary root, which all its workers share
    (each has its own `getbasetemp()` below it); a marker file says that a build finished.
    """
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        directory = tmp_path_factory.mktemp(name)
        build(directory)
        return directory
    root = tmp_path_factory.getbasetemp().parent
    directory, done = root / name, root / f"{name}.built"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # Released when the file closes, also if the build fails.
        if not done.exists():
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir()
            build(directory)
            done.touch()
    return directory


def run_and_metrics(run_dir: Path) -> tuple[Path, dict]:
    return run_dir, json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def random_model(tokenizer):
    """The tiny preset's model (encoder length 24) with random weights whose likelihoods differ between replies."""
    import numpy as np

    from config import PRESETS, ModelConfig
    from model.transformer import build_model

    keras_model = build_model(ModelConfig(**PRESETS["tiny"]["model"]), tokenizer.vocabulary_size(), 24)
    rng = np.random.default_rng(0)
    for variable in keras_model.weights:
        variable.assign(rng.normal(0, 0.3, variable.shape).astype(np.float32))
    return keras_model


@pytest.fixture(scope="session")
def real_run(tmp_path_factory, chatbot_csv):
    """The tiny preset trained on the real ChatbotData for 8 epochs: (run_dir, metrics).

    Label smoothing is off so that the validation loss measures fit alone (smoothing
    adds a floor that hides how much the model learned).
    """
    from config import build_config
    from model.training import train
    from serving.replies import TrainingReplies

    config = build_config(
        "tiny", overrides={"data": {"sources": [str(chatbot_csv)]}, "train": {"epochs": 8, "label_smoothing": 0.0}}
    )
    runs = built_once(tmp_path_factory, "real_run", lambda d: train(config, d / "tiny", replies_for=TrainingReplies))
    return run_and_metrics(runs / "tiny")  # Trained as train.py trains.


HARU_SAMPLE_DIALOGUES = 120  # Of 하루's 2,857: enough for the tests, a small share of the tiny run's time.


def write_haru_sample(directory: Path) -> Path:
    """characters/haru.yaml with its first `HARU_SAMPLE_DIALOGUES` dialogues (one file) written into `directory`."""
    import yaml

    character = yaml.safe_load(HARU.read_text(encoding="utf-8"))
    with open(HARU.parent / "haru_dialogues.jsonl", encoding="utf-8") as corpus:
        lines = [line for _, line in zip(range(HARU_SAMPLE_DIALOGUES), corpus)]
    (directory / "haru_dialogues_sample.jsonl").write_text("".join(lines), encoding="utf-8")
    character["dialogues"] = ["haru_dialogues_sample.jsonl"]
    path = directory / "haru.yaml"
    path.write_text(yaml.safe_dump(character, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def haru_sample(tmp_path_factory) -> Path:
    """하루 (characters/haru.yaml) with a sample of its dialogues, for runs that must stay short."""
    return built_once(tmp_path_factory, "haru_sample", write_haru_sample) / "haru.yaml"


@pytest.fixture(scope="session")
def persona_run(tmp_path_factory, haru_sample):
    """The tiny preset on multi-turn data with the example character, 4 epochs: (run_dir, metrics).

    XPersona (weight 2) and the AIHub-format sample, three earlier turns, and
    하루 with a sample of its dialogues (`haru_sample`) and `data.character_persona` on (so the persona
    path is exercised end to end): persona for the dialogues without one, identity pairs up-weighted.
    """
    from config import build_config
    from model.training import train

    assert XPERSONA.exists(), f"shared data not found at {XPERSONA}; set CHATBOT_SHARED_DATA"
    config = build_config("tiny", overrides={
        "data": {"sources": [f"{XPERSONA}@2", str(AIHUB_SAMPLE)], "character": str(haru_sample),
                 "character_persona": True, "sequence_length": 64},
        "train": {"epochs": 4, "label_smoothing": 0.0, "warmup_steps": 150},
    })
    runs = built_once(tmp_path_factory, "persona_run", lambda d: train(config, d / "persona"))
    return run_and_metrics(runs / "persona")


def write_bytes(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture(scope="session")
def exported(real_run, tmp_path_factory):
    """The tiny real run exported by `export.py` into a served folder (`--name chatbot`), as a user publishes:
    (model base path, version 1 directory, the command's standard output)."""
    def export(directory: Path):
        process = subprocess.run([sys.executable, str(ROOT / "export.py"), "--run-dir", str(real_run[0]),
                                  "--base-dir", str(directory / "saved_models"), "--name", "chatbot"], capture_output=True, text=True,
                                 timeout=600)
        assert process.returncode == 0, process.stderr[-3000:]
        (directory / "stdout.txt").write_text(process.stdout, encoding="utf-8")

    directory = built_once(tmp_path_factory, "exported", export)
    version_dir = directory / "saved_models" / "chatbot" / "1"
    return version_dir.parent, version_dir, (directory / "stdout.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def persona_export(persona_run, tmp_path_factory):
    """The multi-turn character run exported (with `character.yaml` and its `character` signature)."""
    from serving.export import export_run

    directory = built_once(tmp_path_factory, "persona_models", lambda d: export_run(persona_run[0], base_dir=d))
    return next(path.parent for path in directory.glob("*/1/saved_model.pb"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(base: Path, grpc_port: int, rest_port: int, *extra: str):
    """serve.py over `base` on the given ports, once it prints "(ready)": (process, output lines)."""
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "serve.py"), "--model_base_path", str(base), "--port", str(grpc_port),
         "--rest_api_port", str(rest_port), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output = []
    for line in process.stdout:
        output.append(line)
        if "(ready)" in line:
            break
    assert process.poll() is None, "".join(output)
    threading.Thread(target=lambda: [output.append(line) for line in process.stdout], daemon=True).start()
    return process, output
