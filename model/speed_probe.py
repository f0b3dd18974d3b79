"""How fast the machine is while a run trains: a fixed kernel timed during every epoch, beside the throughput.

On a shared cloud VM the same epoch can take twice as long from one hour to the next
(another tenant on the sibling hyperthread, the host's frequency, memory bandwidth), and
the training throughput alone cannot tell a slow machine from a slow program. The probe
times a fixed, CPU-bound kernel shaped like the model's work, a [1536, 512] x [512, 512]
matmul in the run's compute dtype (bfloat16 under `mixed_bfloat16`, else float32), a few
times every `every` training steps and once more at the epoch's end, and adds to the epoch
logs (so to `history.csv` and TensorBoard):

    probe_gflops             the median speed of the kernel over the epoch
    tokens_per_probe_gflop   train_tokens_per_second / probe_gflops: the program's own efficiency

An epoch that trained slowly while `probe_gflops` fell was a slow or shared machine; one whose
`tokens_per_probe_gflop` fell while the probe held was the program. With another process on the
same cores the probe and the training step lose them in different proportions, so the ratio is a
steady measure only on an otherwise quiet machine (docs/results.md). A probe costs ~20-45 ms; at
the default `every` it adds well under 1% to an epoch.
"""

from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf

SHAPE = (1536, 512, 512)  # [rows, inner, columns]: a batch of token positions through a d_model projection.
REPEATS = 5


class SpeedProbe:
    """The kernel and its timing: `gflops()` -> the kernel's speed now, GFLOP/s."""

    def __init__(self, dtype: str = "float32", seed: int = 0):
        rows, inner, columns = SHAPE
        rng = np.random.default_rng(seed)
        self.a = tf.constant(rng.normal(size=(rows, inner)), dtype=dtype)
        self.b = tf.constant(rng.normal(size=(inner, columns)), dtype=dtype)
        self.flops = 2.0 * rows * inner * columns
        tf.matmul(self.a, self.b).numpy()  # The first call pays for kernel selection, not the machine.

    def gflops(self) -> float:
        times = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            tf.matmul(self.a, self.b).numpy()
            times.append(time.perf_counter() - start)
        return self.flops / float(np.median(times)) / 1e9


class MachineSpeed(keras.callbacks.Callback):
    """Adds `probe_gflops` and `tokens_per_probe_gflop` to the epoch logs (after `Throughput`'s keys).

    The kernel computes in the model's compute dtype: bfloat16 for a `mixed_bfloat16` run, else float32.
    """

    def __init__(self, every: int = 50):
        super().__init__()
        self.every = every
        self.probe: SpeedProbe | None = None
        self.readings: list[float] = []

    def on_train_begin(self, logs=None):
        self.probe = SpeedProbe("bfloat16" if self.model.compute_dtype == "bfloat16" else "float32")

    def on_epoch_begin(self, epoch, logs=None):
        self.readings = []

    def on_train_batch_end(self, batch, logs=None):
        if self.every and (batch + 1) % self.every == 0:
            self.readings.append(self.probe.gflops())

    def on_epoch_end(self, epoch, logs=None):
        self.readings.append(self.probe.gflops())
        if logs is not None:
            logs["probe_gflops"] = float(np.median(self.readings))
            if "train_tokens_per_second" in logs:
                logs["tokens_per_probe_gflop"] = logs["train_tokens_per_second"] / logs["probe_gflops"]
