"""Hybrid replies: a retrieved training response where the corpus knows the question, the generator's reply elsewhere.

Two designs were measured on ChatbotData's validation split (README, Results); the
first is the default (`retrieval.rerank_top_k: 0`):

- **threshold** (`threshold_selection`): the response of the most similar training key
  when that similarity reaches `retrieval.threshold`, else the generated reply. The
  generator runs only for the rows that need it, so a close question is answered in
  about the time retrieval takes.
- **model reranking** (`rerank_selection`, `retrieval.rerank_top_k: k`): the k
  retrieved responses and the generated reply are all scored by the seq2seq model,

      retrieved:  similarity_weight * similarity of its key + mean token log-probability
      generated:  generation_bonus                          + mean token log-probability

  and the best wins. It was no better than the threshold and took 2.1-2.3x greedy's
  time per reply (the threshold: 0.06x for a question the corpus knows): the model's
  likelihood picks the right training answer less often than the
  similarity does.

Graph-safe, core ops only; `serving/signatures.py` runs them in every exported
signature, and `chat.py` and `evaluate.py` run those same functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from model.candidate_scoring import candidate_log_likelihood


@dataclass(frozen=True)
class Selection:
    """A batch of replies, all [B]: the text, whether it is a retrieved training response, the top similarity."""

    reply: tf.Tensor  # string
    retrieved: tf.Tensor  # bool
    similarity: tf.Tensor  # float32: of the most similar training key (0 without retrieval)


def threshold_selection(similarity, responses, generate, threshold: float, retrieval) -> Selection:
    """Top-1 `responses` [B] where `similarity` [B] >= `threshold` (and `retrieval`), else `generate()`.

    `generate` () -> [B] generated replies runs only when some row needs one.
    """
    retrieved = tf.logical_and(tf.convert_to_tensor(retrieval), similarity >= threshold)
    generated = tf.cond(tf.reduce_all(retrieved), lambda: tf.fill(tf.shape(responses), ""), generate)
    return Selection(tf.where(retrieved, responses, generated), retrieved, similarity)


def candidate_scores(log_likelihood, tokens, similarities, similarity_weight: float,
                     generation_bonus: float) -> tf.Tensor:
    """[B, k + 1] scores: `similarities` [B, k] of the retrieved candidates, the generated one last."""
    mean_log_probability = log_likelihood / tf.maximum(tokens, 1.0)
    batch = tf.shape(similarities)[0]
    prior = tf.concat([similarity_weight * similarities, tf.fill([batch, 1], generation_bonus)], axis=1)
    return mean_log_probability + prior


def rerank_selection(model, tokenizer, encoder_ids, similarities, responses, generated: tf.Tensor,
                     similarity_weight: float, generation_bonus: float) -> Selection:
    """Choose among the retrieved `responses` [B, k] (their `similarities` [B, k]) and `generated` [B]."""
    candidates = tf.concat([responses, generated[:, None]], axis=1)  # [B, k + 1]
    log_likelihood, tokens = candidate_log_likelihood(model, tokenizer, encoder_ids, candidates)
    scores = candidate_scores(log_likelihood, tokens, similarities, similarity_weight, generation_bonus)
    choice = tf.argmax(scores, axis=-1, output_type=tf.int32)
    retrieved = choice < tf.shape(responses)[1]
    return Selection(tf.gather(candidates, choice, batch_dims=1), retrieved, similarities[:, 0])
