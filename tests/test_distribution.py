"""model/distribution.py: strategies by name, chief/worker directories, and two workers that train alike."""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

from conftest import ROOT
from model.callbacks import read_history
from model.distribution import is_chief, make_strategy, worker_run_dir


def tf_config(ports, index, kind="worker"):
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": kind, "index": index}})


def test_strategy_names(monkeypatch):
    assert make_strategy("default").num_replicas_in_sync == 1
    with pytest.raises(ValueError, match="is not allowed: one of default"):
        make_strategy("tpu_pod")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs TF_CONFIG"):
        make_strategy("multi_worker")


def test_chief_writes_the_run_and_workers_their_own(monkeypatch, tmp_path):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert is_chief() and worker_run_dir(tmp_path) == tmp_path
    monkeypatch.setenv("TF_CONFIG", tf_config([1, 2], 0))
    assert is_chief() and worker_run_dir(tmp_path) == tmp_path
    monkeypatch.setenv("TF_CONFIG", tf_config([1, 2], 1))
    assert not is_chief() and worker_run_dir(tmp_path) == tmp_path / "workers" / "worker-1"


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_train_to_identical_weights(tmp_path, chatbot_csv):
    small = tmp_path / "small.csv"
    small.write_text("\n".join(chatbot_csv.read_text(encoding="utf-8").splitlines()[:301]) + "\n", encoding="utf-8")
    run_dir, ports = tmp_path / "run", free_ports(2)
    processes = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": tf_config(ports, index), "TF_CPP_MIN_LOG_LEVEL": "3"}
        processes.append(subprocess.Popen(
            [sys.executable, str(ROOT / "train.py"), "--preset", "tiny", "--data", str(small), "--run-dir", str(run_dir),
             "--epochs", "2", "--set", "train.strategy=multi_worker", f"export.base_dir={tmp_path / 'saved_models'}",
             "train.weight_decay=0.1", "train.ema_momentum=0.9"],  # The seed preset's optimizer: AdamW + EMA swaps.
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        ))
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    worker_dir = run_dir / "workers" / "worker-1"
    chief = keras.saving.load_model(run_dir / "model.keras").get_weights()
    worker = keras.saving.load_model(worker_dir / "model.keras").get_weights()
    assert len(chief) == len(worker) > 10
    assert all(np.array_equal(a, b) for a, b in zip(chief, worker))
    first = chief[0]
    assert np.abs(first).sum() > 0
    # Both saw the same losses (reduced across workers), at the single-process scale (~ln V, not 2x).
    losses = [[(r["loss"], r["val_loss"]) for r in read_history(d / "history.csv")] for d in (run_dir, worker_dir)]
    assert len(losses[0]) == 2 and losses[0] == losses[1]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["validation_loss"] < 10
    # Only the chief exports.
    assert (tmp_path / "saved_models" / "run" / "1").exists() and not (tmp_path / "saved_models" / "run" / "2").exists()


def test_mixed_bfloat16_trains_with_float32_logits_and_loss():
    from config import build_config
    from model.metrics import MaskedSparseCrossentropy
    from model.precision import resolve_precision
    from model.transformer import build_model

    config = build_config("tiny", overrides={"model": {"hidden_dim": 32, "intermediate_dim": 64}})
    model = build_model(config.model, vocabulary_size=50, sequence_length=12, dtype="mixed_bfloat16")
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=MaskedSparseCrossentropy())
    ids = np.array([[5, 6, 7, 0], [8, 9, 0, 0]], np.int32)
    inputs = {"encoder_inputs": ids, "decoder_inputs": ids}
    assert model.compute_dtype == "bfloat16" and model(inputs).dtype == "float32"
    first = model.train_on_batch(inputs, ids, return_dict=True)["loss"]
    for _ in range(30):
        last = model.train_on_batch(inputs, ids, return_dict=True)["loss"]
    assert np.isfinite(last) and last < 0.5 * first
    with pytest.raises(ValueError, match="mixed_precision=.fp8. is not allowed"):
        resolve_precision("fp8")
