"""How likely the model finds a given reply: teacher-forced log-likelihood of candidate replies.

`candidate_log_likelihood` scores C candidate replies per question under the
seq2seq model in one decoder pass (the encoder runs once per question; its outputs
are repeated for the candidates). Replies are tokenized and cut exactly as training
targets are (`data_pipeline/dataset.py`): the first L - 1 tokens as decoder input,
the first L as target, [END] only when the reply fits. Graph-safe and core ops only.
"""

from __future__ import annotations

import tensorflow as tf

from config import END_ID, PAD_ID, START_ID
from data_pipeline.context import as_ragged_ids


def target_ids(tokenizer, replies: tf.Tensor, sequence_length: int) -> tuple[tf.Tensor, tf.Tensor]:
    """[N] replies -> (decoder inputs [N, T], targets [N, T]) int32, [PAD] after each row."""
    ids = as_ragged_ids(tokenizer(replies))[:, :sequence_length]
    rows = tf.shape(replies)[0]
    start = tf.RaggedTensor.from_tensor(tf.fill([rows, 1], START_ID))
    end = tf.RaggedTensor.from_tensor(tf.fill([rows, 1], END_ID))
    decoder_inputs = tf.concat([start, ids], axis=1)[:, :sequence_length]
    targets = tf.concat([ids, end], axis=1)[:, :sequence_length]
    return decoder_inputs.to_tensor(PAD_ID), targets.to_tensor(PAD_ID)


def candidate_log_likelihood(model, tokenizer, encoder_ids: tf.Tensor,
                             candidates: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """[B, S] encoder ids and [B, C] candidate replies -> ([B, C] summed log-probability, [B, C] tokens).

    Token counts include [END].
    """
    batch, count = tf.shape(candidates)[0], tf.shape(candidates)[1]
    decoder_inputs, targets = target_ids(tokenizer, tf.reshape(candidates, [-1]), model.sequence_length)
    encoder_outputs, encoder_mask = model.encode(encoder_ids)
    hidden = model.decode_hidden(decoder_inputs, tf.repeat(encoder_outputs, count, axis=0),
                                 tf.repeat(encoder_mask, count, axis=0))  # [B * C, T, D]
    # The output projection (most of the cost) only where a target token is.
    real = targets != PAD_ID
    positions = tf.where(real)  # [M, 2]
    logits = model.logits(tf.gather_nd(hidden, positions)[None])[0]  # [M, V]
    token_log_probs = tf.gather(tf.nn.log_softmax(logits, axis=-1), tf.gather_nd(targets, positions), batch_dims=1)
    rows = tf.cast(positions[:, 0], tf.int32)
    total = tf.math.unsorted_segment_sum(token_log_probs, rows, batch * count)
    tokens = tf.reduce_sum(tf.cast(real, tf.float32), axis=1)
    return tf.reshape(total, [batch, count]), tf.reshape(tokens, [batch, count])
