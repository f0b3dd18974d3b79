"""The exported model's graph functions: text in, reply out, everything in between in the graph.

Five signatures:

    serving_default(text [B] string) -> {"reply": [B] string}
        the selected reply (`model/selector.py`): the best by the selector of the k nearest
        retrieved responses, the greedy reply and the configured samples, with the export's
        fixed settings (`ExportConfig`, `RetrievalConfig`, `SelectorConfig`);
    chat(history [B, T] string, strategy [] string, temperature [] float,
         top_k [] int, top_p [] float, max_length [] int, seed [] int,
         retrieval [] bool) -> {"reply": [B] string}
        one conversation per row, oldest turn first, the user's question last, ""
        where a row has fewer turns; the question and the earlier turns the model was
        trained to see are packed as in training (`data_pipeline/context.py`); the
        decoding controls apply to the whole request (the generated candidate is the
        request's strategy); the selector never repeats a reply the bot gave earlier in the
        row while it has another candidate; `retrieval` false: the generator's reply alone;
        a name the user gave ("내 이름은 민지야") is greeted and told back when asked for, and
        a question asking to recall anything else the user said is answered from their earlier
        turns (`model/user_facts.py`);
    retrieve(text [B] string) -> {"responses": [B, k] string, "similarity": [B, k] float}
        the training responses of the k most similar training keys (the lookup);
    character(text [B] string) -> {"name": [B] string, "greeting": [B] string}
        the run's character (exports of runs with one), for the chat page's title;
    settings(text [B] string) -> {"strategy", "temperature", "top_k", "top_p", "max_length",
                                  "retrieval", "num_beams", "length_penalty", "no_repeat_ngram_size": [B]}
        the decoding defaults (`config.DecodingSettings` with the export's fixed fields),
        from which the chat page fills its controls.

All put the run's persona (the character's, when trained with `data.character_persona`)
before the turns, as training did. An export of a run without a retrieval index
(`retrieval.enabled: false`) has no `retrieve` signature and generates every reply.

Inside: NFC normalisation and whitespace folding (as `normalize_text`), WordPiece
tokenization, the cached decoder with a keras-hub sampler (greedy, beam, or greedy
over Gumbel-perturbed logits for sampling, see `sampling_logits`), retrieval, the
candidates' likelihoods and the selector's choice (`selector.enabled: false`: the
threshold hybrid, `model/hybrid.py`), detokenization with the training text's spacing. No `py_function`, and no
`Xla*` op (`core_op_slice_update`), so TF Serving, which runs with XLA disabled, can
serve it. Bad controls, an empty question and a history row of empty turns fail the
request with InvalidArgument (HTTP 400 from TF Serving).
`chat.py` and `evaluate.py` call these same functions in process (`serving/replies.py`).
"""

from __future__ import annotations

import keras_hub
import tensorflow as tf
import tensorflow_text as tf_text

from config import DECODING_STRATEGIES, DataConfig, DecodingSettings, ExportConfig, RetrievalConfig, SelectorConfig
from data_pipeline.context import history_to_context
from model.compat import core_op_slice_update
from model.fused_decoding import FusedDecoder
from model.hybrid import Selection, threshold_selection
from model.retrieval import BUCKETS, about_the_user, key_texts, question_texts
from model.selector import Candidates, Turns, candidate_features, choose, introduces, response_frequencies
from model.user_facts import answer_about_the_user, recall_what_was_said
from model.generation import (
    apply_controls, best_beam, detokenize_replies, encode_contexts, generate_reply_ids, sampling_logits,
)

RETRIEVED_NEIGHBOURS = 8  # Responses the `retrieve` signature returns per question.
TEXT_SPEC = tf.TensorSpec([None], tf.string, name="text")
CHAT_SPECS = (
    tf.TensorSpec([None, None], tf.string, name="history"),
    tf.TensorSpec([], tf.string, name="strategy"),
    tf.TensorSpec([], tf.float32, name="temperature"),
    tf.TensorSpec([], tf.int32, name="top_k"),
    tf.TensorSpec([], tf.float32, name="top_p"),
    tf.TensorSpec([], tf.int32, name="max_length"),
    tf.TensorSpec([], tf.int64, name="seed"),
    tf.TensorSpec([], tf.bool, name="retrieval"),
)


