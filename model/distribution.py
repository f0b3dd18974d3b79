"""tf.distribute for training: a strategy by name, who writes the run, and two Keras fixes for multi-worker.

    default       one device (TensorFlow's default strategy)
    mirrored      every local GPU (MirroredStrategy); one CPU replica without GPUs
    multi_worker  several processes or machines (MultiWorkerMirroredStrategy), each started
                  with its own TF_CONFIG, e.g. for worker 1 of 2:
                  {"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": {"type": "worker", "index": 1}}

All workers run the same command. The chief (worker 0, or the "chief" task) writes the
run directory; every other worker writes its own copy under `<run_dir>/workers/<task>-<index>/`
(checkpoints, backups and logs of a non-chief are needed for its resume, never read by people).

Keras 3.15's `fit` fails under MultiWorkerMirroredStrategy; `model/compat.py:
patch_keras_for_multi_worker()` fixes it before the strategy is made.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import tensorflow as tf

from config import DISTRIBUTION_STRATEGIES
from errors import ConfigError
from model.compat import patch_keras_for_multi_worker
from run_directory import RunDirectory


def make_strategy(name: str) -> tf.distribute.Strategy:
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ConfigError("train.strategy='multi_worker' needs TF_CONFIG (the cluster and this task) in the environment")
        patch_keras_for_multi_worker()
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ConfigError(f"train.strategy={name!r} is not allowed: one of {', '.join(DISTRIBUTION_STRATEGIES)}")


def task() -> tuple[str, int]:
    """(task type, index) from TF_CONFIG; ("chief", 0) without one."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    entry = config.get("task", {})
    return entry.get("type", "chief"), int(entry.get("index", 0))


def is_chief() -> bool:
    task_type, index = task()
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    return task_type == "chief" or (task_type == "worker" and index == 0 and "chief" not in cluster)


def worker_run_dir(run_dir: Path) -> Path:
    """The directory this process writes: the run directory for the chief, a private one otherwise."""
    if is_chief():
        return Path(run_dir)
    task_type, index = task()
    return RunDirectory(run_dir).worker(task_type, index).root


def distribute_dataset_options(dataset: tf.data.Dataset, strategy: tf.distribute.Strategy) -> tf.data.Dataset:
    """Shard batches between workers (DATA): examples are in memory, there are no files to shard."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return dataset
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
