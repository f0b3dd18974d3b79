"""Turning a trained model into replies: greedy decoding and detokenization.

This is the plain greedy decoder used to print sample replies during training:
the encoder runs once, then the decoder re-runs over the whole prefix for each
new token (no cache). Cached decoding and sampling strategies build on it.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from keras import ops

from config import END_ID, PAD_ID, START_ID


def greedy_token_ids(model, encoder_ids, max_reply_length: int) -> np.ndarray:
    """Greedy decoding by full re-computation: [B, S] ids -> [B, <=max_reply_length] reply ids.

    Positions after a sequence's [END] are [PAD].
    """
    encoder_outputs, encoder_mask = model.encode(encoder_ids)
    batch = ops.shape(encoder_ids)[0]
    tokens = np.full((batch, 1), START_ID, dtype=np.int32)
    finished = np.zeros(batch, dtype=bool)
    for _ in range(min(max_reply_length, model.max_length - 1)):
        logits = model.decode(tokens, encoder_outputs, encoder_mask)  # [B, T, V]
        next_ids = ops.convert_to_numpy(ops.argmax(logits[:, -1, :], axis=-1)).astype(np.int32)
        next_ids = np.where(finished, PAD_ID, next_ids)
        tokens = np.concatenate([tokens, next_ids[:, None]], axis=1)
        finished |= next_ids == END_ID
        if finished.all():
            break
    return tokens[:, 1:]


def ids_to_text(tokenizer, reply_ids: np.ndarray) -> list[str]:
    """Reply ids (cut at the first [END]) -> strings."""
    replies = []
    for row in reply_ids:
        row = list(row)
        row = row[: row.index(END_ID)] if END_ID in row else row
        row = [int(i) for i in row if i != PAD_ID]
        replies.append(tokenizer.detokenize(tf.constant([row], tf.int32))[0] if row else "")
    return [r.decode("utf-8") if isinstance(r, bytes) else str(r) for r in replies]


def encode_contexts(tokenizer, contexts: list[str], max_length: int) -> np.ndarray:
    """Contexts -> padded [B, S] ids, keeping each context's last `max_length` tokens."""
    rows = [list(ids)[-max_length:] or [PAD_ID] for ids in tokenizer(tf.constant(contexts))]
    width = max(len(r) for r in rows)
    return np.array([r + [PAD_ID] * (width - len(r)) for r in rows], dtype=np.int32)


def greedy_replies(model, tokenizer, contexts: list[str], max_reply_length: int = 30) -> list[str]:
    encoder_ids = encode_contexts(tokenizer, contexts, model.max_length)
    return ids_to_text(tokenizer, greedy_token_ids(model, encoder_ids, max_reply_length))
