"""serving/export.py and serving/signatures.py: TF Serving layout, atomic versions, signatures that
reload with the same replies, and a graph TF Serving can run (no Xla*, only bundled ops)."""

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tensorflow as tf

from conftest import ROOT
from config import DecodingSettings
from model.generation import ReplyGenerator
from model.run_files import load_run
from run_directory import versions
from serving.chat_session import LocalReplies
from serving.client import chat_arrays
from serving.export import graph_op_types, publish
from serving.replies import RunReplies
from serving.signatures import RETRIEVED_NEIGHBOURS, join_history, normalize_in_graph

QUESTIONS = ["안녕하세요", "오늘 너무 피곤해", "배고픈데 뭐 먹을까?", "주말에 뭐 하지?"]
# tensorflow-text ops the graph may use: all bundled with TF Serving 2.10+ (tensorflow_serving/model_servers).
TF_TEXT_OPS = {"NormalizeUTF8", "FastWordpieceTokenizeWithOffsets", "TFText>FastWordpieceDetokenize",
               "RegexSplitWithOffsets", "CaseFoldUTF8", "WhitespaceTokenizeWithOffsetsV2"}


def test_layout_and_extras(exported):
    base, version_dir, _ = exported
    assert version_dir == base / "1" and versions(base) == [1]
    for name in ("saved_model.pb", "variables/variables.index", "assets.extra/vocab.txt", "assets.extra/config.yaml",
                 "assets.extra/tf_serving_warmup_requests"):
        assert (version_dir / name).exists(), name
    assert not [p for p in base.iterdir() if p.name.startswith(".")]  # No staging left behind.


def test_graph_has_no_xla_ops_and_only_ops_tf_serving_bundles(exported):
    types = graph_op_types(exported[1])
    assert {"FastWordpieceTokenizeWithOffsets", "TensorStridedSliceUpdate"} <= types  # It did look.
    assert {"StringNGrams", "StringToHashBucketFast", "RaggedRange", "TopKV2"} <= types  # Retrieval, in the graph.
    assert types & {"While", "StatelessWhile"}  # The decoding loop (stateless: it reads no variable).
    assert_only_ops_tf_serving_bundles(types)


def test_a_persona_runs_question_matching_is_in_the_graph_with_core_ops(persona_export):
    types = graph_op_types(persona_export)
    assert types & {"StaticRegexReplace", "RegexReplace"}  # The question of each key (model/retrieval.py).
    assert_only_ops_tf_serving_bundles(types)


def assert_only_ops_tf_serving_bundles(types: set) -> None:
    """No Xla* op; in a process that never imported tensorflow_text, all else is core TensorFlow."""
    assert not [t for t in types if t.startswith("Xla")]
    script = ("import json, sys; from tensorflow.python.framework import op_def_registry as r; "
              "print(json.dumps([t for t in json.loads(sys.argv[1]) if r.get(t) is None]))")
    process = subprocess.run([sys.executable, "-c", script, json.dumps(sorted(types))],
                             capture_output=True, text=True, timeout=120)
    assert process.returncode == 0, process.stderr
    not_core = set(json.loads(process.stdout.strip().splitlines()[-1]))
    assert not_core and not_core <= TF_TEXT_OPS, not_core


