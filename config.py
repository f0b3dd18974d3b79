"""The one place where defaults live: a dataclass tree, presets, YAML and command-line merging.

A run's configuration is built in three layers, each overriding the last:

1. a preset (`seed` — the design card's model — or `tiny` for tests),
2. an optional YAML file (`--config my.yaml`, same nesting as `Config`),
3. command-line overrides, either dedicated flags (`--epochs 5`) or dotted
   keys (`--set model.num_layers=4 train.label_smoothing=0.0`).

The resolved configuration is written to `<run_dir>/config.yaml`, so every run
records exactly what produced it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# Ids 0-4 are fixed; [PERSONA] ends the persona sentences, [USER]/[BOT] mark earlier
# turns (see data_pipeline/context.py). Vocabularies made before these three existed
# still load (`data_pipeline/vocab.py`).
RESERVED_TOKENS = ("[PAD]", "[UNK]", "[START]", "[END]", "[SEP]", "[PERSONA]", "[USER]", "[BOT]")
CORE_RESERVED_TOKENS = RESERVED_TOKENS[:5]
PAD_ID, UNK_ID, START_ID, END_ID, SEP_ID, PERSONA_ID, USER_ID, BOT_ID = range(len(RESERVED_TOKENS))


@dataclass
class DataConfig:
    """Where dialogues come from and how they become examples."""

    # Dialogue files, each "FILE" or "FILE@WEIGHT" (.csv, .json XPersona, .jsonl, .aihub.json);
    # none -> the TFDS `chatbot_data` builder. A weight repeats a source's training examples.
    sources: list[str] = field(default_factory=list)
    character: str | None = None  # Character YAML (name, persona, identity Q/A); see characters/.
    # Give the character's persona to every dialogue without one (and to every request when
    # served). Off by default: at 8 epochs it made greedy replies ignore the question (README).
    character_persona: bool = False
    tfds_data_dir: str | None = None  # TFDS cache; None -> TFDS's default.
    tfds_manual_dir: str | None = None  # Folder holding ChatbotData.csv (offline).
    validation_fraction: float = 0.1
    split_seed: int = 42
    vocab_size: int = 8000
    max_length: int = 40  # Tokens per sequence, [START]/[END] included (encoder: persona + turns).
    context_turns: int = 3  # Earlier turns the encoder sees before the question (0: the question alone).
    max_persona_length: int = 48  # Persona tokens kept (the first ones), [PERSONA] included.


@dataclass
class ModelConfig:
    """Transformer encoder-decoder shape (see `model/transformer.py`)."""

    num_layers: int = 2
    hidden_dim: int = 512  # d_model.
    num_heads: int = 4
    intermediate_dim: int = 256  # Feed-forward width.
    dropout: float = 0.1
    normalize_first: bool = True  # Pre-LN layers (False: post-LN, as in the original paper).


@dataclass
class TrainConfig:
    """Optimisation and the `fit` loop."""

    epochs: int = 30
    batch_size: int = 64
    learning_rate_scale: float = 1.0  # Multiplies the Noam schedule.
    warmup_steps: int = 600  # ~4 epochs of ChatbotData at batch 64.
    label_smoothing: float = 0.1
    word_dropout: float = 0.1  # Share of input tokens replaced by [UNK] in training batches.
    # > 0: validate, checkpoint and keep an exponential moving average of the weights
    # (Keras' optimizer `use_ema`) with this momentum per step; 0: the weights as trained.
    ema_momentum: float = 0.998  # Averages over ~500 steps, ~3 epochs of ChatbotData.
    # > 0: AdamW's decoupled weight decay (per step, scaled by the learning rate) on every
    # kernel and embedding; biases and LayerNorm scales/offsets are never decayed. 0: Adam.
    weight_decay: float = 0.5  # Measured best of 0.05, 0.2, 0.5 on ChatbotData (README, Results).
    # > 0: the learning rate falls linearly to zero over this last share of the planned
    # `epochs` (model/schedule.py). Off: at 0.2 it did not help on ChatbotData (README, Results).
    cooldown_fraction: float = 0.0
    early_stopping_patience: int = 3
    # What early stopping and the best checkpoint minimise: "val_perplexity" (the held-out
    # likelihood of the answers; label smoothing left out) or "val_loss" (the smoothed
    # training objective, whose smoothing term rises as soon as the model grows confident).
    monitor: str = "val_perplexity"
    shuffle_buffer: int = 20000
    jit_compile: bool = False  # Bucketed batches vary in shape; XLA would recompile per shape.
    strategy: str = "default"  # default | mirrored | multi_worker (reads TF_CONFIG); see model/distribution.py.
    # auto | none | mixed_bfloat16 | mixed_float16. auto: mixed_bfloat16 where the hardware
    # computes bfloat16 natively (CPUs with AVX512-BF16 or AMX, GPUs of compute capability 8+),
    # else none (float32). Weights stay float32; model.keras is always saved in float32.
    mixed_precision: str = "auto"
    seed: int = 1234
    sample_questions: list[str] = field(
        default_factory=lambda: [
            "안녕하세요",
            "오늘 너무 피곤해",
            "배고픈데 뭐 먹을까?",
            "헤어진 지 한 달 됐어",
            "주말에 뭐 하지?",
        ]
    )


@dataclass
class ExportConfig:
    """The SavedModel for TF Serving (see `serving/export.py`) and its fixed decoding choices.

    Per-request controls (strategy, temperature, top_k, top_p, max_length, seed) are
    signature inputs; the fields below are fixed when the model is exported.
    """

    base_dir: str = "saved_models"  # Versions go to <base_dir>/<name>/<version>/.
    name: str = "chatbot"  # The TF Serving model name (MODEL_NAME).
    max_reply_length: int = 24  # `serving_default` replies (greedy); [END] included.
    num_beams: int = 4
    length_penalty: float = 0.6  # GNMT alpha for beam search.
    no_repeat_ngram_size: int = 3  # Every strategy; 0 turns it off.


@dataclass
class RetrievalConfig:
    """The index of training examples and the hybrid reply (`model/retrieval.py`, `model/hybrid.py`).

    With `enabled`, `train.py` indexes the training split (what the encoder sees ->
    the response), and every reply path (`serving_default`, `chat`, `chat.py`,
    `evaluate.py`) answers with the most similar training key's response when that
    similarity reaches `threshold`, and with the generator's reply otherwise; a
    request's `retrieval: false` turns it off. Chosen on half of ChatbotData's
    validation split (README, Results).
    """

    enabled: bool = True
    threshold: float = 0.25  # TF-IDF cosine from which the retrieved response is the reply (ChatbotData: 6.5% generate).
    # The index leaves out the postings of n-grams in more than this share of keys (" ", "요", "."):
    # the same top-1 answers on ChatbotData, a third of the query time, a ninth at batch 32.
    max_key_share: float = 0.1
    # > 0: the other design measured instead of the threshold: this many retrieved responses and the
    # generated reply scored by the model (similarity_weight * similarity + mean token log-probability,
    # generation_bonus for the generated one). No better on ChatbotData, 2.1-2.3x greedy's latency (README).
    rerank_top_k: int = 0
    similarity_weight: float = 16.0
    generation_bonus: float = 3.0

    def __post_init__(self):
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"retrieval.threshold must be in [0, 1] (a cosine similarity), got {self.threshold}")
        if not 0.0 < self.max_key_share <= 1.0:
            raise ValueError(f"retrieval.max_key_share must be in (0, 1], got {self.max_key_share}")
        if self.rerank_top_k < 0:
            raise ValueError(f"retrieval.rerank_top_k must be >= 0 (0: the threshold design), got {self.rerank_top_k}")


@dataclass
class Config:
    """Everything a run needs; saved as `<run_dir>/config.yaml`."""

    preset: str = "seed"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: Path) -> None:
        Path(path).write_text(
            yaml.safe_dump(self.to_dict(), allow_unicode=True, sort_keys=False),
            encoding="utf-8",
        )


PRESETS: dict[str, dict] = {
    # The design card's model: 2 layers, d_model 512, 4 heads, feed-forward 256.
    "seed": {},
    # Seconds-scale model for tests.
    "tiny": {
        "data": {"max_length": 24},
        "model": {"num_layers": 1, "hidden_dim": 128, "num_heads": 4, "intermediate_dim": 256},
        "train": {"epochs": 3, "warmup_steps": 300, "ema_momentum": 0.0, "weight_decay": 0.0,
                  "mixed_precision": "none"},
    },
}


def _migrate(loaded: dict) -> dict:
    """Older config files: `data.path` (one file) became `data.sources`."""
    data = loaded.get("data")
    if isinstance(data, dict) and "path" in data:
        path = data.pop("path")
        data.setdefault("sources", [path] if path else [])
    return loaded


def _merge(instance, overrides: dict, where: str = ""):
    """Return a copy of dataclass `instance` with nested `overrides` applied."""
    hints = typing.get_type_hints(type(instance))
    known = {f.name for f in dataclasses.fields(instance)}
    changes = {}
    for key, value in overrides.items():
        name = f"{where}{key}"
        if key not in known:
            raise KeyError(f"unknown config key {name!r}; known keys: {sorted(known)}")
        current = getattr(instance, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise TypeError(f"config key {name!r} is a section; give a mapping")
            changes[key] = _merge(current, value, where=f"{name}.")
        else:
            changes[key] = _coerce(value, hints[key], name)
    return dataclasses.replace(instance, **changes)


def _coerce(value, hint, name: str):
    """Convert a YAML/CLI value to the field's declared type, or fail naming the key."""
    if value is None:
        return None
    if isinstance(value, str):
        parsed = yaml.safe_load(value) if value != "" else value
    else:
        parsed = value
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # `X | None` -> X.
        hint = next(t for t in typing.get_args(hint) if t is not type(None))
    target = typing.get_origin(hint) or hint
    if target is float and isinstance(parsed, int) and not isinstance(parsed, bool):
        return float(parsed)
    if target is str:
        return str(value)
    if not isinstance(parsed, target) or (target is int and isinstance(parsed, bool)):
        raise TypeError(f"config key {name!r} expects {target.__name__}, got {value!r}")
    return parsed


