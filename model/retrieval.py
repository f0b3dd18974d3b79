"""Retrieval over the training examples: what the encoder saw -> the response it was taught.

An index maps each distinct training example's *key* (persona and context, the text
the encoder sees, see `key_texts`) to its response. Keys are compared by the cosine of
TF-IDF-weighted character 1-3-grams, hashed into `buckets` feature ids: the
lookup that answers with the training answer of the most similar training question.
Keys holding more than their question (a persona, earlier turns) are also matched by the
question alone (`question_weight`), and in a character run the identity pairs shadow other
sources' examples that ask nearly the same (`identity_shadow`; see `RetrievalIndex.build`).

Everything at query time is core TensorFlow (`UnicodeSplit`, `StringNGrams`,
`StringToHashBucketFast`, `RaggedGather`, `UnsortedSegmentSum`, `TopKV2`, `GatherV2`),
so the index lives inside the exported SavedModel as variables and TF Serving runs it
with XLA disabled. The matrix is stored by feature (compressed sparse columns, the
"postings" of an inverted index): a query reads only the postings of its own n-grams,
so its cost grows with how many keys share its n-grams, not with the whole index.

    index = RetrievalIndex.build(examples)        # from the training split only
    index.save(RunDirectory(run_dir).retrieval_index)
    similarities, rows = index.search(keys, k)    # [B, k] cosine, [B, k] example rows
    responses = index.responses_of(rows)          # [B, k] strings
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from errors import DamagedFile, RunNotFound, damage_of
from run_directory import RunDirectory

NGRAM_WIDTHS = (1, 2, 3)
BUCKETS = 2**18  # Hashed n-gram ids; ChatbotData's keys hold ~70k distinct 1-3-grams.


QUESTION_OF_KEY = r"^.*(\[PERSONA\] |\[SEP\] )"  # Everything up to the last persona or turn separator.

# A message about the user (their own name, their introduction, naming their pet) rather than about the
# bot: a first-person word, or asking how to name, do or say something, and no second-person word. A
# character's identity answers are not retrieved for it ("내 이름은 민지야" is no "이름이 뭐야?").
_WORD_END = r"(\s|$|[.,!?~]|는|가|의|도|를|랑|한테|이|은|만)"
FIRST_PERSON = r"(^|.*\s)(나|내|난|날|저|제|전|우리)" + _WORD_END + r".*"
SECOND_PERSON = r"(^|.*\s)(너|넌|네|니|당신|너의|네가|니가|너네|너희|니네)" + _WORD_END + r".*"
# Asking how to name, do, start, say or write something ("자기소개 어떻게 시작하면 좋을까?").
ASKS_HOW = r".*(지을까|지어|짓지|(어떻게|뭐라고) ?(하|해|할|시작|말|써|쓰)).*"


# A question addressed to the bot: with a second-person word or its name called ("하루야", "하루 씨"), or,
# with no first-person word, an honorific question (the listener's "어디 사세요?", "해외여행 가 보신 적
# 있어요?") or one about what the listener did or does ("주말에 뭐 했어?", "퇴근하고 보통 뭐 해?").
NAMED_BOT = r".*(하루야|하루 ?(씨|님)).*"
HONORIFIC_QUESTION = r".*(\S(신|셨)\s?(적|거|게|데|지)\S*\s.*|(세요|셨어요|셨나요|시나요|십니까|셨죠|시죠|셨어|셔|시니)\s*)[?？]+\s*$"
LISTENERS_DOING = (r".*((었|았|였|했|났|갔|왔|잤|샀|봤|먹었)(어|니|냐|나)|몇 ?살(이야|이니|이냐)?|(키워|먹어|마셔|살아)(니|냐)?|"
                   r"(뭐|뭘) ?(해|하니|하냐))\s*[?？]+\s*$")
QUESTION = r".*([?？]|니|냐)\s*$"


def addresses_the_bot(questions: tf.Tensor) -> tf.Tensor:
    """[B] questions (no persona, no earlier turns) -> [B] bool: asked of the bot itself (its life, its tastes)."""
    def matches(pattern):
        return tf.strings.regex_full_match(questions, pattern)

    first_person = matches(FIRST_PERSON)
    named = matches(SECOND_PERSON) | matches(NAMED_BOT)
    return matches(QUESTION) & (named | ((matches(HONORIFIC_QUESTION) | matches(LISTENERS_DOING)) & ~first_person))


def about_the_user(questions: tf.Tensor) -> tf.Tensor:
    """[B] questions (no persona, no earlier turns) -> [B] bool: about the user, not about the bot."""
    first = tf.strings.regex_full_match(questions, FIRST_PERSON)
    second = tf.strings.regex_full_match(questions, SECOND_PERSON)
    return (first | tf.strings.regex_full_match(questions, ASKS_HOW)) & ~second


def question_texts(keys: tf.Tensor) -> tf.Tensor:
    """[B] keys -> [B] their questions: the last turn, without persona and earlier turns (RE2, greedy)."""
    return tf.strings.regex_replace(keys, QUESTION_OF_KEY, "")


def key_texts(personas: tf.Tensor, contexts: tf.Tensor) -> tf.Tensor:
    """[B] personas ("" for none) and [B] contexts -> [B] keys: what the encoder sees, as text."""
    joined = tf.strings.join([personas, contexts], separator=" [PERSONA] ")
    return tf.where(tf.strings.length(personas) > 0, joined, contexts)


def ngram_ids(texts: tf.Tensor, buckets: int = BUCKETS) -> tf.RaggedTensor:
    """[B] strings -> ragged [B, None] int64 hashed character 1-3-grams (spaces at both ends)."""
    characters = tf.strings.unicode_split(tf.strings.join([" ", texts, " "]), "UTF-8")
    grams = tf.strings.ngrams(characters, ngram_width=list(NGRAM_WIDTHS), separator="")
    return tf.strings.to_hash_bucket_fast(grams, buckets)


def text_vectors(texts: tf.Tensor, idf: tf.Tensor, dims: int = 4096) -> tf.Tensor:
    """[N] texts -> [N, dims] L2-normalised TF-IDF vectors of their character 1-3-grams, folded into `dims`.

    For comparing a few texts with each other in a request (what the user said, the candidates):
    folding the hashed n-grams into `dims` columns makes a cosine a small matmul, at the price of
    rare collisions. `idf` [buckets]: an index's (`RetrievalIndex.idf`). An empty text is the zero vector.
    """
    ids = ngram_ids(texts, int(idf.shape[0]))
    count = tf.shape(texts, out_type=tf.int64)[0]
    cells = ids.value_rowids() * dims + ids.flat_values % dims
    dense = tf.math.unsorted_segment_sum(tf.gather(idf, ids.flat_values), cells, count * dims)
    spoken = tf.cast(tf.strings.length(tf.strings.strip(texts)) > 0, tf.float32)[:, None]  # "": no vector.
    return tf.math.l2_normalize(tf.reshape(dense, [count, dims]), axis=1) * spoken


def _tfidf_rows(ids: list[np.ndarray], idf: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per key: (distinct feature ids, L2-normalised count * idf)."""
    rows = []
    for key_ids in ids:
        features, counts = np.unique(key_ids, return_counts=True)
        weights = counts * idf[features]
        rows.append((features, (weights / max(np.linalg.norm(weights), 1e-12)).astype(np.float32)))
    return rows