def _static_text(value) -> str | None:
    """A string tensor's value where it is known when the graph is traced (a constant), else None."""
    static = tf.get_static_value(tf.convert_to_tensor(value))
    if static is None:
        return None
    static = static.item() if hasattr(static, "item") else static
    return static.decode("utf-8") if isinstance(static, bytes) else str(static)


def normalize_in_graph(text: tf.Tensor) -> tf.Tensor:
    """NFC, zero-width characters removed, whitespace runs (Unicode separators included) folded, stripped."""
    text = tf.strings.regex_replace(tf_text.normalize_utf8(text, "NFC"), "[\u200b\u2060\ufeff]", "")
    return tf.strings.strip(tf.strings.regex_replace(text, r"[\s\p{Z}]+", " "))


def spoken_turns(history: tf.Tensor) -> tf.RaggedTensor:
    """[B, T] turns, oldest first, "" for none -> [B, None] the spoken turns, normalised.

    InvalidArgument where a row has none.
    """
    turns = normalize_in_graph(history)
    spoken = tf.strings.length(turns) > 0
    check = tf.debugging.assert_equal(tf.reduce_all(tf.reduce_any(spoken, axis=1)), True,
                                      message="input 'history' has a row whose turns are all empty")
    with tf.control_dependencies([check]):
        return tf.ragged.boolean_mask(turns, spoken)


def join_history(history: tf.Tensor, context_turns: int) -> tf.Tensor:
    """[B, T] turns, oldest first, "" for none -> [B] contexts: the question and `context_turns` earlier turns."""
    return history_to_context(spoken_turns(history), context_turns)


def earlier_bot_turns(spoken: tf.RaggedTensor) -> tf.Tensor:
    """[B, None] spoken turns, the user's question last -> [B, T'] the bot's turns, "" elsewhere."""
    return _turns_of(spoken, speaker=1)


def user_turns(spoken: tf.RaggedTensor) -> tf.Tensor:
    """[B, None] spoken turns, the user's question last -> [B, T'] the user's turns (the question included),
    "" elsewhere."""
    return _turns_of(spoken, speaker=0)


def earlier_user_turns(spoken: tf.RaggedTensor) -> tf.Tensor:
    """[B, None] spoken turns, the user's question last -> [B, T'] the user's turns before the question, "" elsewhere."""
    return _turns_of(spoken[:, :-1], speaker=1)  # Without the question, the last turn is the bot's.


def last_turns(spoken: tf.RaggedTensor) -> tf.Tensor:
    """[B, None] spoken turns -> [B] each row's last turn (the question)."""
    return tf.strings.reduce_join(spoken[:, -1:], axis=1)


def _turns_of(spoken: tf.RaggedTensor, speaker: int) -> tf.Tensor:
    """The turns of one speaker, counted from the question (0: the user, 1: the bot), "" elsewhere."""
    from_end = tf.expand_dims(spoken.row_lengths(), 1) - 1 - tf.ragged.range(spoken.row_lengths())
    kept = tf.ragged.map_flat_values(lambda p, t: tf.where(p % 2 == speaker, t, ""), from_end, spoken)
    return kept.to_tensor("")


def normalized_questions(text: tf.Tensor) -> tf.Tensor:
    """[B] questions normalised; InvalidArgument if one is empty (or only whitespace)."""
    questions = normalize_in_graph(text)
    check = tf.debugging.assert_equal(tf.reduce_all(tf.strings.length(questions) > 0), True,
                                      message="input 'text' has an empty question")
    with tf.control_dependencies([check]):
        return tf.identity(questions)


