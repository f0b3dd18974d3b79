"""Keras callbacks that make a run observable and resumable.

- `SampleReplies`: the served reply to fixed questions each epoch (through the
  `replies` callable `train` is given), printed and written to TensorBoard as text.
- `Throughput`: seconds spent training (validation excluded) and non-padding
  tokens per second, added to the epoch logs (so TensorBoard and history get them).
- `ResumeMonitors`: after `BackupAndRestore` has restored the weights, restores
  what it does not — the best validation loss that `ModelCheckpoint` and
  `EarlyStopping` compare against, and early stopping's patience count — from
  the run's `history.csv`, so a resumed run keeps the same "best" and stops at
  the same epoch as an uninterrupted one.
- `ema_swaps`: Keras' `SwapEMAWeights` and its counterpart `SwapTrainingWeightsBack`,
  which put the averaged weights (optimizer `use_ema`) in the model for validation
  and the epoch-end callbacks between them, and the training weights back for the backup.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import keras
import pandas as pd
import tensorflow as tf


class SampleReplies(keras.callbacks.Callback):
    """`replies(questions)` -> the replies the model would serve now (`serving.replies.TrainingReplies`)."""

    def __init__(self, replies: Callable[[list[str]], list[str]], questions: list[str], log_dir: Path):
        super().__init__()
        self.replies = replies
        self.questions = list(questions)
        self.writer = tf.summary.create_file_writer(str(log_dir))

    def on_epoch_end(self, epoch, logs=None):
        if not self.questions:
            return
        replies = self.replies(self.questions)
        rows = ["| question | reply |", "|---|---|"]
        for question, reply in zip(self.questions, replies):
            rows.append(f"| {question} | {reply} |")
            print(f"  {question} -> {reply}")
        with self.writer.as_default():
            tf.summary.text("sample_replies", "\n".join(rows), step=epoch)
        self.writer.flush()


class Throughput(keras.callbacks.Callback):
    """Adds `epoch_seconds` (validation included), `train_seconds` and `train_tokens_per_second`
    (non-padding tokens, training only) to the epoch logs."""

    def __init__(self, tokens_per_epoch: int):
        super().__init__()
        self.tokens_per_epoch = tokens_per_epoch
        self._start = self._end = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._end = time.perf_counter(), None

    def on_test_begin(self, logs=None):
        if self._start is not None and self._end is None:
            self._end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        seconds = (self._end or now) - self._start
        if logs is not None:
            logs["epoch_seconds"] = now - self._start
            logs["train_seconds"] = seconds
            logs["train_tokens_per_second"] = self.tokens_per_epoch / seconds


def read_history(path: Path) -> list[dict]:
    """The rows of Keras' `history.csv` as {column: float}, blank cells left out."""
    if not Path(path).exists() or Path(path).stat().st_size == 0:
        return []
    frame = pd.read_csv(path)
    return [{k: float(v) for k, v in row.items() if pd.notna(v)} for row in frame.to_dict("records")]


def truncate_history(path: Path, epochs_done: int) -> list[dict]:
    """Drop rows of epochs that the backup does not cover (killed after logging, before backup)."""
    rows = [r for r in read_history(path) if int(r["epoch"]) < epochs_done]
    if Path(path).exists():
        if rows:
            frame = pd.read_csv(path)
            frame[frame["epoch"] < epochs_done].to_csv(path, index=False)
        else:
            Path(path).write_text("", encoding="utf-8")  # CSVLogger writes the header again.
    return rows


class ResumeMonitors(keras.callbacks.Callback):
    """Put ModelCheckpoint/EarlyStopping back in the state they had before an interruption.

    Must come *after* those callbacks in the list: their `on_train_begin` resets state.
    """

    def __init__(self, history: list[dict], checkpoint, early_stopping, monitor: str = "val_loss"):
        super().__init__()
        self.history, self.checkpoint, self.early_stopping, self.monitor = history, checkpoint, early_stopping, monitor

    def on_train_begin(self, logs=None):
        values = [row[self.monitor] for row in self.history if self.monitor in row]
        if not values:
            return
        best_index = min(range(len(values)), key=values.__getitem__)
        best = values[best_index]
        self.checkpoint.best = best
        self.early_stopping.best = best
        self.early_stopping.best_epoch = int(self.history[best_index]["epoch"])
        self.early_stopping.wait = len(values) - 1 - best_index
        print(
            f"Resumed monitors: best {self.monitor} {best:.4f} at epoch {best_index + 1}, "
            f"{self.early_stopping.wait} epoch(s) without improvement"
        )


class SwapTrainingWeightsBack(keras.callbacks.Callback):
    """At the end of an epoch, undo `SwapEMAWeights(swap_on_epoch=True)` early.

    `SwapEMAWeights` leaves the averaged weights in the model until the next epoch
    begins. Placed before `BackupAndRestore`, this puts the training weights back
    first, so the backup (model and optimizer) is the true training state and a
    resumed run continues exactly where it stopped.
    """

    def __init__(self, swap: keras.callbacks.SwapEMAWeights):
        super().__init__()
        self.swap = swap

    def on_epoch_end(self, epoch, logs=None):
        self.swap.on_test_end()  # Swaps back if the averaged weights are in the model.


def ema_swaps() -> tuple[list, list]:
    """([callback to place before the EMA-weight callbacks], [callback to place after them])."""
    swap = keras.callbacks.SwapEMAWeights(swap_on_epoch=True)
    return [swap], [SwapTrainingWeightsBack(swap)]
