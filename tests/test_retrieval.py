"""model/retrieval.py: the TF-IDF character n-gram index, checked against a plain-Python cosine."""

import math
from collections import Counter

import numpy as np
import pytest
import tensorflow as tf

from data_pipeline.examples import Example
from model.retrieval import RetrievalIndex, about_the_user, addresses_the_bot, key_texts, run_index
from run_directory import RunDirectory

PAIRS = [
    ("배고파", "뭐라도 드세요."), ("배고픈데 뭐 먹을까?", "맛있는 거 드세요."), ("오늘 너무 피곤해", "푹 쉬세요."),
    ("피곤해서 잠이 와", "일찍 주무세요."), ("헤어졌어", "많이 힘들겠어요."), ("주말에 뭐 하지?", "저랑 놀아요."),
    ("배고파", "뭐라도 드세요."),  # A duplicate pair: indexed once.
]
EXAMPLES = [Example(q, a) for q, a in PAIRS]


def grams(text: str) -> Counter:
    padded = f" {text} "
    return Counter(padded[i:i + n] for n in (1, 2, 3) for i in range(len(padded) - n + 1))


def python_cosines(keys: list[str], query: str) -> np.ndarray:
    """scikit-learn's TfidfVectorizer(analyzer="char", ngram_range=(1, 3)) on padded text, by hand."""
    counts = [grams(k) for k in keys]
    df = Counter(g for c in counts for g in c)
    idf = lambda g: math.log((1 + len(keys)) / (1 + df.get(g, 0))) + 1  # noqa: E731

    def vector(c):
        v = {g: n * idf(g) for g, n in c.items()}
        norm = math.sqrt(sum(x * x for x in v.values()))
        return {g: x / norm for g, x in v.items()}

    q = vector(grams(query))
    return np.array([sum(w * vector(c).get(g, 0.0) for g, w in q.items()) for c in counts])


@pytest.fixture(scope="module")
def index():
    return RetrievalIndex.build(EXAMPLES)


def test_duplicates_are_indexed_once_in_order(index):
    assert index.size == 6 and index.keys[0] == "배고파" and index.keys[-1] == "주말에 뭐 하지?"


def test_similarities_equal_a_plain_python_tfidf_cosine(index):
    queries = ["배고파 죽겠어", "너무 피곤해", "완전히 다른 말", "헤어졌어"]
    got = index.similarities(tf.constant(queries)).numpy()
    for row, query in zip(got, queries):
        np.testing.assert_allclose(row, python_cosines(index.keys, query), atol=1e-5)


def test_search_ranks_and_returns_responses(index):
    similarity, rows = index.search(tf.constant(["헤어졌어", "오늘 피곤해"]), 3)
    assert similarity.shape == (2, 3) and np.all(np.diff(similarity.numpy(), axis=1) <= 0)
    assert similarity.numpy()[0, 0] == pytest.approx(1.0, abs=1e-5)  # The key itself.
    responses = [r.decode() for r in index.responses_of(rows[:, 0]).numpy()]
    assert responses == ["많이 힘들겠어요.", "푹 쉬세요."]
    assert index.search(tf.constant(["배고파"]), 50)[0].shape == (1, 6)  # k is capped to the index size.


def test_search_runs_in_a_graph_of_core_ops(index):
    search = tf.function(lambda k: index.search(k, 2), input_signature=[tf.TensorSpec([None], tf.string)])
    graph = search.get_concrete_function().graph
    ops = {op.type for op in graph.get_operations()}
    assert not [op for op in ops if op.startswith("Xla") or "PyFunc" in op]
    assert {"StringNGrams", "StringToHashBucketFast", "TopKV2"} <= ops
    eager = index.search(tf.constant(["배고파", "헤어졌어"]), 2)
    np.testing.assert_array_equal(search(tf.constant(["배고파", "헤어졌어"]))[1], eager[1])


def test_keys_are_what_the_encoder_sees():
    keys = key_texts(tf.constant(["", "나는 개를 키워."]), tf.constant(["안녕", "[USER] 안녕 [SEP] 뭐 해?"]))
    assert [k.decode() for k in keys.numpy()] == ["안녕", "나는 개를 키워. [PERSONA] [USER] 안녕 [SEP] 뭐 해?"]
    persona_index = RetrievalIndex.build([Example("뭐 해?", "쉬어.", persona="나는 개를 키워.")])
    assert persona_index.keys == ["나는 개를 키워. [PERSONA] 뭐 해?"]


