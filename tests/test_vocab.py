"""data_pipeline/vocab.py: Korean-safe WordPiece, reserved ids, save/load."""

import unicodedata

import pytest
import tensorflow as tf

from config import PAD_ID, RESERVED_TOKENS, SEP_ID
from data_pipeline.vocab import load_vocabulary, save_vocabulary


def detokenize(tokenizer, ids):
    text = tokenizer.detokenize(tf.constant([ids], tf.int32))[0]
    return text.decode("utf-8") if isinstance(text, bytes) else str(text)


def test_reserved_tokens_first(vocabulary):
    assert tuple(vocabulary[: len(RESERVED_TOKENS)]) == RESERVED_TOKENS
    assert vocabulary[PAD_ID] == "[PAD]"


def test_korean_round_trip_keeps_syllables(tokenizer):
    text = "오늘 날씨 정말 좋네요 같이 산책 갈래요"
    ids = [int(i) for i in tokenizer(tf.constant([text]))[0]]
    assert 1 not in ids  # No [UNK]: every syllable is in the vocabulary.
    back = detokenize(tokenizer, ids)
    assert back == text
    assert unicodedata.is_normalized("NFC", back)
    assert not any("\u1100" <= ch <= "\u11ff" for ch in back)  # No decomposed jamo.


def test_vocabulary_has_no_jamo_pieces(vocabulary):
    jamo = [t for t in vocabulary if any("\u1100" <= ch <= "\u11ff" for ch in t)]
    assert not jamo


def test_sep_is_one_token(tokenizer):
    ids = [int(i) for i in tokenizer(tf.constant(["안녕 [SEP] 반가워"]))[0]]
    assert ids.count(SEP_ID) == 1


def test_save_load_round_trip(tmp_path, vocabulary):
    save_vocabulary(vocabulary, tmp_path / "vocab.txt")
    assert load_vocabulary(tmp_path / "vocab.txt") == vocabulary
    (tmp_path / "bad.txt").write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(ValueError, match="must start with"):
        load_vocabulary(tmp_path / "bad.txt")
