"""config.py: presets, YAML and command-line overrides, type checks, saving."""

import pytest

from config import PRESETS, build_config, dotted_to_nested, load_config


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
    with pytest.raises(KeyError, match="model.num_layerz"):
        build_config("seed", overrides={"model": {"num_layerz": 2}})
    with pytest.raises(TypeError, match="train.epochs"):
        build_config("seed", overrides={"train": {"epochs": "many"}})
    with pytest.raises(KeyError, match="unknown preset"):
        build_config("huge")
    with pytest.raises(ValueError, match="section.key=value"):
        dotted_to_nested(["epochs"])


def test_save_and_load_round_trip(tmp_path):
    config = build_config("tiny", overrides={"data": {"sources": ["x.csv", "y.json@2"]}})
    config.save(tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config


def test_config_files_with_the_old_single_data_path_still_load(tmp_path):
    (tmp_path / "config.yaml").write_text("preset: tiny\ndata:\n  path: old.csv\n", encoding="utf-8")
    assert load_config(tmp_path / "config.yaml").data.sources == ["old.csv"]
    assert build_config("tiny", overrides={"data": {"path": None}}).data.sources == []


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
    assert (new.train.ema_momentum, new.train.monitor, new.train.weight_decay) == (0.998, "val_perplexity", 0.5)
    assert new.train.mixed_precision == "auto"