def test_save_load_round_trip_and_run_index(index, tmp_path):
    index.save(tmp_path / "index.npz")
    loaded = RetrievalIndex.load(tmp_path / "index.npz")
    assert loaded.keys == index.keys and loaded.nbytes() == index.nbytes()
    np.testing.assert_array_equal(loaded.similarities(tf.constant(["배고파"])), index.similarities(tf.constant(["배고파"])))
    # A run trained before retrieval existed gets its index from its own training split, once.
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.jsonl").write_text('{"context": "안녕", "response": "반가워요."}\n', encoding="utf-8")
    assert run_index(tmp_path).keys == ["안녕"] and RunDirectory(tmp_path).retrieval_index.exists()


def test_an_empty_index_is_refused():
    with pytest.raises(ValueError, match="no examples"):
        RetrievalIndex.build([])


def test_leaving_out_common_ngrams_keeps_the_ranking(index):
    pruned = RetrievalIndex.build(EXAMPLES, max_key_share=0.5)  # " " and "요" etc. are in every key.
    assert pruned.postings_rows.shape[0] < index.postings_rows.shape[0]
    queries = tf.constant(["배고파 죽겠어", "너무 피곤해", "헤어졌어", "주말에 뭐 할까"])
    np.testing.assert_array_equal(pruned.search(queries, 1)[1], index.search(queries, 1)[1])
    assert np.all(pruned.similarities(queries).numpy() <= index.similarities(queries).numpy() + 1e-6)


IDENTITY = [Example("너는 누구니?", "저는 하루예요.", "haru.yaml:identity 0"),
            Example("이름이 뭐야?", "제 이름은 하루예요.", "haru.yaml:identity 1")]
OTHER_SELVES = [Example("넌 누구니?", "저는 위로봇입니다.", "ChatbotData.csv:5"),  # Shadowed: 0.61 similar to "너는 누구니?".
                Example("이름이 뭐야?", "위로봇이요.", "ChatbotData.csv:6")]  # Shadowed: the same question.


def test_identity_pairs_shadow_other_sources_answers_about_themselves():
    index = RetrievalIndex.build(EXAMPLES + OTHER_SELVES + IDENTITY, identity_shadow=0.6)
    assert index.shadowed == 2 and "저는 위로봇입니다." not in [r.decode() for r in index.responses.numpy()]
    _, rows = index.search(tf.constant(["넌 누구니?", "이름이 뭐야?", "배고파"]), 1)
    assert [r.decode() for r in index.responses_of(rows[:, 0]).numpy()] == ["저는 하루예요.", "제 이름은 하루예요.", "뭐라도 드세요."]
    # Without a character nothing is shadowed: ChatbotData's own answers about itself stay.
    assert RetrievalIndex.build(EXAMPLES + OTHER_SELVES, identity_shadow=0.6).shadowed == 0


