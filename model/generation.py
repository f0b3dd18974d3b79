"""Turning a trained model into replies: cached decoding with greedy, beam and sampling strategies.

The encoder runs once per request. The decoder then runs one token at a time
with self- and cross-attention caches, inside one compiled graph (`tf.function`);
the loop itself belongs to a keras-hub sampler (`GreedySampler`, `BeamSampler`,
`TopKSampler`, `TopPSampler`, `RandomSampler`). What this module adds around the samplers:

- `next` functions: the fused cached step (`model/fused_decoding.py`, default),
  keras-hub's cached `TransformerDecoder` step (`Seq2SeqTransformer.decode_step`,
  the reference), and full re-computation (tests and benchmarks);
- decoding controls applied to the logits before the sampler sees them: rows that
  have produced [END] only continue with [PAD] (so finished beams keep their
  score), [PAD]/[START]/[UNK]/[SEP] are never generated, and an optional
  no-repeat n-gram rule;
- beam length penalty (GNMT's ((5 + length) / 6) ** alpha) by re-ranking all beams;
- seeded, reproducible sampling;
- in-graph detokenization with the training text's spacing restored.
"""

from __future__ import annotations

import keras_hub
import numpy as np
import tensorflow as tf

from config import DataConfig, END_ID, PAD_ID, SEP_ID, START_ID, UNK_ID, DecodingSettings
from data_pipeline.context import encoder_token_ids
from model.compat import core_op_slice_update
from model.fused_decoding import NEG_INF, FusedDecoder

DECODERS = ("fused", "keras_hub", "full")  # See `generate_reply_ids`.
# [PERSONA]/[USER]/[BOT] are not listed: in vocabularies older than them ids 5-7 are
# ordinary pieces, and no training target contains them, so the model never learns to emit them.
NEVER_GENERATED = (PAD_ID, START_ID, UNK_ID, SEP_ID)
# WordPiece detokenization puts a space between every word-level piece ("거예요 ." ,
# "( 웃음 )"). Punctuation that the training text writes attached is re-attached.
_SPACE_BEFORE = r" ([.,!?~…)\]}%':;])"
_SPACE_AFTER = r"([(\[{]) "


def restore_spacing(text: tf.Tensor) -> tf.Tensor:
    """Re-attach punctuation that WordPiece detokenization spaced out (string ops, in graph)."""
    text = tf.strings.regex_replace(text, _SPACE_BEFORE, r"\1")
    return tf.strings.regex_replace(text, _SPACE_AFTER, r"\1")


def finished_rows(prompt: tf.Tensor, index) -> tf.Tensor:
    """[B] bool: the row has produced [END] before position `index`."""
    positions = tf.range(tf.shape(prompt)[1])
    return tf.reduce_any((prompt == END_ID) & (positions[None, :] < index), axis=1)


def banned_ngram_tokens(prompt: tf.Tensor, index, n: int, vocabulary_size: int) -> tf.Tensor:
    """[B, V] bool: tokens that would repeat an n-gram already in prompt[:, :index].

    Works for prompts whose length is only known when the graph runs (served replies).
    """
    if n < 1:
        return tf.zeros([tf.shape(prompt)[0], vocabulary_size], tf.bool)
    prompt = tf.pad(prompt, [[0, 0], [0, n]], constant_values=PAD_ID)  # Every slice below exists.
    windows_count = tf.shape(prompt)[1] - n  # Windows starting at 0 .. length - 1.
    windows = tf.stack([prompt[:, k : windows_count + k] for k in range(n)], axis=-1)  # [B, W, n]
    start = tf.maximum(index - (n - 1), 0)
    last = tf.slice(prompt, [0, start], [-1, n - 1])  # [B, n - 1]: the tokens before `index`.
    same_prefix = tf.reduce_all(tf.equal(windows[:, :, : n - 1], last[:, None, :]), axis=-1)  # [B, W]
    window_end = tf.range(windows_count) + n - 1
    match = same_prefix & (window_end[None, :] < index) & (index >= n - 1)
    batch = tf.shape(prompt)[0]
    rows = tf.tile(tf.range(batch)[:, None], [1, windows_count])
    indices = tf.reshape(tf.stack([rows, windows[:, :, n - 1]], axis=-1), [-1, 2])
    updates = tf.reshape(tf.cast(match, tf.int32), [-1])
    banned = tf.tensor_scatter_nd_max(tf.zeros([batch, vocabulary_size], tf.int32), indices, updates)
    return banned > 0


