"""model/speed_probe.py: the machine-speed probe and the per-epoch figures it adds beside the throughput."""

import keras
import numpy as np
import pytest

from model.callbacks import Throughput
from model.speed_probe import SHAPE, MachineSpeed, SpeedProbe


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_probe_times_the_kernel_in_the_compute_dtype(dtype):
    probe = SpeedProbe(dtype)
    assert probe.a.dtype.name == dtype and tuple(probe.a.shape) == SHAPE[:2]
    assert probe.flops == 2 * SHAPE[0] * SHAPE[1] * SHAPE[2]
    assert 0.1 < probe.gflops() < 1e5  # GFLOP/s: a real measurement, not a constant.


def test_every_epoch_logs_the_probe_and_the_throughput_per_probe_gflop():
    model = keras.Sequential([keras.Input([8]), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    speed = MachineSpeed(every=2)
    readings = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            readings.append(len(speed.readings))

    x, y = np.zeros([40, 8], np.float32), np.zeros([40, 1], np.float32)
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0,
                        callbacks=[Throughput(tokens_per_epoch=1000), speed, Record()])
    logs = history.history
    assert readings == [3, 3]  # Steps 2 and 4 of 5, and the epoch's end.
    assert all(g > 0 for g in logs["probe_gflops"])
    np.testing.assert_allclose(logs["tokens_per_probe_gflop"],
                               np.array(logs["train_tokens_per_second"]) / np.array(logs["probe_gflops"]))
    assert speed.probe.a.dtype.name == "float32"  # The model computes in float32.
