"""Learn, save and load the WordPiece vocabulary, and build the tokenizer from it.

Korean-safe settings throughout: no lower-casing and no accent stripping, both
of which apply NFD and split Hangul syllables into jamo. The reserved tokens
come first, so `[PAD]` is id 0 (see `config.RESERVED_TOKENS`).
"""

from __future__ import annotations

from pathlib import Path

import keras_hub
import tensorflow as tf

from config import CORE_RESERVED_TOKENS, RESERVED_TOKENS


def learn_vocabulary(texts: list[str], vocab_size: int) -> list[str]:
    """Train WordPiece on `texts` (the training split only) with keras-hub."""
    data = tf.data.Dataset.from_tensor_slices(tf.constant(texts, dtype=tf.string)).batch(1024)
    vocabulary = keras_hub.tokenizers.compute_word_piece_vocabulary(
        data,
        vocabulary_size=vocab_size,
        lowercase=False,
        strip_accents=False,
        reserved_tokens=list(RESERVED_TOKENS),
    )
    return list(vocabulary)


def save_vocabulary(vocabulary: list[str], path: Path) -> None:
    Path(path).write_text("\n".join(vocabulary) + "\n", encoding="utf-8")


def load_vocabulary(path: Path) -> list[str]:
    """A saved vocabulary; ones made before [PERSONA]/[USER]/[BOT] existed start with the first five."""
    vocabulary = Path(path).read_text(encoding="utf-8").splitlines()
    if tuple(vocabulary[: len(CORE_RESERVED_TOKENS)]) != CORE_RESERVED_TOKENS:
        raise ValueError(f"{path}: vocabulary must start with {RESERVED_TOKENS}")
    return vocabulary


def make_tokenizer(vocabulary: list[str]) -> keras_hub.tokenizers.WordPieceTokenizer:
    """A WordPiece tokenizer whose in-graph ops TF Serving can run; `[SEP]` stays one token."""
    tokenizer = keras_hub.tokenizers.WordPieceTokenizer(
        vocabulary=vocabulary,
        lowercase=False,
        strip_accents=False,
        oov_token="[UNK]",
        special_tokens=[token for token in RESERVED_TOKENS if token in vocabulary],
        special_tokens_in_strings=True,
    )
    tokenizer(tf.constant([""]))  # Build once so it can be tracked for export.
    return tokenizer