class ServingFunctions:
    """The graph functions of an export, around a trained model, its tokenizer and its retrieval index."""

    def __init__(self, model, tokenizer, context_turns: int, export_config: ExportConfig, stop_at_end: bool = True,
                 persona: str = "", max_persona_length: int = DataConfig.max_persona_length, index=None,
                 retrieval: RetrievalConfig = RetrievalConfig(), character_lines: tuple[str, str] | None = None,
                 selector: SelectorConfig = SelectorConfig()):
        self.model = model
        self.stop_at_end = stop_at_end  # False: always max_length tokens (latency benchmarks only).
        self.tokenizer = tokenizer
        self.context_turns = context_turns  # Earlier turns kept before the question.
        self.persona, self.max_persona_length = persona, max_persona_length
        self.settings = export_config
        self.index = index  # A `RetrievalIndex` of the training split, or None: generation alone.
        self.retrieval = retrieval
        self.selector = selector
        if index is not None:  # log(1 + keys sharing each response): the selector's `frequency`.
            self.frequencies = tf.Variable(response_frequencies(index.responses.numpy()), trainable=False,
                                           name="response_frequencies")
        self.character_lines = character_lines  # (name, greeting) of the run's character, or None.
        self.neighbours = min(RETRIEVED_NEIGHBOURS, index.size) if index is not None else 0  # `retrieve`'s k.
        vocabulary = tokenizer.get_vocabulary()
        self.continuation_pieces = tf.constant([token.startswith("##") for token in vocabulary])
        # The decoder's weights laid out for one token at a time, kept as variables.
        self.decoder = FusedDecoder(model)
        self.greedy = keras_hub.samplers.GreedySampler()
        self.beam = keras_hub.samplers.BeamSampler(num_beams=export_config.num_beams, return_all_beams=True)

    # -- the signatures ---------------------------------------------------------
    def reply(self, text):
        """serving_default: [B] questions -> {"reply": [B] hybrid replies, greedy generation}."""
        contexts = normalized_questions(text)
        settings = self.settings
        return {"reply": self.respond(contexts, self._personas(contexts), tf.constant("greedy"), 1.0, 0, 1.0,
                                      settings.max_reply_length, 0, True).reply}

    def chat(self, history, strategy, temperature, top_k, top_p, max_length, seed, retrieval):
        """chat: [B, T] conversations and decoding controls -> {"reply": [B] replies}.

        `max_length` (the input's name in the API) is the reply's length in tokens, [END] included.
        """
        spoken = spoken_turns(history)  # Normalised once, for the context, the bot's and the user's turns.
        contexts = history_to_context(spoken, self.context_turns)
        replies = self.respond(contexts, self._personas(contexts), strategy, temperature, top_k, top_p,
                               max_length, seed, retrieval, earlier_bot_turns(spoken)).reply
        question = last_turns(spoken)
        replies = recall_what_was_said(earlier_user_turns(spoken), question, replies, self._idf())
        return {"reply": answer_about_the_user(user_turns(spoken), question, replies)}

    def character(self, text):
        """character: [B] anything -> the character's name and greeting per row (the chat page's title)."""
        name, greeting = self.character_lines
        return {"name": tf.fill(tf.shape(text), name), "greeting": tf.fill(tf.shape(text), greeting)}

    def decoding_settings(self, text):
        """settings: [B] anything -> the export's decoding defaults per row (the chat page's controls).

        `config.DecodingSettings` with this export's fixed fields, named as the `chat`
        inputs name them (`max_length`: the reply's tokens); `retrieval` is false where the
        export has no index.
        """
        export = self.settings
        served = DecodingSettings(max_reply_length=export.max_reply_length, num_beams=export.num_beams,
                                  length_penalty=export.length_penalty,
                                  no_repeat_ngram_size=export.no_repeat_ngram_size)
        rows = tf.shape(text)
        values = {"strategy": served.strategy, "temperature": float(served.temperature), "top_k": served.top_k,
                  "top_p": float(served.top_p), "max_length": served.max_reply_length,
                  "retrieval": served.retrieval and self.index is not None, "num_beams": served.num_beams,
                  "length_penalty": float(served.length_penalty), "no_repeat_ngram_size": served.no_repeat_ngram_size}
        return {name: tf.fill(rows, tf.constant(value, dtype=tf.float32 if isinstance(value, float) else None))
                for name, value in values.items()}

    def retrieve(self, text):
        """retrieve: [B] questions -> the responses and similarities of the k nearest training keys."""
        contexts = normalized_questions(text)
        similarity, rows = self.index.search(key_texts(self._personas(contexts), contexts), self.neighbours)
        return {"responses": self.index.responses_of(rows), "similarity": similarity}

    # -- the one reply path (the signatures above; chat.py and evaluate.py in process) ----
    def respond(self, contexts, personas, strategy, temperature, top_k, top_p, max_reply_length, seed,
                retrieval, earlier_replies=None) -> Selection:
        """[B] packed contexts and personas, decoding controls -> the replies and where they came from.

        `earlier_replies` [B, T]: the bot's earlier turns of each conversation ("" for none), which the
        selector does not repeat while it has another candidate.
        """
        strategy_index = self._check_controls(strategy, temperature, top_k, top_p, max_reply_length)
        with tf.control_dependencies([strategy_index]):
            encoder_ids = self._encode(contexts, personas)
        # A strategy (or retrieval switch) fixed when the graph is traced, as serving_default's, builds
        # only its own branch; one that arrives with the request (`chat`) builds them all.
        fixed_strategy = _static_text(strategy)
        fixed_retrieval = tf.get_static_value(tf.convert_to_tensor(retrieval))

        def generate():
            return self._generate(encoder_ids, strategy_index, temperature, top_k, top_p, max_reply_length, seed,
                                  DECODING_STRATEGIES.index(fixed_strategy)
                                  if fixed_strategy in DECODING_STRATEGIES else None)

        batch = tf.shape(contexts)[0]
        if self.index is None:
            return Selection(generate(), tf.zeros([batch], tf.bool), tf.zeros([batch]))
        keys = key_texts(personas, contexts)
        if not self.selector.enabled:
            similarity, rows = self.index.search(keys, 1)
            return threshold_selection(similarity[:, 0], self.index.responses_of(rows[:, 0]), generate,
                                       self.retrieval.threshold, retrieval)

        def select():
            chosen = self._select(keys, encoder_ids, personas, generate(), max_reply_length, seed, earlier_replies)
            return chosen.reply, chosen.retrieved, chosen.similarity

        def generated_only():
            return generate(), tf.zeros([batch], tf.bool), tf.zeros([batch])

        if fixed_retrieval is not None:
            return Selection(*(select() if fixed_retrieval else generated_only()))
        return Selection(*tf.cond(tf.convert_to_tensor(retrieval), select, generated_only))

    def _select(self, keys, encoder_ids, personas, generated, max_reply_length, seed, earlier_replies) -> Selection:
        """The selector's choice among the retrieved responses, `generated` [B] and the sampled replies."""
        candidates = self.candidates(keys, encoder_ids, generated, max_reply_length, seed)
        if earlier_replies is None:
            earlier_replies = tf.fill([tf.shape(keys)[0], 1], "")
        earlier_replies = normalize_in_graph(earlier_replies)
        features = self.features(encoder_ids, personas, candidates, question_texts(keys), earlier_replies)
        held = None
        if self.character_lines is not None:  # No self-introduction to a message about the user.
            held = about_the_user(question_texts(keys))[:, None] & introduces(candidates.texts, self.character_lines[0])
        choice = choose(features, self.selector.weights(), normalize_in_graph(candidates.texts), earlier_replies, held)
        retrieved = tf.gather(candidates.generated, choice, batch_dims=1) == 0
        return Selection(tf.gather(candidates.texts, choice, batch_dims=1), retrieved, candidates.similarity[:, 0])

    def candidates(self, keys, encoder_ids, generated, max_reply_length, seed) -> Candidates:
        """[B, C] candidates: the `selector.retrieved` nearest responses, `generated` [B], the beam reply
        (`selector.beam`), then the samples."""
        similarities, rows = self.index.search(keys, self.selector.retrieved)  # [B, k]
        parts = [self.index.responses_of(rows), generated[:, None]]
        if self.selector.beam:
            with core_op_slice_update():
                parts.append(detokenize_replies(self.tokenizer, self._beam(encoder_ids, max_reply_length))[:, None])
        if self.selector.samples:
            parts.append(self._samples(encoder_ids, max_reply_length, seed))
        texts = tf.concat(parts, axis=1)
        others = tf.zeros([tf.shape(rows)[0], tf.shape(texts)[1] - tf.shape(rows)[1]])
        return Candidates(texts, tf.concat([similarities, others], 1),
                          tf.concat([tf.gather(self.frequencies, rows), others], 1),
                          tf.concat([tf.zeros_like(similarities), tf.ones_like(others)], 1))

    def candidate_table(self, history, max_reply_length, seed, extras):
        """What the selector sees for `chat`'s candidates of `history` [B, T] and for `extras` [B, E] (rated replies).

        -> (texts [B, C], features [B, C, F], extra features [B, E, F]). The generated candidate is
        greedy, as `chat` serves by default. An extra equal to a candidate has its features; any other
        counts as generated. For `evaluation/fit_selector.py`; a single question is a history of one turn.
        """
        spoken = spoken_turns(history)
        contexts = history_to_context(spoken, self.context_turns)
        personas = self._personas(contexts)
        encoder_ids = self._encode(contexts, personas)
        generated = self._generate(encoder_ids, tf.constant(0), tf.constant(1.0), tf.constant(0), tf.constant(1.0),
                                   max_reply_length, seed, fixed_index=0)
        candidates = self.candidates(key_texts(personas, contexts), encoder_ids, generated, max_reply_length, seed)
        same = tf.equal(extras[:, :, None], candidates.texts[:, None, :])  # [B, E, C]
        found = tf.reduce_any(same, axis=-1)
        first = tf.argmax(tf.cast(same, tf.int32), axis=-1, output_type=tf.int32)

        def of_extras(values, otherwise):
            return tf.where(found, tf.gather(values, first, batch_dims=1), otherwise)

        extra = Candidates(extras, of_extras(candidates.similarity, 0.0), of_extras(candidates.frequency, 0.0),
                           of_extras(candidates.generated, 1.0))
        both = Candidates(*(tf.concat([a, b], axis=1) for a, b in zip(candidates, extra)))
        features = self.features(encoder_ids, personas, both, last_turns(spoken), earlier_bot_turns(spoken))
        count = tf.shape(candidates.texts)[1]
        return candidates.texts, features[:, :count], features[:, count:]

    def features(self, encoder_ids, personas, candidates: Candidates, question, bot_turns) -> tf.Tensor:
        """[B, C, F] the selector's features of `candidates` (`model/selector.py`) for the user's message
        `question` [B] after the bot's earlier turns `bot_turns` [B, T] ("" for none)."""
        no_context = self._encode(tf.fill(tf.shape(personas), ""), personas)
        turns = Turns(question, normalize_in_graph(bot_turns), self.index.idf)
        return candidate_features(self.model, self.tokenizer, encoder_ids, no_context, candidates.texts,
                                  candidates.similarity, candidates.frequency, candidates.generated, turns)

    def lookup(self, contexts, personas) -> tf.Tensor:
        """[B] packed contexts and personas -> [B] the most similar training key's response (the anchor)."""
        _, rows = self.index.search(key_texts(personas, contexts), 1)
        return self.index.responses_of(rows[:, 0])

    def _idf(self) -> tf.Tensor:
        """The index's inverse document frequencies (uniform without an index): weights for comparing texts."""
        return self.index.idf if self.index is not None else tf.ones([BUCKETS])

    def _personas(self, contexts):
        return tf.fill(tf.shape(contexts), self.persona)

    def _encode(self, contexts, personas):
        return encode_contexts(self.tokenizer, contexts, self.model.sequence_length, personas, self.max_persona_length)

    # -- strategies: each returns reply ids [B, L] ---------------------------
    def _controlled(self, logits, prompt, index):
        return apply_controls(logits, prompt, index, self.settings.no_repeat_ngram_size, self.continuation_pieces)

    def _decode(self, encoder_ids, sampler, max_reply_length, controlled, beams: int = 1):
        return generate_reply_ids(
            self.model, encoder_ids, sampler, max_reply_length, controlled, beams=beams,
            stop_at_end=self.stop_at_end, decoder=self.decoder,
        )

    def _greedy(self, encoder_ids, max_reply_length):
        return self._decode(encoder_ids, self.greedy, max_reply_length, self._controlled)[:, 1:]

    def _beam(self, encoder_ids, max_reply_length):
        prompts, log_probs = self._decode(encoder_ids, self.beam, max_reply_length, self._controlled, self.settings.num_beams)
        return best_beam(prompts, log_probs, alpha=self.settings.length_penalty)[:, 1:]

    def _sample(self, encoder_ids, max_reply_length, temperature, top_k, top_p, seed):
        def perturbed(logits, prompt, index):
            logits = self._controlled(logits, prompt, index)
            return sampling_logits(logits, index, temperature, top_k, top_p, seed)

        return self._decode(encoder_ids, self.greedy, max_reply_length, perturbed)[:, 1:]

    def _generate(self, encoder_ids, strategy_index, temperature, top_k, top_p, max_reply_length, seed,
                  fixed_index: int | None = None):
        """[B] generated replies by the strategy of `strategy_index` (`DECODING_STRATEGIES`); `fixed_index`:
        the same, known when the graph is traced (only that strategy is built)."""
        branches = [
            lambda: self._greedy(encoder_ids, max_reply_length),
            lambda: self._beam(encoder_ids, max_reply_length),
            lambda: self._sample(encoder_ids, max_reply_length, temperature, top_k, top_p, seed),
        ]
        with core_op_slice_update():  # No Xla* ops in the graph (see model/compat.py).
            if fixed_index is not None:
                reply_ids = branches[fixed_index]()
            else:
                reply_ids = tf.switch_case(strategy_index, branches)
        return detokenize_replies(self.tokenizer, reply_ids)

    def _samples(self, encoder_ids, max_reply_length, seed):
        """[B, N] sampled replies (`selector.samples`, top-p `selector.sample_top_p`) for sample-and-rank."""
        count = self.selector.samples
        with core_op_slice_update():
            ids = self._sample(tf.repeat(encoder_ids, count, axis=0), max_reply_length, tf.constant(1.0), tf.constant(0),
                               tf.constant(self.selector.sample_top_p), seed)
        return tf.reshape(detokenize_replies(self.tokenizer, ids), [-1, count])

    def _check_controls(self, strategy, temperature, top_k, top_p, max_reply_length):
        """The strategy's index; InvalidArgument naming the field for out-of-range controls."""
        matches = tf.equal(tf.constant(DECODING_STRATEGIES), strategy)
        checks = [
            tf.debugging.assert_equal(tf.reduce_any(matches), True,
                                      message=f"strategy must be one of {DECODING_STRATEGIES}"),
            tf.debugging.assert_equal(tf.math.is_finite(temperature), True, message="temperature must be finite"),
            tf.debugging.assert_equal(tf.math.is_finite(top_p), True, message="top_p must be finite"),
            tf.debugging.assert_positive(temperature, message="temperature must be > 0"),
            tf.debugging.assert_non_negative(top_k, message="top_k must be >= 0 (0: no limit)"),
            tf.debugging.assert_positive(top_p, message="top_p must be in (0, 1]"),
            tf.debugging.assert_less_equal(top_p, 1.0, message="top_p must be in (0, 1]"),
            tf.debugging.assert_positive(max_reply_length, message="max_length must be >= 1"),
        ]
        with tf.control_dependencies(checks):
            return tf.argmax(tf.cast(matches, tf.int32), output_type=tf.int32)
