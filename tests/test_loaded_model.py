"""serving/loaded_model.py: the export runs as TF Serving runs it (XLA disabled, TF1 loader, Session)."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT
from serving.client import chat_arrays
from serving.loaded_model import LoadedVersion, RequestError

QUESTIONS = ["안녕하세요", "오늘 너무 피곤해", "헤어졌어"]
CONTROLS = {"hybrid": {}, "greedy": {"retrieval": False}, "beam": {"strategy": "beam"},
            "sample": {"strategy": "sample", "top_p": 0.9, "seed": 5}}

NO_XLA_SCRIPT = """
import json, sys
import numpy as np
from serving.loaded_model import LoadedVersion, disable_xla_compilation
from serving.client import chat_arrays
if sys.argv[2] == "disable":
    disable_xla_compilation()
version = LoadedVersion(sys.argv[1])
questions = json.loads(sys.argv[3])
controls = json.loads(sys.argv[4])
text = {"text": np.array(questions, object)}
replies = {"serving_default": version.run("serving_default", text)["reply"]}
replies["retrieve"] = version.run("retrieve", text)["responses"][:, 0]
for name, options in controls.items():
    replies[name] = version.run("chat", chat_arrays([[q] for q in questions], **options))["reply"]
print("REPLIES " + json.dumps({k: [r.decode() for r in v] for k, v in replies.items()}, ensure_ascii=False))
"""


def run_without_xla(path, controls=CONTROLS, disable=True):
    process = subprocess.run(
        [sys.executable, "-c", NO_XLA_SCRIPT, str(path), "disable" if disable else "keep",
         json.dumps(QUESTIONS), json.dumps(controls)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,  # `python -c` imports from its working folder.
    )
    lines = [line for line in process.stdout.splitlines() if line.startswith("REPLIES ")]
    return process, json.loads(lines[0][len("REPLIES "):]) if lines else None


def test_every_signature_runs_with_xla_disabled_and_matches_in_process(exported):
    process, replies = run_without_xla(exported[1])
    assert process.returncode == 0, process.stderr[-3000:]
    reloaded = tf.saved_model.load(str(exported[1]))
    expected = {"serving_default": reloaded.signatures["serving_default"](text=tf.constant(QUESTIONS))["reply"],
                "retrieve": reloaded.signatures["retrieve"](text=tf.constant(QUESTIONS))["responses"][:, 0]}
    for name, options in CONTROLS.items():
        inputs = chat_arrays([[q] for q in QUESTIONS], **options)
        inputs["history"] = inputs["history"].tolist()
        expected[name] = reloaded.signatures["chat"](**{k: tf.constant(v) for k, v in inputs.items()})["reply"]
    assert replies == {k: [r.decode() for r in v.numpy()] for k, v in expected.items()}
    assert all(all(r for r in rows) for rows in replies.values())  # Real replies, not empty strings.


def test_the_check_would_catch_an_xla_op(tmp_path):
    """Negative control: a graph with XlaDynamicUpdateSlice (what keras.ops.slice_update emits) fails there."""
    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(self, text):
            buffer = keras.ops.slice_update(tf.zeros([4], tf.int32), [1], tf.ones([1], tf.int32))
            return {"reply": tf.strings.join([text, tf.strings.as_string(tf.reduce_sum(buffer))])}

    module = Module()
    path = tmp_path / "1"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    script = NO_XLA_SCRIPT.replace("for name, options in controls.items():", "for name, options in []:").replace(
        'replies["retrieve"] = version.run("retrieve", text)["responses"][:, 0]', "")
    for disable, should_pass in ((False, True), (True, False)):
        process = subprocess.run(
            [sys.executable, "-c", script, str(path), "disable" if disable else "keep", json.dumps(["a"]), "{}"],
            capture_output=True, text=True, timeout=300, cwd=ROOT,
        )
        assert (process.returncode == 0) == should_pass, process.stderr[-2000:]
    assert "XLA compilation disabled" in process.stderr


@pytest.fixture(scope="module")
def version(exported):
    return LoadedVersion(exported[1])


@pytest.mark.parametrize("inputs, message", [
    ({}, r"missing \['text'\]"),
    ({"text": np.array(["a"], object), "extra": np.array([1])}, r"unexpected \['extra'\]"),
    ({"text": np.array([1, 2])}, "must be string"),
    ({"text": np.array([["a"]], object)}, "must have rank 1"),
])
def test_inputs_are_checked_against_the_signature(version, inputs, message):
    with pytest.raises(RequestError, match=message) as caught:
        version.run("serving_default", inputs)
    assert caught.value.code == "INVALID_ARGUMENT"


def test_unknown_signature(version):
    with pytest.raises(RequestError, match='signature name: "nope" not found'):
        version.run("nope", {})


def test_batchable_signatures(version):
    assert version.batchable("serving_default") and not version.batchable("chat")  # chat's controls are scalars.
