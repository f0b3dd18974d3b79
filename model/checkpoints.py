"""A run's checkpoints on disk: written whole or not at all, checked before a resume.

- `AtomicModelCheckpoint`: Keras' `ModelCheckpoint` writing the best weights beside their file
  and renaming them over it, so a kill or a full disk mid-write leaves the previous best whole.
- `resume_point`: before a resume, checks `BackupAndRestore`'s backup (the training state after
  the last finished epoch, and the one before it: `double_checkpoint`) and the best checkpoint by
  loading them into the model. A damaged latest backup is replaced by the one before it, saying
  which epoch is trained again; when nothing good is left, one line names the file and what to do,
  and no file is touched. A backup of another configuration reads as damaged (its weights do not fit).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import keras

from errors import DamagedFile, damage_of
from run_directory import RunDirectory

# BackupAndRestore's file names (keras/src/callbacks/backup_and_restore.py).
LATEST = ("latest.weights.h5", "training_metadata.json")
PREVIOUS = tuple(name + ".bkp" for name in LATEST)


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """`ModelCheckpoint(filepath, ...)` whose file is replaced whole (a `.weights.h5` path)."""

    def __init__(self, filepath: str | Path, **kwargs):
        self.final_path = Path(filepath)
        self.partial_path = self.final_path.with_name(self.final_path.name.replace(".weights.h5", ".partial.weights.h5"))
        self.partial_path.unlink(missing_ok=True)  # Left by a run killed while writing.
        super().__init__(str(self.partial_path), **kwargs)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.partial_path.exists():  # Written this epoch (a new best): now it replaces the old one.
            os.replace(self.partial_path, self.final_path)


def _unreadable(model, weights: Path, metadata: Path) -> str | None:
    """Why this backup (weights and epoch record) cannot be resumed from; None when it can."""
    for path in (weights, metadata):
        if not path.exists():
            return f"{path.name} is missing"
    try:
        epoch = json.loads(metadata.read_text(encoding="utf-8"))["epoch"]
        if not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch {epoch!r}")
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"{metadata}: {damage_of(error)}"
    # Keras reads weights only from a `.weights.h5` name (the earlier backup is `latest.weights.h5.bkp`).
    readable = weights if weights.name.endswith(".weights.h5") else weights.with_name("checking.weights.h5")
    try:
        if readable != weights:
            shutil.copyfile(weights, readable)
        model.load_weights(str(readable))
    except Exception as error:  # h5py and Keras raise many kinds for truncated or foreign files.
        return f"{weights}: {damage_of(error)}"
    finally:
        if readable != weights:
            readable.unlink(missing_ok=True)
    return None


def _epoch(metadata: Path) -> int:
    return int(json.loads(metadata.read_text(encoding="utf-8"))["epoch"])


def resume_point(model, run: RunDirectory) -> int:
    """Epochs finished in the run's backup (0: none), after checking what a resume will load.

    `model` must be the compiled training model; its optimizer is built (as `BackupAndRestore`
    builds it) and the weights it ends with are reloaded by `fit` from the backup anyway.
    """
    latest, previous = [run.backup / n for n in LATEST], [run.backup / n for n in PREVIOUS]
    if not any(p.exists() for p in latest + previous):
        return 0
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    damage = _unreadable(model, *latest)
    if damage is not None:
        fallback = _unreadable(model, *previous)
        if fallback is not None:
            raise DamagedFile(
                f"cannot resume {run}: the backup is damaged ({damage}) and so is the one before it ({fallback}); "
                f"nothing was changed: move {run.backup} aside to train the run from its first epoch, "
                "or use another --run-dir")
        for source, target in zip(previous, latest):
            shutil.copyfile(source, target)
        epochs = _epoch(latest[1])
        print(f"The latest backup of {run} is damaged ({damage}); resuming from the one before it, "
              f"after epoch {epochs}: epoch {epochs + 1} is trained again.")
    if run.best_weights.exists():
        try:
            model.load_weights(str(run.best_weights))
        except Exception as error:
            raise DamagedFile(
                f"cannot resume {run}: its best checkpoint {run.best_weights} is damaged ({damage_of(error)}), "
                "so the run could not pick its best epoch; train it again with another --run-dir") from error
    return _epoch(latest[1])
