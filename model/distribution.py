"""tf.distribute for training: a strategy by name, who writes the run, and two Keras fixes for multi-worker.

    default       one device (TensorFlow's default strategy)
    mirrored      every local GPU (MirroredStrategy); one CPU replica without GPUs
    multi_worker  several processes or machines (MultiWorkerMirroredStrategy), each started
                  with its own TF_CONFIG, e.g. for worker 1 of 2:
                  {"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": {"type": "worker", "index": 1}}

All workers run the same command. The chief (worker 0, or the "chief" task) writes the
run directory; every other worker writes its own copy under `<run_dir>/workers/<task>-<index>/`
(checkpoints, backups and logs of a non-chief are needed for its resume, never read by people).

Keras 3.15's `fit` fails under MultiWorkerMirroredStrategy in two places of
`keras/src/backend/tensorflow/trainer.py` (still so upstream): the first batch is
reduced with `strategy.reduce("MEAN", ...)` to build the model symbolically, and
rank-0 logs are reduced with `axis=0`. `patch_keras_for_multi_worker()` fixes both,
only on the Keras versions checked here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import tensorflow as tf

from config import DISTRIBUTION_STRATEGIES
from errors import ConfigError

_PATCHED_KERAS = ("3.15.",)


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
    return Path(run_dir) / "workers" / f"{task_type}-{index}"


def distribute_dataset_options(dataset: tf.data.Dataset, strategy: tf.distribute.Strategy) -> tf.data.Dataset:
    """Shard batches between workers (DATA): examples are in memory, there are no files to shard."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return dataset
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def patch_keras_for_multi_worker() -> None:
    """Fix Keras' TF trainer for MultiWorkerMirroredStrategy (see the module docstring). Idempotent."""
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer, "_chatbot_multi_worker_patch", False):
        return
    if not keras.__version__.startswith(_PATCHED_KERAS):
        raise RuntimeError(
            f"model/distribution.py patches Keras {_PATCHED_KERAS} for multi-worker training; "
            f"check whether Keras {keras.__version__} still needs it and update the patch"
        )
    original_reduce = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            # Rank-0 logs: reduce across replicas only (Keras passes axis=0, which they lack).
            def mean(v):
                axis = None if v.shape.rank == 0 else 0
                return strategy.reduce("MEAN", v, axis=axis)

            return tf.nest.map_structure(mean, values)
        return original_reduce(values, strategy, reduction)

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None:
            return
        if iterator is not None:
            for _, _, it in iterator:
                batch = next(it)
                # One replica's local batch has the right structure and dtypes; no cross-worker reduce.
                data_batch = tf.nest.map_structure(
                    lambda v: self.distribute_strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues) else v,
                    batch,
                )
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    trainer.reduce_per_replica = reduce_per_replica
    trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    trainer._chatbot_multi_worker_patch = True
