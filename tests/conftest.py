"""Shared fixtures: the shared Korean data, a tiny configuration, a tokenizer."""

from __future__ import annotations

import os
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

    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    config = build_config(
        "tiny", overrides={"data": {"sources": [str(chatbot_csv)]}, "train": {"epochs": 8, "label_smoothing": 0.0}}
    )
    return run_dir, train(config, run_dir, replies_for=TrainingReplies)  # As train.py.


@pytest.fixture(scope="session")
def persona_run(tmp_path_factory):
    """The tiny preset on multi-turn data with the example character, 4 epochs: (run_dir, metrics).

    XPersona (weight 2) and the AIHub-format sample, three earlier turns, and
    characters/haru.yaml with `data.character_persona` on (so the persona path is exercised
    end to end): persona for the dialogues without one, identity pairs up-weighted.
    """
    from config import build_config
    from model.training import train

    assert XPERSONA.exists(), f"shared data not found at {XPERSONA}; set CHATBOT_SHARED_DATA"
    run_dir = tmp_path_factory.mktemp("runs") / "persona"
    config = build_config("tiny", overrides={
        "data": {"sources": [f"{XPERSONA}@2", str(AIHUB_SAMPLE)], "character": str(HARU), "character_persona": True,
                 "sequence_length": 64},
        "train": {"epochs": 4, "label_smoothing": 0.0, "warmup_steps": 150},
    })
    return run_dir, train(config, run_dir)


def write_bytes(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture(scope="session")
def exported(real_run, tmp_path_factory):
    """The tiny real run exported by `export.py`, as a user exports: (model base path, version 1 directory,
    the command's standard output)."""
    base_dir = tmp_path_factory.mktemp("saved_models")
    process = subprocess.run([sys.executable, str(ROOT / "export.py"), "--run-dir", str(real_run[0]),
                              "--base-dir", str(base_dir)], capture_output=True, text=True, timeout=600)
    assert process.returncode == 0, process.stderr[-3000:]
    version_dir = base_dir / "chatbot" / "1"
    return version_dir.parent, version_dir, process.stdout


@pytest.fixture(scope="session")
def persona_export(persona_run, tmp_path_factory):
    """The multi-turn character run exported (with `character.yaml` and its `character` signature)."""
    from serving.export import export_run

    return export_run(persona_run[0], base_dir=tmp_path_factory.mktemp("persona_models"))


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
