"""model/checkpoints.py: the best checkpoint written whole; a damaged backup falls back or stops in one line."""

import json
import os

import keras
import numpy as np
import pytest

from errors import DamagedFile
from model.checkpoints import LATEST, PREVIOUS, AtomicModelCheckpoint, resume_point
from run_directory import RunDirectory


def small_model(units: int = 4):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(units), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model


def fit(model, callbacks, epochs=3):
    x, y = np.random.default_rng(0).normal(size=(32, 3)), np.zeros((32, 1))
    model.fit(x, y, epochs=epochs, verbose=0, callbacks=callbacks)


def backed_up_run(tmp_path, epochs=3) -> RunDirectory:
    """A run directory whose backup holds the state after `epochs` epochs and after the one before."""
    run = RunDirectory(tmp_path / "run")
    run.checkpoints.mkdir(parents=True)

    class StopBeforeCleanup(keras.callbacks.Callback):  # BackupAndRestore deletes its backup when fit ends.
        def on_train_end(self, logs=None):
            raise KeyboardInterrupt

    model = small_model()
    with pytest.raises(KeyboardInterrupt):
        fit(model, [AtomicModelCheckpoint(run.best_weights, monitor="loss", save_best_only=True,
                                          save_weights_only=True),
                    StopBeforeCleanup(), keras.callbacks.BackupAndRestore(str(run.backup), double_checkpoint=True)],
            epochs=epochs)
    return run


def truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def test_the_best_checkpoint_is_written_whole_then_renamed(tmp_path):
    run = backed_up_run(tmp_path)
    assert run.best_weights.exists() and not list(run.checkpoints.glob("*.partial.*"))
    small_model().load_weights(run.best_weights)  # A complete file.


def test_an_intact_backup_resumes_where_it_stopped(tmp_path):
    run = backed_up_run(tmp_path)
    assert resume_point(small_model(), run) == 3
    assert resume_point(small_model(), RunDirectory(tmp_path / "new")) == 0


@pytest.mark.parametrize("damage", ["truncated", "empty", "metadata"])
def test_a_damaged_latest_backup_falls_back_to_the_one_before(tmp_path, capsys, damage):
    run = backed_up_run(tmp_path)
    weights, metadata = (run.backup / name for name in LATEST)
    if damage == "truncated":
        truncate(weights)
    elif damage == "empty":
        weights.write_bytes(b"")
    else:
        metadata.write_text('{"epo', encoding="utf-8")
    assert resume_point(small_model(), run) == 2
    assert "resuming from the one before it, after epoch 2: epoch 3 is trained again" in capsys.readouterr().out
    assert json.loads(metadata.read_text())["epoch"] == 2
    small_model().load_weights(weights)  # The restored copy is whole.


def test_nothing_readable_is_one_line_and_changes_no_file(tmp_path):
    run = backed_up_run(tmp_path)
    for name in (LATEST[0], PREVIOUS[0]):
        truncate(run.backup / name)
    before = {p.name: p.read_bytes() for p in run.backup.iterdir()}
    with pytest.raises(DamagedFile, match="the backup is damaged .* and so is the one before it") as caught:
        resume_point(small_model(), run)
    assert "\n" not in str(caught.value) and "move" in str(caught.value)
    assert {p.name: p.read_bytes() for p in run.backup.iterdir()} == before


def test_a_backup_of_another_configuration_reads_as_damaged(tmp_path):
    run = backed_up_run(tmp_path)
    with pytest.raises(DamagedFile, match="latest.weights.h5"):
        resume_point(small_model(units=8), run)  # The weights do not fit this model.


def test_a_damaged_best_checkpoint_stops_the_resume(tmp_path):
    run = backed_up_run(tmp_path)
    os.truncate(run.best_weights, 10)
    with pytest.raises(DamagedFile, match="best checkpoint .*best.weights.h5 is damaged"):
        resume_point(small_model(), run)