def apply_controls(logits: tf.Tensor, prompt: tf.Tensor, index, no_repeat_ngram_size: int,
                   continuation_pieces=None) -> tf.Tensor:
    """Mask logits [B, V]: special tokens, repeated n-grams; finished rows emit [PAD] only.

    `continuation_pieces` ([V] bool, WordPiece's "##" pieces) cannot start a reply.
    Masks are added as [V] vectors of 0 / NEG_INF built when the graph is traced,
    which costs a decoding step less than selecting over [B, V].
    """
    vocabulary_size = logits.shape[-1]
    never = np.zeros(vocabulary_size, np.float32)
    never[list(NEVER_GENERATED)] = NEG_INF
    logits = logits + never
    if continuation_pieces is not None:
        first_step = tf.cast(tf.equal(index, 1), logits.dtype)
        logits = logits + first_step * tf.where(continuation_pieces, NEG_INF, 0.0)
    if no_repeat_ngram_size:
        banned = banned_ngram_tokens(prompt, index, no_repeat_ngram_size, vocabulary_size)
        logits = tf.where(banned, NEG_INF, logits)
    pad_only = np.full(vocabulary_size, NEG_INF, np.float32)
    pad_only[PAD_ID] = 0.0
    return tf.where(finished_rows(prompt, index)[:, None], pad_only[None, :], logits)


def encode_contexts(tokenizer, contexts: tf.Tensor, sequence_length: int, personas: tf.Tensor | None = None,
                    max_persona_length: int = DataConfig.max_persona_length) -> tf.Tensor:
    """[B] contexts (and [B] personas, "" for none) -> [B, S] encoder ids, [PAD] after each row.

    Packed as in training (`data_pipeline/context.py`). Graph-safe (the exported
    signatures use it); S >= 1 even when every context is empty.
    """
    if personas is None:
        personas = tf.fill(tf.shape(contexts), "")
    ids = encoder_token_ids(tokenizer, personas, contexts, sequence_length, max_persona_length).to_tensor(PAD_ID)
    return tf.pad(ids, [[0, 0], [0, tf.maximum(1 - tf.shape(ids)[1], 0)]], constant_values=PAD_ID)


def detokenize_replies(tokenizer, reply_ids: tf.Tensor) -> tf.Tensor:
    """[B, L] reply ids -> [B] strings, cut before [END], spacing restored (graph-safe)."""
    lengths = reply_lengths(reply_ids) - tf.cast(tf.reduce_any(reply_ids == END_ID, axis=-1), tf.int32)
    ragged = tf.RaggedTensor.from_tensor(reply_ids, lengths=lengths)
    return restore_spacing(tf.strings.strip(tokenizer.detokenize(ragged)))


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


