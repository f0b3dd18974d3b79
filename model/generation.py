"""Turning a trained model into replies: cached decoding with greedy, beam and sampling strategies.

The encoder runs once per request. The decoder then runs one token at a time
with keras-hub's self- and cross-attention caches (`Seq2SeqTransformer.decode_step`),
inside one compiled graph (`tf.function`); the loop itself belongs to a
keras-hub sampler (`GreedySampler`, `BeamSampler`, `TopKSampler`, `TopPSampler`,
`RandomSampler`). What this module adds around the samplers:

- `next` functions: cached, and (for tests and benchmarks) full re-computation;
- decoding controls applied to the logits before the sampler sees them: rows that
  have produced [END] only continue with [PAD] (so finished beams keep their
  score), [PAD]/[START]/[UNK]/[SEP] are never generated, and an optional
  no-repeat n-gram rule;
- beam length penalty (GNMT's ((5 + length) / 6) ** alpha) by re-ranking all beams;
- seeded, reproducible sampling;
- in-graph detokenization with the training text's spacing restored.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras_hub
import numpy as np
import tensorflow as tf

from config import END_ID, PAD_ID, SEP_ID, START_ID, UNK_ID
from model.core_ops import core_op_slice_update

STRATEGIES = ("greedy", "beam", "sample")
NEVER_GENERATED = (PAD_ID, START_ID, UNK_ID, SEP_ID)
NEG_INF = -1e9
# WordPiece detokenization puts a space between every word-level piece ("거예요 ." ,
# "( 웃음 )"). Punctuation that the training text writes attached is re-attached.
_SPACE_BEFORE = r" ([.,!?~…)\]}%':;])"
_SPACE_AFTER = r"([(\[{]) "


@dataclass(frozen=True)
class DecodingSettings:
    """How to pick reply tokens. Every field is a Python value fixed when a graph is traced."""

    strategy: str = "greedy"  # greedy | beam | sample
    max_reply_length: int = 24  # Reply tokens, [END] included.
    num_beams: int = 4
    length_penalty: float = 0.6  # Beam: GNMT alpha; 0 ranks by log-probability alone.
    temperature: float = 1.0
    top_k: int = 0  # Sample: keep the k most likely tokens (0: all).
    top_p: float = 1.0  # Sample: keep the smallest set with this much probability (1: all).
    no_repeat_ngram_size: int = 0  # 0: off; n: never repeat an n-gram within a reply.
    seed: int | None = None  # Sample: fixes the random draws (same seed, same replies).
    stop_at_end: bool = True  # False: always run max_reply_length steps (benchmarks).

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.max_reply_length < 1 or self.num_beams < 1 or self.no_repeat_ngram_size < 0:
            raise ValueError(f"invalid decoding settings: {self}")
        if self.temperature <= 0 or not 0 < self.top_p <= 1 or self.top_k < 0:
            raise ValueError(f"temperature must be > 0, top_p in (0, 1], top_k >= 0: {self}")


def restore_spacing(text: tf.Tensor) -> tf.Tensor:
    """Re-attach punctuation that WordPiece detokenization spaced out (string ops, in graph)."""
    text = tf.strings.regex_replace(text, _SPACE_BEFORE, r"\1")
    return tf.strings.regex_replace(text, _SPACE_AFTER, r"\1")


def finished_rows(prompt: tf.Tensor, index) -> tf.Tensor:
    """[B] bool: the row has produced [END] before position `index`."""
    positions = tf.range(tf.shape(prompt)[1])
    return tf.reduce_any((prompt == END_ID) & (positions[None, :] < index), axis=1)


def banned_ngram_tokens(prompt: tf.Tensor, index, n: int, vocabulary_size: int) -> tf.Tensor:
    """[B, V] bool: tokens that would repeat an n-gram already in prompt[:, :index]."""
    length = prompt.shape[1]
    if n < 1 or length is None or length < n:
        return tf.zeros([tf.shape(prompt)[0], vocabulary_size], tf.bool)
    windows = tf.stack([prompt[:, k : length - n + 1 + k] for k in range(n)], axis=-1)  # [B, W, n]
    start = tf.maximum(index - (n - 1), 0)
    last = tf.slice(prompt, [0, start], [-1, n - 1])  # [B, n - 1]: the tokens before `index`.
    same_prefix = tf.reduce_all(tf.equal(windows[:, :, : n - 1], last[:, None, :]), axis=-1)  # [B, W]
    window_end = tf.range(length - n + 1) + n - 1
    match = same_prefix & (window_end[None, :] < index) & (index >= n - 1)
    batch = tf.shape(prompt)[0]
    rows = tf.tile(tf.range(batch)[:, None], [1, length - n + 1])
    indices = tf.reshape(tf.stack([rows, windows[:, :, n - 1]], axis=-1), [-1, 2])
    updates = tf.reshape(tf.cast(match, tf.int32), [-1])
    banned = tf.tensor_scatter_nd_max(tf.zeros([batch, vocabulary_size], tf.int32), indices, updates)
    return banned > 0


def apply_controls(logits: tf.Tensor, prompt: tf.Tensor, index, no_repeat_ngram_size: int,
                   continuation_pieces=None) -> tf.Tensor:
    """Mask logits [B, V]: special tokens, repeated n-grams; finished rows emit [PAD] only.

    `continuation_pieces` ([V] bool, WordPiece's "##" pieces) cannot start a reply.
    """
    vocabulary_size = logits.shape[-1]
    never = tf.reduce_any(tf.one_hot(list(NEVER_GENERATED), vocabulary_size) > 0, axis=0)  # [V]
    logits = tf.where(never[None, :], NEG_INF, logits)
    if continuation_pieces is not None:
        logits = tf.where(continuation_pieces[None, :] & tf.equal(index, 1), NEG_INF, logits)
    if no_repeat_ngram_size:
        banned = banned_ngram_tokens(prompt, index, no_repeat_ngram_size, vocabulary_size)
        logits = tf.where(banned, NEG_INF, logits)
    pad_only = tf.where(tf.range(vocabulary_size) == PAD_ID, 0.0, NEG_INF)  # [V]
    return tf.where(finished_rows(prompt, index)[:, None], pad_only[None, :], logits)


def make_sampler(settings: DecodingSettings):
    """The keras-hub sampler for `settings`."""
    if settings.strategy == "greedy":
        return keras_hub.samplers.GreedySampler()
    if settings.strategy == "beam":
        return keras_hub.samplers.BeamSampler(num_beams=settings.num_beams, return_all_beams=True)
    if settings.top_p < 1.0:
        return keras_hub.samplers.TopPSampler(
            p=settings.top_p, k=settings.top_k or None, seed=settings.seed, temperature=settings.temperature
        )
    if settings.top_k:
        return keras_hub.samplers.TopKSampler(k=settings.top_k, seed=settings.seed, temperature=settings.temperature)
    return keras_hub.samplers.RandomSampler(seed=settings.seed, temperature=settings.temperature)


def reply_lengths(reply_ids: tf.Tensor) -> tf.Tensor:
    """[B, ...] lengths up to and including the first [END] (full length if none)."""
    is_end = tf.cast(reply_ids == END_ID, tf.int32)
    has_end = tf.reduce_any(reply_ids == END_ID, axis=-1)
    first_end = tf.argmax(is_end, axis=-1, output_type=tf.int32) + 1
    return tf.where(has_end, first_end, tf.shape(reply_ids)[-1])


def decode_loop(next_fn, prompt, caches, settings: DecodingSettings, sampler) -> tf.Tensor:
    """Run `sampler` from position 1 of `prompt` ([B, T], [START] first) -> reply ids [B, T - 1].

    `next_fn(prompt, caches, index)` returns (logits [B, V] for position `index`, None, caches).
    """
    stop = [END_ID] if settings.stop_at_end else None
    output = sampler(next_fn, prompt, cache=caches, index=1, stop_token_ids=stop)
    if settings.strategy == "beam":
        output = best_beam(*output, alpha=settings.length_penalty)
    return output[:, 1:]


def best_beam(prompts, log_probs, alpha: float):
    """Re-rank beams (prompts [B, K, T], log-probs [B, K]) by GNMT length penalty -> [B, T]."""
    lengths = tf.cast(reply_lengths(prompts[:, :, 1:]), tf.float32)
    scores = log_probs / ((5.0 + lengths) / 6.0) ** alpha
    best = tf.argmax(scores, axis=-1, output_type=tf.int32)
    return tf.gather(prompts, best, axis=1, batch_dims=1)


class ReplyGenerator:
    """Replies from a `Seq2SeqTransformer` and its tokenizer; one compiled graph per setting.

    Args:
        model: a trained `Seq2SeqTransformer`.
        tokenizer: its `WordPieceTokenizer`.
        use_cache: False re-computes the whole prefix at every step (for tests and
            benchmarks; the replies are the same, only slower).
    """

    def __init__(self, model, tokenizer, use_cache: bool = True):
        self.model = model
        self.tokenizer = tokenizer
        self.use_cache = use_cache
        vocabulary = tokenizer.get_vocabulary() if hasattr(tokenizer, "get_vocabulary") else []
        self.continuation_pieces = (
            tf.constant([token.startswith("##") for token in vocabulary]) if vocabulary else None
        )
        self._graphs: dict[DecodingSettings, tuple] = {}

    # -- token ids ---------------------------------------------------------
    def encode(self, contexts: list[str]) -> tf.Tensor:
        """Contexts -> padded [B, S] ids, each keeping its last `max_length` tokens."""
        ids = self.tokenizer(tf.constant(contexts))
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.ragged.constant(ids, dtype=tf.int32)
        ids = tf.cast(ids[:, -self.model.max_length :], tf.int32)
        return ids.to_tensor(default_value=PAD_ID, shape=[None, max(1, int(tf.reduce_max(ids.row_lengths())))])

    def generate_ids(self, encoder_ids, settings: DecodingSettings = DecodingSettings()) -> np.ndarray:
        """[B, S] ids -> [B, max_reply_length] reply ids; [PAD] after [END]."""
        graph, sampler, seed_state = self._graph(settings)
        if seed_state is not None:  # Same seed, same draws: restart the sampler's random stream.
            sampler.seed_generator.state.assign(seed_state)
        return graph(tf.convert_to_tensor(encoder_ids, tf.int32)).numpy()

    def reply(self, contexts: list[str], settings: DecodingSettings = DecodingSettings()) -> list[str]:
        reply_ids = self.generate_ids(self.encode(contexts), settings)
        return [t.decode("utf-8") for t in self.detokenize(tf.constant(reply_ids)).numpy()]

    def detokenize(self, reply_ids: tf.Tensor) -> tf.Tensor:
        """[B, L] reply ids -> [B] strings, cut before [END], spacing restored (graph-safe)."""
        lengths = reply_lengths(reply_ids) - tf.cast(tf.reduce_any(reply_ids == END_ID, axis=-1), tf.int32)
        ragged = tf.RaggedTensor.from_tensor(reply_ids, lengths=lengths)
        text = self.tokenizer.detokenize(ragged)
        return restore_spacing(tf.strings.strip(text))

    # -- graphs ------------------------------------------------------------
    def _graph(self, settings: DecodingSettings):
        if settings not in self._graphs:
            sampler = make_sampler(settings)
            seeded = settings.strategy == "sample" and settings.seed is not None
            seed_state = sampler.seed_generator.state.numpy() if seeded else None

            def generate(ids):
                with core_op_slice_update():  # No Xla* ops in the graph (see model/core_ops.py).
                    return self._generate(ids, settings, sampler)

            graph = tf.function(
                generate,
                input_signature=[tf.TensorSpec([None, None], tf.int32)],
                jit_compile=False,  # TF Serving runs without XLA; measured no faster here either.
            )
            self._graphs[settings] = (graph, sampler, seed_state)
        return self._graphs[settings]

    def _generate(self, encoder_ids, settings: DecodingSettings, sampler):
        model = self.model
        beams = settings.num_beams if settings.strategy == "beam" else 1
        length = min(settings.max_reply_length, model.max_length - 1) + 1  # [START] + reply.
        batch = tf.shape(encoder_ids)[0]
        encoder_outputs, encoder_mask = model.encode(encoder_ids)
        encoder_outputs = tf.repeat(encoder_outputs, beams, axis=0)  # Samplers repeat only prompt and cache.
        encoder_mask = tf.repeat(encoder_mask, beams, axis=0)
        start = tf.fill([batch, 1], START_ID)
        prompt = tf.concat([start, tf.fill([batch, length - 1], PAD_ID)], axis=1)

        if self.use_cache:
            caches = model.empty_caches(batch, tf.shape(encoder_ids)[1], length)
            first_outputs = encoder_outputs[::beams]
            _, caches = model.decode_step(start, 0, first_outputs, encoder_mask[::beams], caches, fill_cross_cache=True)

            def next_fn(prompt, caches, index):
                logits, caches = model.decode_step(prompt[:, index - 1 : index], index - 1, encoder_outputs, encoder_mask, caches)
                return self._controlled(logits, prompt, index, settings), None, caches
        else:
            caches = None

            def next_fn(prompt, caches, index):
                logits = model.decode(prompt[:, :index], encoder_outputs, encoder_mask)[:, -1, :]
                return self._controlled(logits, prompt, index, settings), None, caches

        return decode_loop(next_fn, prompt, caches, settings, sampler)

    def _controlled(self, logits, prompt, index, settings: DecodingSettings):
        return apply_controls(logits, prompt, index, settings.no_repeat_ngram_size, self.continuation_pieces)


def greedy_replies(model, tokenizer, contexts: list[str], max_reply_length: int = 30) -> list[str]:
    """Greedy, cached replies (used for the sample replies printed during training)."""
    generator = ReplyGenerator(model, tokenizer)
    return generator.reply(contexts, DecodingSettings(max_reply_length=max_reply_length))

