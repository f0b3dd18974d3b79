"""config.py: presets, YAML and command-line overrides, type checks, saving."""

import pytest

from config import PRESETS, build_config, dotted_to_nested, load_config
from errors import ConfigError


def test_seed_preset_is_the_design_card_model():
    model = build_config("seed").model
    assert (model.num_layers, model.hidden_dim, model.num_heads, model.intermediate_dim, model.dropout) == (
        2, 512, 4, 256, 0.1,
    )


def test_tiny_preset_is_small():
    tiny, seed = build_config("tiny").model, build_config("seed").model
    assert tiny.hidden_dim < seed.hidden_dim and tiny.num_layers < seed.num_layers
    assert set(PRESETS) >= {"seed", "tiny"}


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  num_layers: 3\ntrain:\n  epochs: 7\n", encoding="utf-8")
    config = build_config("seed", path, dotted_to_nested(["train.epochs=9", "train.label_smoothing=0"]))
    assert config.model.num_layers == 3
    assert config.train.epochs == 9
    assert config.train.label_smoothing == 0.0 and isinstance(config.train.label_smoothing, float)


def test_bad_keys_and_types_are_named():
    with pytest.raises(ConfigError, match="model.num_layerz"):
        build_config("seed", overrides={"model": {"num_layerz": 2}})
    with pytest.raises(ConfigError, match="train.epochs"):
        build_config("seed", overrides={"train": {"epochs": "many"}})
    with pytest.raises(ConfigError, match="unknown preset"):
        build_config("huge")
    with pytest.raises(ConfigError, match="section.key=value"):
        dotted_to_nested(["epochs"])


BAD_VALUES = [
    ("data", "validation_fraction", 1.0), ("data", "validation_fraction", float("nan")), ("data", "vocab_size", 10),
    ("data", "sequence_length", 2), ("data", "context_turns", -1), ("data", "max_persona_length", -1),
    ("data", "sources", ["ok.csv", " "]),
    ("model", "num_layers", 0), ("model", "hidden_dim", 510), ("model", "num_heads", 0), ("model", "dropout", 1.0),
    ("model", "intermediate_dim", 0),
    ("train", "epochs", 0), ("train", "batch_size", -1), ("train", "warmup_steps", 0),
    ("train", "learning_rate_scale", 0.0), ("train", "learning_rate_scale", float("inf")),
    ("train", "label_smoothing", 1.0), ("train", "word_dropout", -0.1), ("train", "ema_momentum", 1.5),
    ("train", "weight_decay", -1.0), ("train", "cooldown_fraction", 1.2), ("train", "early_stopping_patience", -1),
    ("train", "learning_rate_decay", "cosine"),
    ("train", "monitor", "accuracy"), ("train", "strategy", "tpu"), ("train", "mixed_precision", "fp8"),
    ("train", "shuffle_buffer", 0),
    ("export", "name", "a/b"), ("export", "name", " chatbot"), ("export", "name", ".."), ("export", "max_reply_length", 0), ("export", "num_beams", 0),
    ("export", "length_penalty", -1.0), ("export", "no_repeat_ngram_size", -1),
    ("retrieval", "threshold", 1.5), ("retrieval", "max_key_share", 0.0), ("retrieval", "identity_shadow", 0.0), ("selector", "retrieved", 0),
    ("selector", "similarity", float("nan")), ("selector", "samples", -1), ("selector", "sample_top_p", 0.0),
]


@pytest.mark.parametrize("section, key, value", BAD_VALUES, ids=[f"{s}.{k}={v!r}" for s, k, v in BAD_VALUES])
def test_every_bad_value_is_one_config_error_naming_key_value_and_what_is_allowed(section, key, value):
    with pytest.raises(ConfigError) as caught:
        build_config("tiny", overrides={section: {key: value}})
    message = str(caught.value)
    assert "\n" not in message and "is not allowed:" in message
    assert f"{section}.{key}" in message or (key == "num_heads" and "model.hidden_dim" in message)


def test_bad_values_in_a_yaml_file_and_bad_yaml_are_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  ema_momentum: 1.5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"train.ema_momentum=1.5 is not allowed"):
        build_config("seed", path)
    path.write_text("train: [oops\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="c.yaml: not valid YAML"):
        build_config("seed", path)
    path.write_text("- a list\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a mapping"):
        build_config("seed", path)
    with pytest.raises(ConfigError, match="cannot read"):
        build_config("seed", tmp_path / "missing.yaml")


def test_save_and_load_round_trip(tmp_path):
    config = build_config("tiny", overrides={"data": {"sources": ["x.csv", "y.json@2"]}})
    config.save(tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config


def test_config_files_with_the_old_single_data_path_still_load(tmp_path):
    (tmp_path / "config.yaml").write_text("preset: tiny\ndata:\n  path: old.csv\n", encoding="utf-8")
    assert load_config(tmp_path / "config.yaml").data.sources == ["old.csv"]
    assert build_config("tiny", overrides={"data": {"path": None}}).data.sources == []


def test_the_old_name_of_the_sequence_length_still_loads_and_overrides(tmp_path):
    (tmp_path / "config.yaml").write_text("preset: tiny\ndata:\n  max_length: 96\n", encoding="utf-8")
    assert load_config(tmp_path / "config.yaml").data.sequence_length == 96
    assert build_config("seed", overrides=dotted_to_nested(["data.max_length=64"])).data.sequence_length == 64


def test_runs_saved_before_ema_weight_decay_and_auto_precision_load_as_trained(tmp_path):
    (tmp_path / "config.yaml").write_text("preset: seed\ntrain:\n  epochs: 30\n", encoding="utf-8")
    old = load_config(tmp_path / "config.yaml")
    assert (old.train.ema_momentum, old.train.monitor, old.train.weight_decay) == (0.0, "val_loss", 0.0)
    assert old.train.mixed_precision == "none"
    (tmp_path / "config.yaml").write_text(
        "preset: seed\ntrain:\n  ema_momentum: 0.998\n  monitor: val_perplexity\n", encoding="utf-8"
    )  # Saved after EMA, before weight decay.
    assert load_config(tmp_path / "config.yaml").train.weight_decay == 0.0
    new = build_config("seed", overrides=dotted_to_nested(["train.epochs=5"]))  # Overrides are not migrated.
    assert (new.train.ema_momentum, new.train.monitor, new.train.weight_decay) == (0.995, "val_perplexity", 0.5)
    assert new.train.mixed_precision == "auto"