def _without_other_personas(examples) -> list:
    """In a character run, the examples spoken without a persona or with the character's own.

    Other sources' persona-bound responses (XPersona's "난 초등학교 교사야") speak for their
    dialogue's persona: retrieved for the character, they would be its life.
    """
    from data_pipeline.character import is_identity_source

    own = {e.persona for e in examples if is_identity_source(e.source)}  # The character's persona, or "".
    if not own:
        return examples
    return [e for e in examples if not e.persona or e.persona in own]


def _not_shadowed(examples, threshold: float, buckets: int) -> list:
    """`examples` without the non-identity ones whose context is >= `threshold` similar to an identity question."""
    from data_pipeline.character import is_identity_source

    identity = [e.context for e in examples if is_identity_source(e.source)]
    if not identity or len(identity) == len(examples):
        return examples
    contexts = RetrievalIndex._from_pairs([e.context for e in examples], [""] * len(examples), buckets)
    closest = np.zeros(len(examples), np.float32)
    for start in range(0, len(identity), 256):
        batch = contexts.similarities(tf.constant(identity[start:start + 256])).numpy()
        closest = np.maximum(closest, batch.max(axis=0))
    return [e for e, similarity in zip(examples, closest)
            if similarity < threshold - 1e-5 or is_identity_source(e.source)]  # float32: a repeat is ~1 - 6e-8.


