"""The one place where defaults live: a dataclass tree, presets, YAML and command-line merging.

A run's configuration is built in three layers, each overriding the last:

1. a preset (`seed` — the design card's model — or `tiny` for tests),
2. an optional YAML file (`--config my.yaml`, same nesting as `Config`),
3. command-line overrides, either dedicated flags (`--epochs 5`) or dotted
   keys (`--set model.num_layers=4 train.label_smoothing=0.0`).

Every section checks its values when it is built (`__post_init__`), so a bad value
fails as one `ConfigError` naming the key, the value and what is allowed, before any
file is written. The resolved configuration is written to `<run_dir>/config.yaml`, so
every run records exactly what produced it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from errors import ConfigError

# Ids 0-4 are fixed; [PERSONA] ends the persona sentences, [USER]/[BOT] mark earlier
# turns (see data_pipeline/context.py). Vocabularies made before these three existed
# still load (`data_pipeline/vocab.py`).
RESERVED_TOKENS = ("[PAD]", "[UNK]", "[START]", "[END]", "[SEP]", "[PERSONA]", "[USER]", "[BOT]")
CORE_RESERVED_TOKENS = RESERVED_TOKENS[:5]
PAD_ID, UNK_ID, START_ID, END_ID, SEP_ID, PERSONA_ID, USER_ID, BOT_ID = range(len(RESERVED_TOKENS))
MONITORS = ("val_perplexity", "val_loss")
LEARNING_RATE_DECAYS = ("rsqrt", "none")  # model/schedule.py
DISTRIBUTION_STRATEGIES = ("default", "mirrored", "multi_worker")  # model/distribution.py
PRECISIONS = ("auto", "none", "mixed_bfloat16", "mixed_float16")  # model/precision.py
# What the reply selector scores each candidate by (model/selector.py); `SelectorConfig` weighs them.
SELECTOR_FEATURES = ("similarity", "generated", "likelihood", "prior", "frequency", "tokens", "echo", "repeat")


def require(ok: bool, key: str, value, allowed: str) -> None:
    """Raise `ConfigError` "key=value: allowed" unless `ok` (NaN fails every range check)."""
    if not ok:
        raise ConfigError(f"{key}={value!r} is not allowed: {allowed}")


def _in_unit_interval(x, upper_open: bool = True) -> bool:
    return 0.0 <= x < 1.0 if upper_open else 0.0 <= x <= 1.0


@dataclass
class DataConfig:
    """Where dialogues come from and how they become examples."""

    # Dialogue files, each "FILE" or "FILE@WEIGHT" (.csv, .json XPersona, .jsonl, .aihub.json);
    # none -> the TFDS `chatbot_data` builder. A weight repeats a source's training examples.
    sources: list[str] = field(default_factory=list)
    # Character YAML (name, persona, identity Q/A, its dialogues; see characters/); None: no character.
    # The default, 하루, trains on the character's own conversations besides `sources` (characters/haru.yaml).
    character: str | None = "characters/haru.yaml"
    # Give the character's persona to every dialogue without one (and to every request when
    # served). Off by default: at 8 epochs it made greedy replies ignore the question (README).
    character_persona: bool = False
    tfds_data_dir: str | None = None  # TFDS cache; None -> TFDS's default.
    tfds_manual_dir: str | None = None  # Folder holding ChatbotData.csv (offline).
    validation_fraction: float = 0.1
    split_seed: int = 42
    vocab_size: int = 8000
    # Tokens per sequence, [START]/[END] included (encoder: persona + turns). A 하루 context (three earlier
    # turns and the message) holds 43 tokens on average, 65 at the 90th percentile; its replies 17 and 24.
    sequence_length: int = 64
    context_turns: int = 3  # Earlier turns the encoder sees before the question (0: the question alone).
    max_persona_length: int = 48  # Persona tokens kept (the first ones), [PERSONA] included.

    def __post_init__(self):
        require(all(isinstance(s, str) and s.strip() for s in self.sources), "data.sources", self.sources,
                "a list of FILE or FILE@WEIGHT entries")
        require(0.0 < self.validation_fraction < 1.0, "data.validation_fraction", self.validation_fraction,
                "a share in (0, 1)")
        require(self.vocab_size >= 2 * len(RESERVED_TOKENS), "data.vocab_size", self.vocab_size,
                f">= {2 * len(RESERVED_TOKENS)} (the {len(RESERVED_TOKENS)} reserved tokens and some pieces)")
        require(self.sequence_length >= 4, "data.sequence_length", self.sequence_length,
                ">= 4 tokens ([START], [END] included)")
        require(self.context_turns >= 0, "data.context_turns", self.context_turns, ">= 0 (0: the question alone)")
        require(self.max_persona_length >= 0, "data.max_persona_length", self.max_persona_length, ">= 0")


@dataclass
class ModelConfig:
    """Transformer encoder-decoder shape (see `model/transformer.py`)."""

    num_layers: int = 2
    hidden_dim: int = 512  # d_model.
    num_heads: int = 4
    intermediate_dim: int = 256  # Feed-forward width.
    dropout: float = 0.1
    normalize_first: bool = True  # Pre-LN layers (False: post-LN, as in the original paper).

    def __post_init__(self):
        for key in ("num_layers", "hidden_dim", "num_heads", "intermediate_dim"):
            require(getattr(self, key) >= 1, f"model.{key}", getattr(self, key), ">= 1")
        require(self.hidden_dim % self.num_heads == 0, "model.hidden_dim", self.hidden_dim,
                f"a multiple of model.num_heads ({self.num_heads})")
        require(_in_unit_interval(self.dropout), "model.dropout", self.dropout, "a rate in [0, 1)")


@dataclass
class TrainConfig:
    """Optimisation and the `fit` loop."""

    # 8: 하루's dialogues and ChatbotData are ~4x the seed's ChatbotData per epoch; 8 epochs fit the
    # quick start's time (configs/single_turn.yaml keeps the seed's 30 on ChatbotData alone).
    epochs: int = 8
    batch_size: int = 64
    learning_rate_scale: float = 1.0  # Multiplies the Noam schedule.
    warmup_steps: int = 600  # ~1.2 epochs of the default mix (~4 of ChatbotData alone) at batch 64.
    label_smoothing: float = 0.1
    word_dropout: float = 0.1  # Share of input tokens replaced by [UNK] in training batches.
    # > 0: validate, checkpoint and keep an exponential moving average of the weights
    # (Keras' optimizer `use_ema`) with this momentum per step; 0: the weights as trained.
    # 0.995 averages over ~200 steps, under half an epoch of the default mix: at 0.998 the average still
    # lagged the trained weights by a wide margin after 2 epochs (perplexity 442 against 311).
    ema_momentum: float = 0.995
    # > 0: AdamW's decoupled weight decay (per step, scaled by the learning rate) on every
    # kernel and embedding; biases and LayerNorm scales/offsets are never decayed. 0: Adam.
    weight_decay: float = 0.5  # Measured best of 0.05, 0.2, 0.5 on ChatbotData (README, Results).
    # > 0: the learning rate falls linearly to zero over this last share of the planned
    # `epochs` (model/schedule.py). Off: at 0.2 it did not help on ChatbotData (README, Results).
    cooldown_fraction: float = 0.0
    # After warm-up: "rsqrt" (Noam: the rate falls as 1/sqrt(step)) or "none" (it stays at the peak).
    learning_rate_decay: str = "rsqrt"
    # 5: the held-out perplexity of the default run flattens for 2-3 epochs near epoch 22 while the token
    # accuracy still climbs, then falls again; at 3 one run of two stopped there (docs/results.md).
    early_stopping_patience: int = 5
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

    def __post_init__(self):
        for key in ("epochs", "batch_size", "warmup_steps", "shuffle_buffer"):
            require(getattr(self, key) >= 1, f"train.{key}", getattr(self, key), ">= 1")
        require(self.learning_rate_scale > 0 and self.learning_rate_scale != float("inf"), "train.learning_rate_scale",
                self.learning_rate_scale, "a finite number > 0")
        for key in ("label_smoothing", "word_dropout", "ema_momentum"):
            require(_in_unit_interval(getattr(self, key)), f"train.{key}", getattr(self, key), "in [0, 1)")
        require(0.0 <= self.weight_decay < float("inf"), "train.weight_decay", self.weight_decay, ">= 0 (0: Adam)")
        require(_in_unit_interval(self.cooldown_fraction, upper_open=False), "train.cooldown_fraction",
                self.cooldown_fraction, "a share of the epochs in [0, 1] (0: off)")
        require(self.learning_rate_decay in LEARNING_RATE_DECAYS, "train.learning_rate_decay",
                self.learning_rate_decay, f"one of {', '.join(LEARNING_RATE_DECAYS)}")
        require(self.early_stopping_patience >= 0, "train.early_stopping_patience", self.early_stopping_patience, ">= 0")
        require(self.monitor in MONITORS, "train.monitor", self.monitor, f"one of {', '.join(MONITORS)}")
        require(self.strategy in DISTRIBUTION_STRATEGIES, "train.strategy", self.strategy,
                f"one of {', '.join(DISTRIBUTION_STRATEGIES)}")
        require(self.mixed_precision in PRECISIONS, "train.mixed_precision", self.mixed_precision,
                f"one of {', '.join(PRECISIONS)}")
        require(all(isinstance(q, str) for q in self.sample_questions), "train.sample_questions",
                self.sample_questions, "a list of texts")


@dataclass
class ExportConfig:
    """The SavedModel for TF Serving (see `serving/export.py`) and its fixed decoding choices.

    Per-request controls (strategy, temperature, top_k, top_p, max_length, seed) are
    signature inputs; the fields below are fixed when the model is exported.
    """

    base_dir: str = "saved_models"  # Versions go to <base_dir>/<name>/<version>/.
    # The folder under base_dir the versions go to; empty: the run directory's name, so a run never
    # publishes into another model's folder (a served one) unless told to (`--name chatbot`).
    name: str = ""
    max_reply_length: int = 32  # Reply tokens, [END] included: 99% of 하루's replies fit (8% need more than 24).
    num_beams: int = 4
    length_penalty: float = 0.6  # GNMT alpha for beam search.
    no_repeat_ngram_size: int = 3  # Every strategy; 0 turns it off.

    def __post_init__(self):
        require("/" not in self.name and self.name.strip() == self.name and self.name not in (".", ".."),
                "export.name", self.name, "a folder name without '/' or surrounding spaces (empty: the run's name)")
        require(self.max_reply_length >= 1, "export.max_reply_length", self.max_reply_length, ">= 1")
        require(self.num_beams >= 1, "export.num_beams", self.num_beams, ">= 1")
        require(0.0 <= self.length_penalty < float("inf"), "export.length_penalty", self.length_penalty, ">= 0")
        require(self.no_repeat_ngram_size >= 0, "export.no_repeat_ngram_size", self.no_repeat_ngram_size,
                ">= 0 (0: off)")


DECODING_STRATEGIES = ("greedy", "beam", "sample")


@dataclass(frozen=True)
class DecodingSettings:
    """How a reply's tokens are picked; the defaults are what `serving_default` serves.

    The one place of the decoding defaults: `chat.py`'s flags, the client's request
    controls, the chat page (through the export's `settings` signature), `evaluate.py`
    and the training-time sample replies start from it. An export fixes `num_beams`,
    `length_penalty` and `no_repeat_ngram_size` (its `ExportConfig`); the others travel
    with each request, where the API calls `max_reply_length` `max_length`. Every field
    is a Python value fixed when a graph is traced.
    """

    strategy: str = "greedy"  # greedy | beam | sample
    max_reply_length: int = ExportConfig.max_reply_length  # Reply tokens, [END] included.
    num_beams: int = ExportConfig.num_beams
    length_penalty: float = ExportConfig.length_penalty  # Beam: GNMT alpha; 0 ranks by log-probability alone.
    temperature: float = 1.0
    top_k: int = 0  # Sample: keep the k most likely tokens (0: all).
    top_p: float = 1.0  # Sample: keep the smallest set with this much probability (1: all).
    no_repeat_ngram_size: int = ExportConfig.no_repeat_ngram_size  # 0: off; n: never repeat an n-gram in a reply.
    seed: int | None = None  # Sample: fixes the random draws (same seed, same replies).
    stop_at_end: bool = True  # False: always run max_reply_length steps (benchmarks).
    retrieval: bool = True  # Choose among retrieved and generated candidates where the run has an index.

    def __post_init__(self):
        require(self.strategy in DECODING_STRATEGIES, "strategy", self.strategy,
                f"one of {', '.join(DECODING_STRATEGIES)}")
        require(self.max_reply_length >= 1, "max_reply_length", self.max_reply_length, ">= 1")
        require(self.num_beams >= 1, "num_beams", self.num_beams, ">= 1")
        require(self.no_repeat_ngram_size >= 0, "no_repeat_ngram_size", self.no_repeat_ngram_size, ">= 0 (0: off)")
        require(0 < self.temperature < float("inf"), "temperature", self.temperature, "a finite number > 0")
        require(0 < self.top_p <= 1, "top_p", self.top_p, "in (0, 1]")
        require(self.top_k >= 0, "top_k", self.top_k, ">= 0 (0: no limit)")


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
    # Similarity from which the retrieved response is the reply: ChatbotData 0.5% generate (0.25: 6.5%, the
    # same chrF); on XPersona 0.25 generated 58% of the replies, 38% of them one collapsed reply (README).
    threshold: float = 0.15
    # The index leaves out the postings of n-grams in more than this share of keys (" ", "요", "."):
    # the same top-1 answers on ChatbotData, a third of the query time, a ninth at batch 32.
    max_key_share: float = 0.1
    # A character's identity pairs shadow other sources' examples whose question is at least this
    # similar to an identity question (1.0: only exact repeats). At 0.7 the haru run names itself for
    # 9 of 10 held-out identity paraphrases instead of 6; ChatbotData's own answers are unchanged (README).
    identity_shadow: float = 0.7
    # Keys with a persona or earlier turns are also matched by their question alone, with this weight:
    # on held-out XPersona the persona-keyed lookup gave one reply to 9.5% of the questions (distinct-2
    # 0.155), at 0.7 2.2% (0.81); ChatbotData is unchanged (README, Results).
    question_weight: float = 0.7
    # In a character run, index responses spoken for another persona (XPersona's: "난 초등학교 교사야")?
    # false leaves them out, so the character never retrieves another persona's life as its own.
    other_personas: bool = False
    # Hold a character's identity answers back from messages about the user ("내 이름은 민지야",
    # "이름은 뭐라고 지을까?", "자기소개는 어떻게 하지?"): the character introduces itself when asked about itself.
    identity_when_asked: bool = True
    # In a character run, answer a message addressed to the bot ("너 어디 살아?", "하루야", "점심 드셨어요?")
    # from the character's own lines only (its identity answers and dialogues), never with another source's
    # bot's life (ChatbotData's "그럼요!" to "해외여행 가 보신 적 있어요?").
    voice_when_addressed: bool = True

    def __post_init__(self):
        require(0.0 <= self.threshold <= 1.0, "retrieval.threshold", self.threshold, "in [0, 1] (a cosine similarity)")
        require(0.0 < self.max_key_share <= 1.0, "retrieval.max_key_share", self.max_key_share, "in (0, 1]")
        require(0.0 <= self.question_weight <= 1.0, "retrieval.question_weight", self.question_weight, "in [0, 1]")
        require(0.0 < self.identity_shadow <= 1.0, "retrieval.identity_shadow", self.identity_shadow,
                "in (0, 1] (a cosine similarity; 1.0: only exact repeats of identity questions)")


@dataclass
class SelectorConfig:
    """How the reply is chosen among candidates (`model/selector.py`) in every reply path.

    With `enabled` (and a retrieval index), each request's candidates are the `retrieved`
    nearest training responses, the generated reply, the beam reply (`beam`) and `samples` sampled
    replies (top-p `sample_top_p`); the reply is the candidate with the highest weighted sum of its
    features. The weights are a logistic regression on blind SSA ratings, fitted and
    cross-validated over questions by `python -m evaluation.fit_selector` (README, Results).
    Off: the threshold hybrid (`retrieval.threshold`).
    """

    enabled: bool = True
    retrieved: int = 3  # Nearest training responses among the candidates.
    beam: bool = False  # The beam reply among the candidates too, besides the request's own generated reply.
    samples: int = 0  # Sampled replies among the candidates (sample-and-rank); 0: none.
    sample_top_p: float = 0.9
    # Feature weights (`SELECTOR_FEATURES`, model/selector.py). For the default 하루 run the most similar
    # retrieved reply (similarity alone) is the best choice measured: over the 300 shared questions and
    # 202 rated turns of held-out 하루 dialogues, every candidate rated blind, it scores SSA 40.3%, a
    # logistic regression on all the features 37.4% on held-out folds, the former weights 30.9%
    # (`python -m evaluation.fit_selector`, docs/results.md): its 8-epoch generator is not yet worth choosing.
    # The seed's single-turn run keeps the weights fitted for its model (configs/single_turn.yaml).
    similarity: float = 1.0
    generated: float = 0.0
    likelihood: float = 0.0
    prior: float = 0.0
    frequency: float = 0.0
    tokens: float = 0.0
    echo: float = 0.0
    repeat: float = 0.0

    def __post_init__(self):
        require(self.retrieved >= 1, "selector.retrieved", self.retrieved, ">= 1")
        require(self.samples >= 0, "selector.samples", self.samples, ">= 0 (0: none)")
        require(0.0 < self.sample_top_p <= 1.0, "selector.sample_top_p", self.sample_top_p, "in (0, 1]")
        for key in SELECTOR_FEATURES:
            require(abs(getattr(self, key)) < float("inf"), f"selector.{key}", getattr(self, key), "a finite number")

    def weights(self) -> list[float]:
        """The weights in `SELECTOR_FEATURES` order."""
        return [float(getattr(self, name)) for name in SELECTOR_FEATURES]


@dataclass
class Config:
    """Everything a run needs; saved as `<run_dir>/config.yaml`."""

    preset: str = "seed"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    selector: SelectorConfig = field(default_factory=SelectorConfig)

    def __post_init__(self):
        require(self.preset in PRESETS, "preset", self.preset, f"one of {', '.join(PRESETS)}")

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
        "data": {"sequence_length": 24, "character": None},
        "model": {"num_layers": 1, "hidden_dim": 128, "num_heads": 4, "intermediate_dim": 256},
        "train": {"epochs": 3, "warmup_steps": 300, "ema_momentum": 0.0, "weight_decay": 0.0,
                  "mixed_precision": "none"},
    },
}


def _migrate(loaded: dict) -> dict:
    """Older config files: `data.path` (one file) became `data.sources`, `data.max_length` became
    `data.sequence_length`; the reranking design of `retrieval` (`rerank_top_k`, `similarity_weight`,
    `generation_bonus`) became `selector`."""
    retrieval = loaded.get("retrieval")
    if isinstance(retrieval, dict):
        for key in ("rerank_top_k", "similarity_weight", "generation_bonus"):
            retrieval.pop(key, None)
    data = loaded.get("data")
    if isinstance(data, dict) and "path" in data:
        path = data.pop("path")
        data.setdefault("sources", [path] if path else [])
    if isinstance(data, dict) and "max_length" in data:
        data.setdefault("sequence_length", data.pop("max_length"))
    return loaded


def _merge(instance, overrides: dict, where: str = ""):
    """Return a copy of dataclass `instance` with nested `overrides` applied."""
    hints = typing.get_type_hints(type(instance))
    known = {f.name for f in dataclasses.fields(instance)}
    changes = {}
    for key, value in overrides.items():
        name = f"{where}{key}"
        if key not in known:
            raise ConfigError(f"unknown config key {name!r}; known keys here: {', '.join(sorted(known))}")
        current = getattr(instance, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {name!r} is a section; give a mapping")
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
        raise ConfigError(f"config key {name!r} expects {target.__name__}, got {value!r}")
    return parsed


def dotted_to_nested(assignments: list[str]) -> dict:
    """Turn `["model.num_layers=4", ...]` into `{"model": {"num_layers": "4"}}`."""
    nested: dict = {}
    for item in assignments:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
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
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(sorted(PRESETS))}")
    config = _merge(Config(preset=preset), PRESETS[preset])
    if yaml_path is not None:
        loaded = _read_yaml(yaml_path)
        loaded.pop("preset", None)
        config = _merge(config, _migrate(loaded))
    if overrides:
        config = _merge(config, _migrate(overrides))
    return config


def _read_yaml(path: str | Path) -> dict:
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the configuration file: {error.strerror or error}") from error
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid YAML: {str(error).splitlines()[0]}") from error
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (data, model, train, ...), got {type(loaded).__name__}")
    return loaded


def load_config(path: str | Path) -> Config:
    """Read a `config.yaml` written by `Config.save`."""
    loaded = _read_yaml(path)
    preset = loaded.pop("preset", "seed")
    train = loaded.get("train")
    if isinstance(train, dict):  # Saved before these keys existed: the run was trained without them.
        if "ema_momentum" not in train:
            train.update(ema_momentum=0.0, monitor=train.get("monitor", "val_loss"))
        train.setdefault("weight_decay", 0.0)
        train.setdefault("mixed_precision", "none")
    return _merge(Config(preset=preset), _migrate(loaded))
