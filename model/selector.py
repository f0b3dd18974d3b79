"""Choosing the reply among candidates: features of each (context, candidate), a linear score, the best one.

Per question (or conversation) the served graph forms candidates (`serving/signatures.py`):
the `selector.retrieved` nearest training responses, the generated reply (the request's
strategy) and `selector.samples` sampled replies (Meena's sample-and-rank). Each gets the
features below, and the reply is the candidate with the highest `weights . features`
(`SelectorConfig`), never an empty one, never one the conversation already heard from the
bot, and never a character's self-introduction to a message about the user
(`introduces`, `model.retrieval.about_the_user`) while another candidate is left.

    similarity   the retrieved key's TF-IDF cosine to the query (0 for generated replies)
    generated    1 for a generated or sampled reply, 0 for a retrieved training response
    likelihood   mean token log p(candidate | context) under the seq2seq model
    prior        mean token log p(candidate | no context): how likely the reply is to anything;
                 a negative weight is Li et al. (2016)'s MMI correction for replies that fit everything
    frequency    log(1 + training keys that have this response): popular answers are generic
    tokens       the candidate's length in WordPiece tokens / 10
    echo         TF-IDF cosine of the candidate and the user's message: does it take up what was said
    repeat       the highest TF-IDF cosine of the candidate and the bot's earlier turns: saying it again

The weights are a logistic regression on blind SSA ratings (`evaluation/fit_selector.py`,
cross-validated over questions). Graph-safe, core ops only.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from config import SELECTOR_FEATURES as FEATURES
from model.candidate_scoring import candidate_log_likelihood
from model.retrieval import text_vectors


class Candidates(NamedTuple):
    """A request's candidate replies and what retrieval knows of them, all [B, C]."""

    texts: tf.Tensor  # string
    similarity: tf.Tensor  # the retrieved key's similarity; 0 for generated replies
    frequency: tf.Tensor  # log(1 + keys sharing the response); 0 for generated replies
    generated: tf.Tensor  # 1.0 for a generated or sampled reply


def response_frequencies(responses) -> np.ndarray:
    """[N] log(1 + how many of `responses` (an index's, one per key) equal each one)."""
    texts = [r.decode("utf-8") if isinstance(r, bytes) else r for r in responses]
    counts: dict[str, int] = {}
    for text in texts:
        counts[text] = counts.get(text, 0) + 1
    return np.log1p(np.array([counts[t] for t in texts], np.float32))


class Turns(NamedTuple):
    """What a conversation said so far, for the features that compare candidates with it."""

    question: tf.Tensor  # [B] the user's message
    bot_turns: tf.Tensor  # [B, T] the bot's earlier turns, "" elsewhere
    idf: tf.Tensor  # [buckets] the retrieval index's inverse document frequencies


def candidate_features(model, tokenizer, encoder_ids, prior_ids, candidates, similarity, frequency,
                       generated, turns: Turns) -> tf.Tensor:
    """[B, C] candidates with [B, C] similarity, frequency and generated (0/1) -> [B, C, len(FEATURES)].

    `encoder_ids` [B, S]: the contexts; `prior_ids` [B, S0]: the same without the context (the
    persona alone, or nothing); `turns`: the conversation's texts.
    """
    log_likelihood, tokens = candidate_log_likelihood(model, tokenizer, encoder_ids, candidates)
    prior, _ = candidate_log_likelihood(model, tokenizer, prior_ids, candidates)
    per_token = tf.maximum(tokens, 1.0)
    echo, repeat = _overlaps(candidates, turns)
    columns = {
        "similarity": similarity, "generated": generated, "likelihood": log_likelihood / per_token,
        "prior": prior / per_token, "frequency": frequency, "tokens": tokens / 10.0, "echo": echo, "repeat": repeat,
    }
    return tf.stack([tf.cast(columns[name], tf.float32) for name in FEATURES], axis=-1)


def _overlaps(candidates: tf.Tensor, turns: Turns) -> tuple[tf.Tensor, tf.Tensor]:
    """[B, C] candidates -> ([B, C] cosine with the question, [B, C] highest cosine with a bot turn (0 for none))."""
    batch, count, said = tf.shape(candidates)[0], tf.shape(candidates)[1], tf.shape(turns.bot_turns)[1]
    texts = tf.concat([tf.reshape(candidates, [-1]), turns.question, tf.reshape(turns.bot_turns, [-1])], axis=0)
    vectors = text_vectors(texts, turns.idf)
    candidate_vectors = tf.reshape(vectors[:batch * count], [batch, count, -1])
    question_vectors = vectors[batch * count:batch * (count + 1)]
    bot_vectors = tf.reshape(vectors[batch * (count + 1):], [batch, said, -1])
    echo = tf.linalg.matvec(candidate_vectors, question_vectors)
    repeat = tf.reduce_max(tf.concat([tf.zeros([batch, count, 1]),
                                      tf.matmul(candidate_vectors, bot_vectors, transpose_b=True)], axis=2), axis=2)
    return echo, repeat


def introduces(texts: tf.Tensor, name: str) -> tf.Tensor:
    """[...] texts -> [...] bool: the text introduces the character `name` ("저는 하루예요", "하루라고 불러 주세요").

    The name next to a copula or a naming word, or after "I am" / "my name is": "오늘 하루 어땠어요?"
    (하루, "a day") is no introduction.
    """
    name = re.escape(name)
    after = rf".*{name}(예요|이에요|입니다|이야|야|라고|라는|라 ).*"
    before = rf".*(저는|전|제 이름은|나는|난|내 이름은|이름은) ?{name}.*"
    return tf.strings.regex_full_match(texts, after) | tf.strings.regex_full_match(texts, before)


def choose(features, weights, candidates, earlier_replies=None, held=None) -> tf.Tensor:
    """[B] index of the best candidate by `features` [B, C, F] . `weights` [F].

    Empty candidates, those equal to one of `earlier_replies` [B, T] (the bot's earlier
    turns, "" for none) and those `held` [B, C] are passed over while a row has any other.
    """
    scores = tf.linalg.matvec(features, tf.cast(weights, tf.float32))
    blocked = tf.strings.length(tf.strings.strip(candidates)) == 0
    if held is not None:
        blocked |= held
    if earlier_replies is not None:
        said = tf.reduce_any(tf.equal(candidates[:, :, None], earlier_replies[:, None, :]) &
                             (tf.strings.length(earlier_replies)[:, None, :] > 0), axis=-1)
        blocked |= said
    left = tf.reduce_any(~blocked, axis=1, keepdims=True)
    scores = tf.where(blocked & left, tf.float32.min, scores)
    return tf.argmax(scores, axis=1, output_type=tf.int32)
