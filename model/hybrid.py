"""A reply and where it came from (`Selection`), and the threshold hybrid: retrieved where the corpus knows the question.

The default reply path chooses among candidates with the selector (`model/selector.py`);
with `selector.enabled: false` it is the **threshold** design (`threshold_selection`): the
response of the most similar training key when that similarity reaches
`retrieval.threshold`, else the generated reply. The generator runs only for the rows that
need it, so a close question is answered in about the time retrieval takes. (The model
reranking measured earlier, similarity and likelihood with hand-set weights, is the
selector with those two weights.)

Graph-safe, core ops only; `serving/signatures.py` runs it in every exported
signature, and `chat.py` and `evaluate.py` run those same functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf


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