def test_saved_model_cli_lists_the_signatures(exported):
    cli = shutil.which("saved_model_cli", path=str(Path(sys.executable).parent)) or shutil.which("saved_model_cli")
    assert cli, "saved_model_cli (installed with tensorflow) not found"
    process = subprocess.run([cli, "show", "--dir", str(exported[1]), "--all"], capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr
    for expected in ("signature_def['serving_default']", "signature_def['chat']", "inputs['text']", "inputs['history']",
                     "inputs['top_p']", "outputs['reply']"):
        assert expected in process.stdout, expected


@pytest.fixture(scope="module")
def reloaded(exported):
    return tf.saved_model.load(str(exported[1]))


@pytest.fixture(scope="module")
def in_memory(real_run):
    run = load_run(real_run[0])
    return ReplyGenerator(run.model, run.tokenizer), run.config.export


@pytest.fixture(scope="module")
def run_replies(real_run):
    return RunReplies(load_run(real_run[0]))


def test_the_settings_signature_gives_the_decoding_defaults_of_the_export(reloaded, real_run):
    export = load_run(real_run[0]).config.export
    served = {name: value.numpy().tolist() for name, value in reloaded.signatures["settings"](
        text=tf.constant(["", "x"])).items()}
    assert served == {
        "strategy": [b"greedy"] * 2, "temperature": [1.0] * 2, "top_k": [0] * 2, "top_p": [1.0] * 2,
        "max_length": [export.max_reply_length] * 2, "retrieval": [True] * 2, "num_beams": [export.num_beams] * 2,
        "length_penalty": [pytest.approx(export.length_penalty)] * 2,
        "no_repeat_ngram_size": [export.no_repeat_ngram_size] * 2,
    }
    assert DecodingSettings() == DecodingSettings(  # The export's defaults are the one settings object's.
        max_reply_length=export.max_reply_length, num_beams=export.num_beams, length_penalty=export.length_penalty,
        no_repeat_ngram_size=export.no_repeat_ngram_size)


def chat(reloaded, history, **controls):
    inputs = chat_arrays(history, **controls)
    inputs["history"] = tf.constant(inputs["history"].tolist())
    outputs = reloaded.signatures["chat"](**{k: tf.constant(v) for k, v in inputs.items()})
    return [r.decode() for r in outputs["reply"].numpy()]


def test_generated_replies_equal_the_in_memory_decoder(reloaded, in_memory):
    """With retrieval off, the export's decoder gives keras-hub's samplers' tokens (greedy and beam)."""
    generator, export = in_memory
    greedy = DecodingSettings(max_reply_length=export.max_reply_length, no_repeat_ngram_size=export.no_repeat_ngram_size)
    expected = generator.reply(QUESTIONS, greedy)
    assert chat(reloaded, [[q] for q in QUESTIONS], max_length=export.max_reply_length, retrieval=False) == expected
    beam = DecodingSettings(strategy="beam", num_beams=export.num_beams, length_penalty=export.length_penalty,
                            max_reply_length=12, no_repeat_ngram_size=export.no_repeat_ngram_size)
    assert chat(reloaded, [[q] for q in QUESTIONS], strategy="beam", max_length=12,
                retrieval=False) == generator.reply(QUESTIONS, beam)


@pytest.mark.parametrize("controls", [
    {}, {"retrieval": False}, {"strategy": "beam", "max_length": 12},
    {"strategy": "sample", "temperature": 1.3, "top_p": 0.9, "seed": 7},
    {"strategy": "sample", "top_k": 5, "seed": 8, "retrieval": False},
], ids=["hybrid", "greedy", "hybrid-beam", "hybrid-top-p", "top-k"])
def test_in_process_replies_equal_the_served_ones(reloaded, run_replies, controls):
    """chat.py and evaluate.py reply through the export's own functions: same controls and seed, same reply."""
    settings = DecodingSettings(**{
        {"max_length": "max_reply_length"}.get(k, k): v for k, v in {"no_repeat_ngram_size": 3, **controls}.items()})
    local = run_replies.respond(QUESTIONS, None, settings)
    assert chat(reloaded, [[q] for q in QUESTIONS], **controls) == list(local.reply)
    if not controls:  # serving_default is the hybrid with greedy generation.
        served = reloaded.signatures["serving_default"](text=tf.constant(QUESTIONS))["reply"].numpy()
        assert [r.decode() for r in served] == list(local.reply)


def test_the_retrieve_signature_is_the_lookup(reloaded, run_replies, real_run):
    out = reloaded.signatures["retrieve"](text=tf.constant(QUESTIONS))
    k = RETRIEVED_NEIGHBOURS
    assert out["responses"].shape == (len(QUESTIONS), k) and out["similarity"].shape == (len(QUESTIONS), k)
    assert [r.decode() for r in out["responses"].numpy()[:, 0]] == run_replies.lookup(QUESTIONS)
    answers = {}
    for line in (real_run[0] / "data" / "train.jsonl").read_text(encoding="utf-8").splitlines():
        answers.setdefault(json.loads(line)["context"], set()).add(json.loads(line)["response"])
    question = next(iter(answers))  # A training key finds itself (below 1: common n-grams have no postings).
    own = reloaded.signatures["retrieve"](text=tf.constant([question]))
    assert own["similarity"].numpy()[0, 0] > 0.9 and own["responses"].numpy()[0, 0].decode() in answers[question]


def test_max_length_control_caps_reply_tokens(reloaded, in_memory):
    generator, export = in_memory
    short = DecodingSettings(max_reply_length=2, no_repeat_ngram_size=export.no_repeat_ngram_size)
    assert chat(reloaded, [[q] for q in QUESTIONS], max_length=2, retrieval=False) == generator.reply(QUESTIONS, short)


def test_sampling_is_per_request_and_reproducible(reloaded):
    history = [["오늘 뭐 먹지"]] * 16
    sample = dict(strategy="sample", retrieval=False)
    first = chat(reloaded, history, temperature=1.5, seed=11, **sample)
    assert first == chat(reloaded, history, temperature=1.5, seed=11, **sample)
    assert first != chat(reloaded, history, temperature=1.5, seed=12, **sample)
    assert len(set(first)) > 1  # Rows draw independently.
    # Narrow controls leave one choice: sampling equals greedy.
    greedy = chat(reloaded, history, retrieval=False)
    assert chat(reloaded, history, top_k=1, seed=3, **sample) == greedy
    assert chat(reloaded, history, top_p=1e-6, seed=3, **sample) == greedy


@pytest.mark.parametrize("controls, message", [
    ({"strategy": "nucleus"}, "strategy must be one of"),
    ({"temperature": 0.0}, "temperature must be > 0"),
    ({"top_p": 1.5}, "top_p must be in"),
    ({"top_k": -1}, "top_k must be >= 0"),
    ({"max_length": 0}, "max_length must be >= 1"),
])
def test_bad_controls_are_invalid_argument(reloaded, controls, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        chat(reloaded, [["안녕"]], **controls)


def test_history_keeps_the_last_turns_normalised():
    history = tf.constant([["하나", "둘", "셋  넷\u3000"], ["안녕", "", ""]])
    assert [t.decode() for t in join_history(history, 1).numpy()] == ["[BOT] 둘 [SEP] 셋 넷", "안녕"]
    assert normalize_in_graph(tf.constant(["\u1100\u1161 가"])).numpy()[0].decode() == "가 가"  # NFC.


def test_versions_are_published_atomically_and_increase(tmp_path):
    model_dir = tmp_path / "chatbot"
    model_dir.mkdir()
    (model_dir / "1").mkdir()
    (model_dir / "notes").mkdir()  # Not a version; ignored, as TF Serving does.
    staging = model_dir / ".staging-test"
    staging.mkdir()
    (staging / "saved_model.pb").write_bytes(b"x")
    target = publish(staging, model_dir)
    assert target == model_dir / "2" and (target / "saved_model.pb").exists() and not staging.exists()
    assert versions(model_dir) == [1, 2]


def test_exporters_publishing_at_once_get_distinct_whole_versions(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    model_dir = tmp_path / "chatbot"
    model_dir.mkdir()
    stagings = []
    for i in range(8):  # Eight exports finishing at the same moment, as two export.py runs on one base path.
        staging = model_dir / f".staging-{i}"
        staging.mkdir()
        (staging / "saved_model.pb").write_bytes(bytes([i]))
        stagings.append(staging)
    with ThreadPoolExecutor(8) as pool:
        targets = list(pool.map(lambda staging: publish(staging, model_dir), stagings))
    assert sorted(int(t.name) for t in targets) == list(range(1, 9)) and versions(model_dir) == list(range(1, 9))
    assert sorted((t / "saved_model.pb").read_bytes() for t in targets) == [bytes([i]) for i in range(8)]


def test_export_cli(exported, tmp_path):
    _, version_dir, output = exported  # The fixture ran `export.py --run-dir RUN --base-dir DIR`.
    assert output.strip().splitlines()[-1] == str(version_dir)
    missing = subprocess.run([sys.executable, str(ROOT / "export.py"), "--run-dir", str(tmp_path / "none")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "not a run directory" in missing.stderr
    run_dir = json.loads((version_dir / "assets.extra" / "export.json").read_text())["run_dir"]
    renamed = subprocess.run([sys.executable, str(ROOT / "export.py"), "--run-dir", run_dir, "--base-dir",
                              str(tmp_path), "--name", "a/b"], capture_output=True, text=True, timeout=120)
    assert renamed.returncode == 2 and "export.name" in renamed.stderr  # --name reaches the configuration.
    assert not (tmp_path / "a").exists()


def test_export_carries_the_character_and_answers_with_its_persona_and_history(persona_run, persona_export):
    assert (persona_export / "assets.extra" / "character.yaml").read_bytes() == (
        persona_run[0] / "character.yaml").read_bytes()
    run = load_run(persona_run[0])
    assert run.persona.startswith("내 이름은 하루야.") and run.context_turns == 3
    local = LocalReplies(RunReplies(run))
    histories = [["너는 누구니?"], ["안녕", "안녕하세요", "오늘 뭐 했어?"],
                 ["하나", "둘", "셋", "넷", "다섯", "여섯", "나는 개를 키워. 너는?"]]
    greedy = DecodingSettings(max_reply_length=24, no_repeat_ngram_size=3)
    expected = [local.reply_to(history, greedy) for history in histories]
    reloaded = tf.saved_model.load(str(persona_export))
    padded = [[""] * (7 - len(h)) + h for h in histories]  # Leading "" = no turn.
    assert chat(reloaded, padded, max_length=24) == expected
    served = reloaded.signatures["serving_default"](text=tf.constant(["너는 누구니?"]))["reply"].numpy()
    assert served[0].decode() == expected[0]


def test_chat_does_not_repeat_what_the_bot_said_earlier_in_the_conversation(reloaded):
    """The selector passes over a candidate equal to one of the bot's earlier turns while it has others."""
    for question in QUESTIONS:
        first = chat(reloaded, [[question]])[0]
        again = chat(reloaded, [[question, first, question]])[0]
        assert again and again != first
        as_user = chat(reloaded, [[first, "응", question]])[0]  # The same text said by the user is no repeat.
        assert as_user == first


def test_chat_keeps_the_name_the_user_gave(reloaded):
    """The exported `chat` greets a name the user gives and tells it back when asked later (`model/user_facts.py`)."""
    greeted, told, asked = chat(reloaded, [
        ["", "", "", "", "내 이름은 민지야"],
        ["내 이름은 민지야", "반가워요", "배고파", "뭐 좀 드세요", "내 이름 기억할 수 있어?"],
        ["", "", "안녕", "안녕하세요", "내 이름 알아?"],
    ])
    assert "민지" in greeted and "민지" in told and "민지" not in asked
    assert chat(reloaded, [["내 이름은 민지야", "반가워요", "배고파"]])[0] == chat(reloaded, [["배고파"]])[0]


def run_export(run_dir, base, *, file_size_limit=None, name="chatbot"):
    """export.py as a user runs it; `file_size_limit` (bytes) makes every file write beyond it fail, as a full disk."""
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    return subprocess.Popen([sys.executable, str(ROOT / "export.py"), "--run-dir", str(run_dir), "--base-dir", str(base),
                             "--name", name], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=limit if file_size_limit else None,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


@pytest.mark.slow
def test_a_kill_or_a_full_disk_never_publishes_a_half_version(real_run, tmp_path):
    base = tmp_path / "models"
    killed = run_export(real_run[0], base)
    deadline = time.time() + 300
    while time.time() < deadline and killed.poll() is None and not list(base.glob("chatbot/.staging-*/*")):
        time.sleep(0.02)
    killed.kill()  # While the version is being written.
    killed.communicate()
    assert list((base / "chatbot").glob(".staging-*")), "the export ended before it could be killed"
    assert versions(base / "chatbot") == []  # Only a hidden staging folder, which no server reads.

    full = run_export(real_run[0], base, file_size_limit=64 * 1024)
    _, errors = full.communicate(timeout=600)
    assert full.returncode == 1 and "Traceback" not in errors, errors[-3000:]
    assert errors.strip().splitlines()[-1].startswith(f"export.py: could not write the export under {base / 'chatbot'} (")
    assert "nothing was published" in errors
    # Nothing left: no version, and neither the killed export's staging folder nor its own. The next export
    # starts from what a first one finds (test_export_cli: it succeeds).
    assert os.listdir(base / "chatbot") == []