def dotted_to_nested(assignments: list[str]) -> dict:
    """Turn `["model.num_layers=4", ...]` into `{"model": {"num_layers": "4"}}`."""
    nested: dict = {}
    for item in assignments:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like section.key=value")
        key, value = item.split("=", 1)
        node = nested
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def build_config(
    preset: str = "seed",
    yaml_path: str | Path | None = None,
    overrides: dict | None = None,
) -> Config:
    """Preset, then YAML file, then overrides (nested dict)."""
    if preset not in PRESETS:
        raise KeyError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    config = _merge(Config(preset=preset), PRESETS[preset])
    if yaml_path is not None:
        loaded = yaml.safe_load(Path(yaml_path).read_text(encoding="utf-8")) or {}
        loaded.pop("preset", None)
        config = _merge(config, _migrate(loaded))
    if overrides:
        config = _merge(config, _migrate(overrides))
    return config


def load_config(path: str | Path) -> Config:
    """Read a `config.yaml` written by `Config.save`."""
    loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    preset = loaded.pop("preset", "seed")
    train = loaded.get("train")
    if isinstance(train, dict):  # Saved before these keys existed: the run was trained without them.
        if "ema_momentum" not in train:
            train.update(ema_momentum=0.0, monitor=train.get("monitor", "val_loss"))
        train.setdefault("weight_decay", 0.0)
        train.setdefault("mixed_precision", "none")
    return _merge(Config(preset=preset), _migrate(loaded))