def test_an_index_saved_under_other_settings_is_rebuilt(tmp_path):
    from config import RetrievalConfig

    (tmp_path / "data").mkdir()
    lines = [f'{{"context": "{e.context}", "response": "{e.response}", "source": "{e.source}"}}' for e in OTHER_SELVES + IDENTITY]
    (tmp_path / "data" / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    RetrievalIndex.build(OTHER_SELVES + IDENTITY, identity_shadow=1.0).save(RunDirectory(tmp_path).retrieval_index)
    assert run_index(tmp_path, RetrievalConfig(identity_shadow=1.0)).shadowed == 1  # Saved with these settings.
    rebuilt = run_index(tmp_path, RetrievalConfig(identity_shadow=0.6))
    assert rebuilt.shadowed == 2
    assert RetrievalIndex.load(RunDirectory(tmp_path).retrieval_index).built_with == (0.1, 0.6, 0.7, 0.0, 1.0, 1.0)


def test_a_question_after_earlier_turns_still_finds_the_single_questions_it_asks():
    index = RetrievalIndex.build(EXAMPLES, question_weight=0.7)
    assert index.questions is None  # Every key is its own question.
    in_conversation = tf.constant(["[USER] 안녕 [SEP] [BOT] 안녕하세요 [SEP] 배고파 죽겠어"])
    alone = tf.constant(["배고파 죽겠어"])
    mixed, plain = index.similarities(in_conversation).numpy(), index._cosines(in_conversation).numpy()
    assert mixed.argmax() == index.similarities(alone).numpy().argmax() and mixed.max() > plain.max() + 0.2
    np.testing.assert_allclose(index.similarities(alone).numpy(), index._cosines(alone).numpy())  # Unchanged.


@pytest.mark.parametrize("message, about_user", [
    ("내 이름은 민지야", True), ("나는 대학생이야", True), ("내 이름 기억할 수 있어?", True), ("제 소개를 할게요", True),
    ("이름은 뭐라고 지을까?", True), ("자기소개는 어떻게 하지?", True), ("자기소개 어떻게 시작하면 좋을까?", True),
    ("면접에서 뭐라고 말하지?", True), ("너 이름 어떻게 돼?", False), ("이름이 어떻게 돼요?", False),
    ("이름이 뭐야?", False), ("너는 누구니?", False), ("나랑 얘기하는 너는 누구니?", False), ("자기소개 해줘", False),
    ("넌 누구길래 나랑 얘기해?", False), ("어떻게 불러야 해?", False), ("누구세요?", False),
])
def test_messages_about_the_user_are_told_from_questions_to_the_bot(message, about_user):
    assert bool(about_the_user(tf.constant([message])).numpy()[0]) is about_user


def test_identity_answers_are_held_back_from_messages_about_the_user(tmp_path):
    index = RetrievalIndex.build(EXAMPLES + IDENTITY, identity_when_asked=True)
    assert index.holds_identity and int(index.identity_rows.numpy().sum()) == 2
    _, rows = index.search(tf.constant(["이름이 뭐야?", "내 이름이 뭐야?"]), 1)
    replies = [r.decode() for r in index.responses_of(rows[:, 0]).numpy()]
    assert replies[0] == "제 이름은 하루예요." and replies[1] not in ("제 이름은 하루예요.", "저는 하루예요.")
    index.save(tmp_path / "index.npz")
    loaded = RetrievalIndex.load(tmp_path / "index.npz")
    assert loaded.holds_identity and loaded.identity_rows.numpy().tolist() == index.identity_rows.numpy().tolist()
    assert not RetrievalIndex.build(EXAMPLES + IDENTITY).holds_identity  # Off: nothing held back.


@pytest.mark.parametrize("message, addressed", [
    ("너 점심 뭐 먹었어?", True), ("하루야 밥 먹었어?", True), ("하루 씨는 주말에 뭐 해요?", True),
    ("주말에 뭐 했어?", True), ("너 몇 살이야?", True), ("어디 사세요?", True), ("해외여행 가 보신 적 있어요?", True),
    ("결혼하셨어요?", True), ("밥 먹었어?", True), ("너네 엄마는 뭐 하셔?", True), ("퇴근하고 보통 뭐 해?", True),
    ("주말에 뭐 하지?", False), ("내일 뭐 할까?", False),
    ("나 방금 저녁 먹었어", False), ("나 어제 영화 봤어?", False), ("사랑이 뭐야?", False), ("배고파", False),
    ("잊을 수 없는 너", False), ("썸에도 유통기한이 있어?", False), ("화장실을 어떻게 참아?", False),
    ("제가 어디 살았는지 아세요?", False), ("오늘 하루 어땠어?", False),
])
def test_questions_addressed_to_the_bot_are_told_from_the_rest(message, addressed):
    assert bool(addresses_the_bot(tf.constant([message])).numpy()[0]) is addressed


def test_a_question_to_the_bot_is_answered_in_the_characters_own_voice(tmp_path):
    chatbot = [Example("해외여행 가 봤어?", "그럼요!", "ChatbotData.csv:3"), Example("배고파", "뭐라도 드세요.", "ChatbotData.csv:4")]
    own = [Example("너 여행 가 봤어?", "저는 챗봇이라 여행은 못 가 봤어요. 어디 다녀왔어요?", "chars/haru_dialogues.jsonl:7")]
    index = RetrievalIndex.build(chatbot + own + IDENTITY, voice_when_addressed=True,
                                 voice_files=frozenset({"haru_dialogues.jsonl"}))
    assert index.holds_voice and int(index.voice_rows.numpy().sum()) == 3  # Its dialogue's line and 2 identity pairs.
    _, rows = index.search(tf.constant(["해외여행 가 봤어?", "배고파"]), 1)
    assert [r.decode() for r in index.responses_of(rows[:, 0]).numpy()] == [own[0].response, "뭐라도 드세요."]
    index.save(tmp_path / "index.npz")
    assert RetrievalIndex.load(tmp_path / "index.npz").voice_rows.numpy().tolist() == index.voice_rows.numpy().tolist()
    plain = RetrievalIndex.build(chatbot + own + IDENTITY, voice_files=frozenset({"haru_dialogues.jsonl"}))
    assert not plain.holds_voice  # Off: the nearest key answers, whoever spoke it.
    _, rows = plain.search(tf.constant(["해외여행 가 봤어?"]), 1)
    assert plain.responses_of(rows[:, 0]).numpy()[0].decode() == "그럼요!"


def test_a_character_run_never_retrieves_another_personas_life():
    teacher = Example("뭐 하고 있어?", "숙제를 채점하고 있어. 나는 초등학교 교사야.", "xpersona.json:3",
                      persona="나는 초등학교 교사야. 나는 딸이 있어.")
    plain = Example("뭐 하고 있어?", "저는 쉬고 있어요.", "ChatbotData.csv:9")
    index = RetrievalIndex.build([teacher, plain] + IDENTITY, other_personas=False)
    assert index.other_personas_left_out == 1
    assert [r.decode() for r in index.responses.numpy()] == ["저는 쉬고 있어요.", "저는 하루예요.", "제 이름은 하루예요."]
    # The character's own persona speaks for it; without a character every persona stays.
    own = [Example(e.context, e.response, e.source, persona="내 이름은 하루야.") for e in IDENTITY + [plain]]
    assert RetrievalIndex.build(own + [teacher], other_personas=False).size == 3
    assert RetrievalIndex.build([teacher, plain], other_personas=False).size == 2
    assert RetrievalIndex.build([teacher, plain] + IDENTITY, other_personas=True).other_personas_left_out == 0


def test_keys_with_a_persona_are_also_matched_by_their_question():
    persona = "나는 차를 좋아해. 나는 서재가 있어."
    examples = [Example("주말에 뭐 해?", "서재에서 책을 읽어.", persona=persona),
                Example("배고프지 않아?", "차를 마시고 있어.", persona=persona),
                Example("배고프지 않아?", "라면 먹을 거야.", persona="나는 등산을 좋아해.")]
    keys = tf.constant([persona + " [PERSONA] 배고프지 않아?"])
    whole = RetrievalIndex.build(examples, question_weight=0.0)
    mixed = RetrievalIndex.build(examples, question_weight=0.7)
    assert whole.questions is None and mixed.questions is not None
    key_cosines = whole.similarities(keys).numpy()[0]
    question_cosines = mixed.questions.similarities(tf.constant(["배고프지 않아?"])).numpy()[0]
    np.testing.assert_allclose(mixed.similarities(keys).numpy()[0], 0.3 * key_cosines + 0.7 * question_cosines, atol=1e-6)
    np.testing.assert_allclose(question_cosines[1:], 1.0, atol=1e-5)  # Both rows ask exactly this.
    # Single-turn keys without persona are their own questions: nothing more to index.
    assert RetrievalIndex.build(EXAMPLES, question_weight=0.7).questions is None


def test_question_weights_survive_save_and_load(tmp_path):
    examples = [Example("안녕 [SEP] 뭐 해?", "쉬고 있어.", persona="나는 학생이야."), Example("뭐 먹지?", "김밥이요.")]
    built = RetrievalIndex.build(examples, question_weight=0.7)
    built.save(tmp_path / "index.npz")
    loaded = RetrievalIndex.load(tmp_path / "index.npz")
    query = tf.constant(["나는 학생이야. [PERSONA] 안녕 [SEP] 뭐 먹지?"])
    np.testing.assert_allclose(loaded.similarities(query), built.similarities(query), atol=1e-6)
    assert loaded.question_weight == 0.7 and loaded.nbytes() == built.nbytes()
