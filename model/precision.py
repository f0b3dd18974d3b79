"""Which dtype policy a run computes in, and the float32 model it saves.

`train.mixed_precision: auto` (the default) picks `mixed_bfloat16` where the
hardware multiplies bfloat16 natively, and float32 elsewhere:

- CPUs that report AVX512-BF16 or AMX-BF16 (Linux `/proc/cpuinfo` flags): measured
  1.59x the float32 training rate on this project's 2-core EPYC VM (README, Results);
- GPUs of compute capability 8.0 or newer (Ampere, Hopper, ...).

Mixed precision keeps float32 variables and float32 logits and loss (Keras' policy
and `Seq2SeqTransformer`'s output cast); it only changes what the matmuls compute in.
The saved model is rebuilt in float32 (`float32_model`) so that exports and
decoding never depend on the training machine's bfloat16 support.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from config import PRECISIONS, require

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo does not exist)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def resolve_precision(mixed_precision: str, flags: set[str] | None = None, gpus=None) -> str:
    """`mixed_precision` with `auto` replaced by what this machine runs fastest."""
    require(mixed_precision in PRECISIONS, "train.mixed_precision", mixed_precision, f"one of {', '.join(PRECISIONS)}")
    if mixed_precision != "auto":
        return mixed_precision
    gpus = tf.config.list_physical_devices("GPU") if gpus is None else gpus
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0))
        return "mixed_bfloat16" if tuple(capability) >= (8, 0) else "none"
    flags = cpu_flags() if flags is None else flags
    return "mixed_bfloat16" if flags & set(BF16_CPU_FLAGS) else "none"


def policy_name(resolved: str) -> str:
    """The Keras dtype policy of a resolved `train.mixed_precision`."""
    return "float32" if resolved == "none" else resolved


def float32_model(model, build):
    """`model` itself if it computes in float32, else `build("float32")` holding its weights."""
    if model.compute_dtype == "float32":
        return model
    copy = build("float32")
    copy.set_weights(model.get_weights())
    return copy
