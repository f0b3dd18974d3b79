"""model/callbacks.py: history truncation and restored monitor state after a resume."""

import keras

from model.callbacks import ResumeMonitors, read_history, truncate_history


def write_history(path, rows):
    path.write_text("epoch,loss,val_loss\n" + "".join(f"{e},{l},{v}\n" for e, l, v in rows))


def test_truncate_drops_epochs_the_backup_does_not_cover(tmp_path):
    path = tmp_path / "history.csv"
    write_history(path, [(0, 5.0, 4.0), (1, 4.0, 3.0), (2, 3.5, 3.2)])
    rows = truncate_history(path, epochs_done=2)
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert [int(r["epoch"]) for r in read_history(path)] == [0, 1]


def test_resume_restores_best_and_patience():
    history = [{"epoch": 0, "val_loss": 3.0}, {"epoch": 1, "val_loss": 2.0}, {"epoch": 2, "val_loss": 2.5}]
    checkpoint = keras.callbacks.ModelCheckpoint("unused.weights.h5", save_best_only=True, save_weights_only=True)
    early = keras.callbacks.EarlyStopping(patience=3)
    early.on_train_begin()  # Resets its state, as fit() does before ResumeMonitors runs.
    ResumeMonitors(history, checkpoint, early).on_train_begin()
    assert checkpoint.best == 2.0 and early.best == 2.0
    assert early.wait == 1 and early.best_epoch == 1