class RetrievalIndex(tf.Module):
    """TF-IDF character n-gram index of (key, response) pairs, searchable in a graph.

    Args:
        keys, responses: the distinct training pairs, in index order (row i).
        idf: [buckets] inverse document frequency (smoothed, as scikit-learn's).
        postings_splits: [buckets + 1] int64; postings of feature f are
            `postings_rows[splits[f]:splits[f + 1]]` with `postings_values` there.
    """

    def __init__(self, keys, responses, idf, postings_splits, postings_rows, postings_values,
                 questions: "RetrievalIndex | None" = None, question_weight: float = 0.0):
        super().__init__(name="retrieval_index")
        # Keys with a persona or earlier turns are also matched by their question alone:
        # similarity = (1 - question_weight) * key cosine + question_weight * question cosine.
        self.questions, self.question_weight = questions, float(question_weight)
        self.shadowed = 0  # Examples left out because a character's identity pair shadows them (`build`).
        self.other_personas_left_out = 0  # Examples spoken for another persona, left out in a character run.
        self.built_with: tuple | None = None  # `build`'s settings, in the order of `BUILD_SETTINGS`.
        self.keys = list(keys)
        self.size = len(self.keys)
        self.buckets = int(len(idf))
        self.responses = tf.Variable(tf.constant(list(responses), tf.string), trainable=False, name="responses")
        self.idf = tf.Variable(np.asarray(idf, np.float32), trainable=False, name="idf")
        self.postings_splits = tf.Variable(np.asarray(postings_splits, np.int64), trainable=False, name="splits")
        self.postings_rows = tf.Variable(np.asarray(postings_rows, np.int32), trainable=False, name="rows")
        self.postings_values = tf.Variable(np.asarray(postings_values, np.float32), trainable=False, name="values")
        # [N] bool: rows answering a character's identity question, held back from messages `about_the_user`.
        self.identity_rows = tf.Variable(np.zeros(self.size, bool), trainable=False, name="identity_rows")
        self.holds_identity = False  # Whether any row is one (`identity_when_asked`); otherwise nothing to hold back.
        # [N] bool: rows the character itself speaks (its identity answers, its dialogues); the only ones
        # retrieved for a message `addresses_the_bot` (`voice_when_addressed`).
        self.voice_rows = tf.Variable(np.zeros(self.size, bool), trainable=False, name="voice_rows")
        self.holds_voice = False

    # -- building ------------------------------------------------------------
    @classmethod
    def build(cls, examples, buckets: int = BUCKETS, max_key_share: float = 1.0,
              identity_shadow: float = 1.0, question_weight: float = 0.0,
              other_personas: bool = True, identity_when_asked: bool = False, voice_when_addressed: bool = False,
              voice_files: frozenset[str] = frozenset()) -> "RetrievalIndex":
        """From training examples (`data_pipeline.examples.Example`); duplicates are kept once.

        `max_key_share` < 1 leaves out the postings of n-grams found in more than that
        share of keys (" ", "요", "."): they weigh little, and reading them is most of a
        query's cost. Norms still count them, so similarities stay cosines of the full vectors
        minus those terms' (small) part of the dot product.

        A character's identity pairs shadow the other examples whose context (earlier turns and
        question, without the persona) is at least `identity_shadow` similar to an identity question:
        ChatbotData's "넌 누구냐? -> 저는 위로봇입니다." must not answer for the character.

        `other_personas` false leaves out, in a character run (one with identity pairs), the
        examples spoken for a persona other than the character's (`_without_other_personas`).

        `identity_when_asked` marks the rows of a character's identity pairs, which `similarities`
        then holds back from messages about the user (`about_the_user`).

        `voice_when_addressed` marks the rows the character speaks: its identity answers and the examples
        of its dialogue files (`voice_files`: file names, as in `Example.source`). A message that
        `addresses_the_bot` is then answered from those rows alone, never by another source's bot
        (ChatbotData's "그럼요!" to "해외여행 가 보신 적 있어요?").

        `question_weight` > 0 also indexes each key's question (`question_texts`) and mixes its
        cosine in: a persona shared by many dialogues otherwise outweighs what was asked.
        Where every key is its own question (single-turn data without persona) the index holds the
        keys only and a query's question is matched against them (`similarities`).
        """
        examples = list(examples)
        voiced = examples if other_personas else _without_other_personas(examples)
        kept = _not_shadowed(voiced, identity_shadow, buckets)
        from data_pipeline.character import is_identity_source

        def pair_of(e):
            return (e.persona + " [PERSONA] " + e.context if e.persona else e.context, e.response)

        pairs = list(dict.fromkeys(pair_of(e) for e in kept))
        identity = {pair_of(e) for e in kept if is_identity_source(e.source)} if identity_when_asked else set()
        voice = {pair_of(e) for e in kept if is_identity_source(e.source) or _file_of(e.source) in voice_files}
        voice = voice if voice_when_addressed else set()
        if not pairs:
            raise ValueError("cannot build a retrieval index from no examples")
        keys = [k for k, _ in pairs]
        index = cls._from_pairs(keys, [r for _, r in pairs], buckets, max_key_share)
        questions = [q.decode("utf-8") for q in question_texts(tf.constant(keys)).numpy()]  # As queries get them.
        if question_weight > 0 and questions != keys:
            index.questions = cls._from_pairs(questions, [], buckets, max_key_share)
        index.question_weight = float(question_weight)
        index.mark_identity([pair in identity for pair in pairs])
        index.mark_voice([pair in voice for pair in pairs])
        index.shadowed = len(voiced) - len(kept)
        index.other_personas_left_out = len(examples) - len(voiced)
        index.built_with = (max_key_share, identity_shadow, question_weight, float(other_personas),
                            float(identity_when_asked), float(voice_when_addressed))
        return index

    def mark_identity(self, rows) -> None:
        """[N] bool: which rows answer a character's identity question."""
        self.identity_rows.assign(np.asarray(rows, bool))
        self.holds_identity = bool(np.any(rows))

    def mark_voice(self, rows) -> None:
        """[N] bool: which rows the character itself speaks."""
        self.voice_rows.assign(np.asarray(rows, bool))
        self.holds_voice = bool(np.any(rows))

    @classmethod
    def for_run(cls, examples, settings, voice_files=frozenset()) -> "RetrievalIndex":
        """`build` with a run's `config.RetrievalConfig` and its character's dialogue file names: what `train.py`
        and `run_index` index."""
        return cls.build(examples, voice_files=frozenset(voice_files),
                         **{name: getattr(settings, name) for name in BUILD_SETTINGS})

    @classmethod
    def _from_pairs(cls, keys, responses, buckets: int, max_key_share: float = 1.0) -> "RetrievalIndex":
        ids = []
        for start in range(0, len(keys), 4096):
            ids += [row.astype(np.int64) for row in ngram_ids(tf.constant(keys[start:start + 4096]), buckets).numpy()]
        document_frequency = np.zeros(buckets, np.int64)
        for key_ids in ids:
            document_frequency[np.unique(key_ids)] += 1
        idf = (np.log((1 + len(keys)) / (1 + document_frequency)) + 1).astype(np.float32)
        rows = _tfidf_rows(ids, idf)
        features = np.concatenate([f for f, _ in rows])
        row_ids = np.concatenate([np.full(len(f), i, np.int32) for i, (f, _) in enumerate(rows)])
        values = np.concatenate([v for _, v in rows])
        common = np.flatnonzero(document_frequency > max_key_share * len(keys))
        kept = ~np.isin(features, common)
        features, row_ids, values = features[kept], row_ids[kept], values[kept]
        order = np.argsort(features, kind="stable")  # By feature, then row: compressed sparse columns.
        splits = np.zeros(buckets + 1, np.int64)
        np.cumsum(np.bincount(features, minlength=buckets), out=splits[1:])
        return cls(keys, responses, idf, splits, row_ids[order], values[order])

    def save(self, path: str | Path) -> None:
        np.savez_compressed(
            path, keys=np.array(self.keys, dtype=str), responses=np.array([r.decode("utf-8") for r in self.responses.numpy()], dtype=str),
            idf=self.idf.numpy(), postings_splits=self.postings_splits.numpy(),
            postings_rows=self.postings_rows.numpy(), postings_values=self.postings_values.numpy(),
            built_with=np.array(self.built_with if self.built_with else [], np.float64), shadowed=self.shadowed,
            other_personas_left_out=self.other_personas_left_out, identity_rows=self.identity_rows.numpy(),
            voice_rows=self.voice_rows.numpy(),
            question_weight=self.question_weight, **self._question_arrays(),
        )

    def _question_arrays(self) -> dict:
        if self.questions is None:
            return {}
        q = self.questions
        return {"question_idf": q.idf.numpy(), "question_postings_splits": q.postings_splits.numpy(),
                "question_postings_rows": q.postings_rows.numpy(), "question_postings_values": q.postings_values.numpy()}

    @classmethod
    def load(cls, path: str | Path) -> "RetrievalIndex":
        with np.load(path, allow_pickle=False) as saved:
            questions = None
            if "question_idf" in saved:
                questions = cls([""] * len(saved["keys"]), [], saved["question_idf"], saved["question_postings_splits"],
                                saved["question_postings_rows"], saved["question_postings_values"])
            index = cls(saved["keys"].tolist(), saved["responses"].tolist(), saved["idf"], saved["postings_splits"],
                        saved["postings_rows"], saved["postings_values"], questions,
                        float(saved["question_weight"]) if "question_weight" in saved else 0.0)
            if "built_with" in saved and saved["built_with"].size:
                index.built_with = tuple(float(v) for v in saved["built_with"])
                index.shadowed = int(saved["shadowed"])
                index.other_personas_left_out = int(saved.get("other_personas_left_out", 0))
            if "identity_rows" in saved:
                index.mark_identity(saved["identity_rows"])
            if "voice_rows" in saved:
                index.mark_voice(saved["voice_rows"])
        return index

    def nbytes(self) -> int:
        """Bytes the index holds in memory (variables; the key texts are kept in Python only)."""
        variables = (self.idf, self.postings_splits, self.postings_rows, self.postings_values)
        own = int(sum(v.numpy().nbytes for v in variables) + sum(len(r) for r in self.responses.numpy()))
        return own + (self.questions.nbytes() if self.questions is not None else 0)

    # -- searching (graph-safe) -------------------------------------------------
    def similarities(self, keys: tf.Tensor) -> tf.Tensor:
        """[B] key texts -> [B, N] similarity to every indexed key (cosines; mixed with the questions').

        With `question_weight`, a query's question alone is also matched: against the keys' questions,
        or, where every key is its own question, against the keys themselves (a query with earlier
        turns then still finds the single questions it asks; one without gets the plain cosine).
        """
        scores = self._cosines(keys)
        questions = question_texts(keys)
        if self.question_weight:
            if self.questions is not None:
                question_scores = self.questions._cosines(questions)
            else:
                question_scores = tf.cond(tf.reduce_all(tf.equal(questions, keys)), lambda: scores,
                                          lambda: self._cosines(questions))
            scores = (1.0 - self.question_weight) * scores + self.question_weight * question_scores
        if self.holds_identity:  # Identity answers only where the bot is asked about: never the most similar.
            held = about_the_user(questions)[:, None] & tf.convert_to_tensor(self.identity_rows)[None, :]
            scores = tf.where(held, scores - 2.0, scores)
        if self.holds_voice:  # Asked of the bot itself: the character's own lines first, every other row after them.
            held = addresses_the_bot(questions)[:, None] & ~tf.convert_to_tensor(self.voice_rows)[None, :]
            scores = tf.where(held, scores - 2.0, scores)
        return scores

    def _cosines(self, keys: tf.Tensor) -> tf.Tensor:
        """[B] texts -> [B, N] TF-IDF cosine to every row of this matrix."""
        ids = ngram_ids(keys, self.buckets)
        batch = tf.shape(ids.row_lengths())[0]
        flat_ids, query_rows = ids.flat_values, tf.cast(ids.value_rowids(), tf.int32)
        idf = tf.gather(self.idf, flat_ids)
        # The query's own norm: sum over its distinct n-grams of (count * idf)^2.
        pair = tf.cast(query_rows, tf.int64) * self.buckets + flat_ids
        distinct, position = tf.unique(pair)
        counts = tf.math.unsorted_segment_sum(tf.ones_like(idf), position, tf.shape(distinct)[0])
        distinct_idf = tf.math.unsorted_segment_max(idf, position, tf.shape(distinct)[0])
        distinct_rows = tf.cast(distinct // self.buckets, tf.int32)
        norms = tf.sqrt(tf.math.unsorted_segment_sum(tf.square(counts * distinct_idf), distinct_rows, batch))
        weights = idf / tf.maximum(tf.gather(norms, query_rows), 1e-12)  # One term per occurrence.
        # Each query n-gram adds weight * value to the rows in its postings.
        starts = tf.gather(self.postings_splits, flat_ids)
        hits = tf.ragged.range(starts, tf.gather(self.postings_splits, flat_ids + 1))  # [M, None] positions.
        hit_query = tf.gather(query_rows, hits.value_rowids())
        hit_rows = tf.gather(self.postings_rows, hits.flat_values)
        contributions = tf.gather(weights, hits.value_rowids()) * tf.gather(self.postings_values, hits.flat_values)
        segments = hit_query * self.size + hit_rows
        scores = tf.math.unsorted_segment_sum(contributions, segments, batch * self.size)
        return tf.reshape(scores, [batch, self.size])

    def search(self, keys: tf.Tensor, k: int) -> tuple[tf.Tensor, tf.Tensor]:
        """[B] key texts -> ([B, k] cosine similarities, [B, k] int32 rows), most similar first."""
        return tf.math.top_k(self.similarities(keys), k=min(k, self.size), sorted=True)

    def responses_of(self, rows: tf.Tensor) -> tf.Tensor:
        return tf.gather(self.responses, rows)


# The `config.RetrievalConfig` fields `RetrievalIndex.build` takes, in the order of its `built_with`.
BUILD_SETTINGS = ("max_key_share", "identity_shadow", "question_weight", "other_personas", "identity_when_asked",
                  "voice_when_addressed")


def _file_of(source: str) -> str:
    """The file name of an example's "path:line" source."""
    return source.rsplit(":", 1)[0].replace("\\", "/").rsplit("/", 1)[-1]


def settings_of(settings) -> tuple:
    """A `config.RetrievalConfig`'s build settings as the `built_with` tuple of an index built with them."""
    return tuple(float(getattr(settings, name)) for name in BUILD_SETTINGS)


def run_index(run_dir: str | Path, settings=None) -> RetrievalIndex:
    """The run's index (its `retrieval_index.npz`), built from its training split when missing.

    `settings` is the run's `config.RetrievalConfig` (`BUILD_SETTINGS`; see `RetrievalIndex.build`).
    An index saved under other settings, or before they existed, or damaged, is rebuilt from `data/train.jsonl`,
    the split the run trained on, so no validation example is ever indexed and every reply path
    searches the index the settings describe.
    """
    from config import RetrievalConfig
    from data_pipeline.examples import load_examples

    from data_pipeline.loading import run_character

    settings = settings or RetrievalConfig()
    run = RunDirectory(run_dir)
    path, train_split = run.retrieval_index, run.train_split
    if path.exists():
        try:
            index = RetrievalIndex.load(path)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:  # Truncated, empty, foreign.
            if not train_split.exists():
                raise DamagedFile(f"{path} is damaged ({damage_of(error)}) and {train_split.relative_to(run.root)} "
                                  "is missing to rebuild it from") from error
            print(f"{path} is damaged ({damage_of(error)}); rebuilding it from "
                  f"{train_split.relative_to(run.root)}, the split the run trained on", file=sys.stderr)
        else:
            if index.built_with == settings_of(settings) or not train_split.exists():
                return index
    elif not train_split.exists():
        raise RunNotFound(f"{run} has no {path.name} and no {train_split.relative_to(run.root)} to build it from")
    character = run_character(run_dir)
    index = RetrievalIndex.for_run(load_examples(train_split), settings, character.dialogue_files() if character else ())
    save_atomically(index, path)
    return index


def save_atomically(index: RetrievalIndex, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    index.save(tmp)
    tmp.replace(path)