def finish_replies(output, settings: DecodingSettings) -> tf.Tensor:
    """A sampler's output -> reply ids [B, T - 1]: the best beam for beam search, [START] dropped."""
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
        persona: the persona text contexts get unless `reply` is given others (a
            character's, see `model/run_files.py`); "" for none.
        max_persona_length: the run's `data.max_persona_length`.
        decoder: "fused" (default: `model/fused_decoding.py`, the fastest), "keras_hub"
            (keras-hub's cached decoder step) or "full" (re-computes the whole prefix
            at every step); the replies are the same, only the speed differs.
    """

    def __init__(self, model, tokenizer, persona: str = "", max_persona_length: int = DataConfig.max_persona_length, decoder: str = "fused"):
        self.model = model
        self.tokenizer = tokenizer
        self.persona = persona
        self.max_persona_length = max_persona_length
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
        self.decoder = FusedDecoder(model) if decoder == "fused" else decoder
        vocabulary = tokenizer.get_vocabulary() if hasattr(tokenizer, "get_vocabulary") else []
        self.continuation_pieces = (
            tf.constant([token.startswith("##") for token in vocabulary]) if vocabulary else None
        )
        self._graphs: dict[DecodingSettings, tuple] = {}

    # -- token ids ---------------------------------------------------------
    def encode(self, contexts: list[str], personas: list[str] | None = None) -> tf.Tensor:
        """Contexts (and personas; default: this generator's) -> padded [B, S] encoder ids."""
        personas = [self.persona] * len(contexts) if personas is None else personas
        return encode_contexts(self.tokenizer, tf.constant(contexts), self.model.sequence_length,
                               tf.constant(personas, tf.string), self.max_persona_length)

    def generate_ids(self, encoder_ids, settings: DecodingSettings = DecodingSettings()) -> np.ndarray:
        """[B, S] ids -> [B, max_reply_length] reply ids; [PAD] after [END]."""
        graph, sampler, seed_state = self._graph(settings)
        if seed_state is not None:  # Same seed, same draws: restart the sampler's random stream.
            sampler.seed_generator.state.assign(seed_state)
        return graph(tf.convert_to_tensor(encoder_ids, tf.int32)).numpy()

    def reply(self, contexts: list[str], settings: DecodingSettings = DecodingSettings(),
              personas: list[str] | None = None) -> list[str]:
        reply_ids = self.generate_ids(self.encode(contexts, personas), settings)
        return [t.decode("utf-8") for t in self.detokenize(tf.constant(reply_ids)).numpy()]

    def detokenize(self, reply_ids: tf.Tensor) -> tf.Tensor:
        return detokenize_replies(self.tokenizer, reply_ids)

    # -- graphs ------------------------------------------------------------
    def _graph(self, settings: DecodingSettings):
        if settings not in self._graphs:
            sampler = make_sampler(settings)
            seeded = settings.strategy == "sample" and settings.seed is not None
            seed_state = sampler.seed_generator.state.numpy() if seeded else None

            def generate(ids):
                with core_op_slice_update():  # No Xla* ops in the graph (see model/compat.py).
                    return self._generate(ids, settings, sampler)

            graph = tf.function(
                generate,
                input_signature=[tf.TensorSpec([None, None], tf.int32)],
                jit_compile=False,  # TF Serving runs without XLA; measured no faster here either.
            )
            self._graphs[settings] = (graph, sampler, seed_state)
        return self._graphs[settings]

    def _generate(self, encoder_ids, settings: DecodingSettings, sampler):
        def controlled(logits, prompt, index):
            return apply_controls(logits, prompt, index, settings.no_repeat_ngram_size, self.continuation_pieces)

        reply_ids = generate_reply_ids(
            self.model, encoder_ids, sampler, settings.max_reply_length, controlled,
            beams=settings.num_beams if settings.strategy == "beam" else 1,
            stop_at_end=settings.stop_at_end, decoder=self.decoder,
        )
        return finish_replies(reply_ids, settings)


def generate_reply_ids(model, encoder_ids, sampler, max_reply_length, controlled, beams: int = 1,
                       stop_at_end: bool = True, decoder="keras_hub"):
    """Encode once, then run `sampler` over the decoder -> [START] + reply ids [B, L + 1].

    `max_reply_length` (L) may be a tensor; it is capped to what the position
    embeddings cover. `controlled(logits [B, V], prompt, index)` masks or reshapes the
    next-token logits (see `apply_controls`). With `beams` > 1 (`BeamSampler`) the result
    is the sampler's (prompts [B, K, L + 1], log-probabilities [B, K]). `decoder`: a
    `FusedDecoder` of `model` (the fast cached step), "keras_hub" (keras-hub's cached
    `TransformerDecoder` step) or "full" (re-computes the whole prefix at every step);
    all three give the same tokens.
    """
    length = tf.minimum(tf.cast(max_reply_length, tf.int32), model.sequence_length - 1) + 1  # [START] + reply.
    batch = tf.shape(encoder_ids)[0]
    encoder_outputs, encoder_mask = model.encode(encoder_ids)
    encoder_outputs = tf.repeat(encoder_outputs, beams, axis=0)  # Samplers repeat only prompt and cache.
    encoder_mask = tf.repeat(encoder_mask, beams, axis=0)
    start = tf.fill([batch, 1], START_ID)
    prompt = tf.concat([start, tf.fill([batch, length - 1], PAD_ID)], axis=1)

    if isinstance(decoder, FusedDecoder):
        # Weights and the encoder's keys/values are read once; the sampler carries
        # (and repeats for beams) only the self-attention caches.
        request, caches = decoder.start(encoder_outputs[::beams], encoder_mask[::beams], length, beams)

        def next_fn(prompt, caches, index):
            logits, caches = decoder.step(prompt[:, index - 1], index - 1, request, caches)
            return controlled(logits, prompt, index), None, caches
    elif decoder == "keras_hub":
        kernel = model.output_kernel()
        caches = model.empty_caches(batch, tf.shape(encoder_ids)[1], length)
        _, caches = model.decode_step(start, 0, encoder_outputs[::beams], encoder_mask[::beams], caches,
                                      fill_cross_cache=True)

        def next_fn(prompt, caches, index):
            token = prompt[:, index - 1 : index]
            logits, caches = model.decode_step(token, index - 1, encoder_outputs, encoder_mask, caches, output_kernel=kernel)
            return controlled(logits, prompt, index), None, caches
    elif decoder == "full":
        caches = None

        def next_fn(prompt, caches, index):
            logits = model.decode(prompt[:, :index], encoder_outputs, encoder_mask)[:, -1, :]
            return controlled(logits, prompt, index), None, caches
    else:
        raise ValueError(f"decoder must be a FusedDecoder, 'keras_hub' or 'full', got {decoder!r}")

    return sampler(next_fn, prompt, cache=caches, index=1, stop_token_ids=[END_ID] if stop_at_end else None)


def sampling_logits(logits, index, temperature, top_k, top_p, seed) -> tf.Tensor:
    """Logits [B, V] whose arg-max is a random draw: temperature, top-k, top-p, Gumbel noise.

    For decoding controls that arrive as tensors (a served request's own settings),
    where keras-hub's samplers fix temperature, k and p when traced. Adding Gumbel
    noise to the filtered log-probabilities and taking the arg-max (the greedy
    sampler) draws exactly from their softmax. The noise depends only on
    (`seed`, `index`), so a request's seed reproduces its reply. `top_k` 0 and
    `top_p` 1 keep every token; like keras-hub's `TopPSampler`, top-p keeps the
    smallest set of most likely tokens whose probability reaches `top_p`.
    """
    vocabulary_size = tf.shape(logits)[-1]
    logits = logits / tf.cast(temperature, logits.dtype)
    ranked = tf.sort(logits, axis=-1, direction="DESCENDING")  # [B, V]
    k = tf.where(top_k > 0, tf.minimum(tf.cast(top_k, tf.int32), vocabulary_size), vocabulary_size)
    ranked_probabilities = tf.nn.softmax(ranked, axis=-1)
    mass_before = tf.cumsum(ranked_probabilities, axis=-1, exclusive=True)
    keep = (mass_before < tf.cast(top_p, logits.dtype)) & (tf.range(vocabulary_size)[None, :] < k)  # [B, V]
    kept = tf.reduce_sum(tf.cast(keep, tf.int32), axis=-1)  # >= 1: the most likely token is always kept.
    threshold = tf.gather(ranked, kept - 1, axis=1, batch_dims=1)  # [B]
    logits = tf.where(logits >= threshold[:, None], logits, NEG_INF)
    seeds = tf.stack([tf.cast(seed, tf.int32), tf.cast(index, tf.int32)])
    uniform = tf.random.stateless_uniform(tf.shape(logits), seeds, minval=1e-20, maxval=1.0)
    return logits - tf.math.log(-tf.math.log(uniform))
