"""model/precision.py: what `auto` picks, and the float32 copy a bfloat16 run saves."""

import keras
import numpy as np
import pytest

from config import build_config
from model.precision import cpu_flags, float32_model, resolve_precision
from model.transformer import build_model


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16\nbugs\t\t: none\n")
    assert cpu_flags(cpuinfo) == {"fpu", "avx2", "avx512_bf16"}
    assert cpu_flags(tmp_path / "missing") == set()


def test_auto_picks_bfloat16_only_where_the_cpu_has_it():
    assert resolve_precision("auto", flags={"avx2", "avx512_bf16"}, gpus=[]) == "mixed_bfloat16"
    assert resolve_precision("auto", flags={"avx2", "amx_bf16"}, gpus=[]) == "mixed_bfloat16"
    assert resolve_precision("auto", flags={"avx2", "avx512f"}, gpus=[]) == "none"
    assert resolve_precision("none", flags={"avx512_bf16"}, gpus=[]) == "none"  # Explicit choices stand.
    with pytest.raises(ValueError, match="train.mixed_precision=.bf16. is not allowed: one of"):
        resolve_precision("bf16")


def test_float32_copy_of_a_bfloat16_model_has_its_weights():
    config = build_config("tiny", overrides={"model": {"hidden_dim": 32, "intermediate_dim": 64}})
    ids = np.array([[5, 6, 7, 0], [8, 9, 0, 0]], np.int32)
    inputs = {"encoder_inputs": ids, "decoder_inputs": ids}

    def build(dtype):
        return build_model(config.model, vocabulary_size=50, sequence_length=12, dtype=dtype)

    mixed = build("mixed_bfloat16")
    assert {layer.compute_dtype for layer in mixed._flatten_layers()} == {"bfloat16"}  # Sub-layers follow.
    copy = float32_model(mixed, build)
    assert {layer.compute_dtype for layer in copy._flatten_layers()} == {"float32"}
    for a, b in zip(mixed.get_weights(), copy.get_weights()):
        np.testing.assert_array_equal(a, b)
    # Same function, computed at bfloat16's ~3 significant digits vs float32's ~7.
    np.testing.assert_allclose(mixed(inputs), copy(inputs), atol=0.1)
    assert float32_model(copy, build) is copy


def test_saved_float32_model_loads_as_float32_under_a_mixed_global_policy(tmp_path):
    config = build_config("tiny", overrides={"model": {"hidden_dim": 32, "intermediate_dim": 64}})
    build_model(config.model, vocabulary_size=50, sequence_length=12, dtype="float32").save(tmp_path / "m.keras")
    try:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        loaded = keras.saving.load_model(tmp_path / "m.keras")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert {layer.compute_dtype for layer in loaded._flatten_layers()} == {"float32"}
    assert all(layer.built for layer in loaded._flatten_layers())
