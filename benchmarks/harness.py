"""What the benchmarks share: training A/B comparisons run side by side, and per-call latency.

Training comparisons (`train_throughput`, `precision_throughput`, `xla_shapes`,
`train_step_profile`) read and split the data as a run does, in a temporary folder,
build each arm's model fresh from the same seed and compile it as training does, then
time steps in alternating rounds, so that whatever the machine does meanwhile hits
every arm alike:

    data = prepared_data(config)
    arms = {"a": StepMeter(compiled_model(config, len(data.vocabulary)), dataset_a), "b": ...}
    alternate(arms, rounds=3, steps=30, warmup_steps=30)   # warm-up traces every shape, uncounted
    arms["a"].real_tokens_per_second()

Latency (`decode`, `export_latency`): `latencies_ms(call, items)` times one call per
item after a few uncounted ones. `cpu_line()` names the CPU to print beside every figure.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import keras
import numpy as np

from config import PAD_ID, Config
from data_pipeline.loading import prepare_data
from model.precision import cpu_flags
from model.training import compile_model
from model.transformer import build_model

SHARED_CHATBOT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ChatbotData.csv"


def prepared_data(config: Config):
    """`config.data` read, split and tokenized as `train.py` does (its files in a folder removed after)."""
    with tempfile.TemporaryDirectory() as folder:
        return prepare_data(config.data, Path(folder))


def compiled_model(config: Config, vocabulary_size: int, dtype: str | None = None, jit_compile: bool | None = None):
    """A fresh model of `config`, seeded with `train.seed`, compiled with the training step's settings."""
    if jit_compile is not None:
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, jit_compile=jit_compile))
    keras.utils.set_random_seed(config.train.seed)
    model = build_model(config.model, vocabulary_size, config.data.sequence_length, dtype=dtype)
    compile_model(model, config)
    return model


@dataclasses.dataclass
class Step:
    """One timed training step: its padded shape (batch, source, target) and what it took."""

    shape: tuple[int, int, int]
    seconds: float  # Waiting for the batch included.
    wait: float  # Waiting for the batch alone.
    real_tokens: int  # Non-padding target tokens.
    positions: int  # Target positions, padding included.

    @property
    def step_seconds(self) -> float:
        """The train step alone, without waiting for the batch."""
        return self.seconds - self.wait


class StepMeter:
    """Train steps of one model on one dataset (repeated), each timed by wall clock."""

    def __init__(self, model, dataset):
        self.model = model
        self.iterator = iter(dataset.repeat())
        self.steps: list[Step] = []  # The counted ones.

    def step(self) -> Step:
        start = time.perf_counter()
        inputs, targets = next(self.iterator)
        ready = time.perf_counter()
        self.model.train_on_batch(inputs, targets)  # Returns logs as numbers: the step has finished.
        done = time.perf_counter()
        t = targets.numpy()
        shape = (*inputs["encoder_inputs"].shape, t.shape[1])
        return Step(shape, done - start, ready - start, int((t != PAD_ID).sum()), t.size)

    def run(self, steps: int, count: bool = True) -> None:
        for _ in range(steps):
            step = self.step()
            if count:
                self.steps.append(step)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)

    def real_tokens_per_second(self) -> float:
        return sum(s.real_tokens for s in self.steps) / self.seconds

    def padding(self) -> float:
        """The share of target positions the counted steps computed that were padding."""
        return 1 - sum(s.real_tokens for s in self.steps) / sum(s.positions for s in self.steps)

    def input_wait(self) -> float:
        return sum(s.wait for s in self.steps) / self.seconds

    def ms_per_step(self) -> float:
        return 1000 * self.seconds / len(self.steps)


def alternate(arms: dict[str, StepMeter], rounds: int, steps: int, warmup_steps: int = 0) -> None:
    """Warm every arm up (uncounted), then `rounds` rounds of `steps` counted steps, arm after arm."""
    for meter in arms.values():
        meter.run(warmup_steps, count=False)
    for _ in range(rounds):
        for meter in arms.values():
            meter.run(steps)


def latencies_ms(call: Callable, items: Iterable, warmup: int = 3) -> np.ndarray:
    """Wall milliseconds of `call(item)` for each item, after `call` on the first `warmup` items uncounted."""
    items = list(items)
    for item in items[:warmup]:
        call(item)
    times = []
    for item in items:
        start = time.perf_counter()
        call(item)
        times.append((time.perf_counter() - start) * 1000)
    return np.array(times)


def cpu_line() -> str:
    """The CPU's model name and the flags that decide its speed here (bfloat16, AMX, AVX-512)."""
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.exists() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    flags = sorted(f for f in cpu_flags() if f in ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile"))
    return f"CPU: {names[0] if names else 'unknown'} x{os.cpu_count()}, flags: {' '.join(flags) or 'no avx512/amx'}"
