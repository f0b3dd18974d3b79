"""serve.py with serving/{model_server,rest_api,grpc_api,client}.py: TF Serving's REST and gRPC APIs
against a real exported model: round trips, status codes for bad requests, live version updates."""

import json
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import pytest

from conftest import ROOT, free_port, start_server
from serving.client import GrpcClient, RestClient, ServingError
from serving.loaded_model import LoadedVersion

QUESTIONS = ["안녕하세요", "오늘 너무 피곤해", "배고파"]


@pytest.fixture(scope="module")
def server(exported, tmp_path_factory):
    """serve.py on free ports over a copy of the export: (process, REST URL, gRPC target, base path)."""
    base = tmp_path_factory.mktemp("serving") / "chatbot"
    base.mkdir()
    shutil.copytree(exported[1], base / "1")
    grpc_port, rest_port = free_port(), free_port()
    process, output = start_server(base, grpc_port, rest_port, "--file_system_poll_wait_seconds", "0.3")
    yield process, f"http://127.0.0.1:{rest_port}", f"127.0.0.1:{grpc_port}", base, output
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def rest(server):
    return RestClient(server[1])


@pytest.fixture(scope="module")
def grpc_client(server):
    return GrpcClient(server[2])


def post(url, body: bytes, path="/v1/models/chatbot:predict"):
    request = urllib.request.Request(url + path, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_rest_and_grpc_give_the_models_replies(server, rest, grpc_client, exported):
    expected = [r.decode() for r in LoadedVersion(exported[1]).run(
        "serving_default", {"text": np.array(QUESTIONS, object)})["reply"]]
    assert rest.reply(QUESTIONS) == expected
    assert grpc_client.reply(QUESTIONS) == expected
    status, body = post(server[1], json.dumps({"inputs": {"text": QUESTIONS}}).encode())
    assert status == 200 and body == {"outputs": expected}  # Columnar form.
    status, body = post(server[1], json.dumps({"instances": [{"text": q} for q in QUESTIONS]}).encode())
    assert status == 200 and body == {"predictions": expected}  # Row form with named inputs.
    history = [["배고파", "뭐 먹을래?", "라면"], ["안녕"]]
    assert rest.chat(history, strategy="beam") == grpc_client.chat(history, strategy="beam")
    assert rest.chat(history, strategy="sample", seed=3, top_p=0.9) == grpc_client.chat(history, strategy="sample", seed=3, top_p=0.9)
    assert rest.chat(history, retrieval=False) == grpc_client.chat(history, retrieval=False)  # JSON false: DT_BOOL.


def test_status_and_metadata(rest, grpc_client):
    assert rest.status() == {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    assert grpc_client.status()["model_version_status"][0]["state"] == "AVAILABLE"
    signatures = rest.metadata()["metadata"]["signature_def"]["signature_def"]
    assert set(signatures["chat"]["inputs"]) == {"history", "strategy", "temperature", "top_k", "top_p", "max_length",
                                                 "seed", "retrieval"}
    assert signatures["chat"]["inputs"]["retrieval"]["dtype"] == "DT_BOOL"
    assert signatures["serving_default"]["outputs"]["reply"]["dtype"] == "DT_STRING"
    assert set(signatures["retrieve"]["outputs"]) == {"responses", "similarity"}


def test_cors_and_the_chat_page_are_served_beside_the_api(server):
    """Like TF Serving's REST server: CORS on every answer, the preflight answered; the page at /."""
    url = server[1]
    preflight = urllib.request.Request(url + "/v1/models/chatbot:predict", method="OPTIONS",
                                       headers={"Origin": "http://elsewhere", "Access-Control-Request-Method": "POST"})
    with urllib.request.urlopen(preflight, timeout=30) as response:
        assert response.status == 204 and response.headers["Access-Control-Allow-Origin"] == "*"
        assert "POST" in response.headers["Access-Control-Allow-Methods"]
        assert "Content-Type" in response.headers["Access-Control-Allow-Headers"]
    with urllib.request.urlopen(url + "/v1/models/chatbot", timeout=30) as response:
        assert response.headers["Access-Control-Allow-Origin"] == "*"
    status, _ = post(url, b'{"instances": [')  # Errors carry it too, so a page can read the message.
    assert status == 400
    for path, kind in (("/", "text/html"), ("/chat.js", "text/javascript"), ("/chat.css", "text/css")):
        with urllib.request.urlopen(url + path, timeout=30) as response:
            assert response.status == 200 and response.headers["Content-Type"].startswith(kind), path
            body = response.read().decode("utf-8")
        # Nothing fetched from elsewhere (no CDN, no web font): the page works offline.
        assert not re.search(r"""(src|href)=["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import""", body), path


def chat_body(**override):
    inputs = {"history": [["안녕"]], "strategy": "greedy", "temperature": 1.0, "top_k": 0, "top_p": 1.0,
              "max_length": 24, "seed": 0, "retrieval": True, **override}
    return json.dumps({"signature_name": "chat", "inputs": inputs}).encode()


BAD_REST = [
    ("invalid JSON", b'{"instances": [', "/v1/models/chatbot:predict", 400, "JSON Parse error"),
    ("unknown model", b'{"instances": ["a"]}', "/v1/models/nobody:predict", 404, "Servable not found"),
    ("unknown version", b'{"instances": ["a"]}', "/v1/models/chatbot/versions/7:predict", 404, "Specific(chatbot, 7)"),
    ("unknown signature", b'{"signature_name": "x", "instances": ["a"]}', "/v1/models/chatbot:predict", 400,
     'signature name: "x" not found'),
    ("no inputs key", b'{"signature_name": "serving_default"}', "/v1/models/chatbot:predict", 400, "Missing 'inputs' or 'instances'"),
    ("missing input", chat_body().replace(b'"seed": 0, ', b"").replace(b', "seed": 0', b""), "/v1/models/chatbot:predict",
     400, "missing ['seed']"),
    ("extra input", b'{"inputs": {"text": ["a"], "mood": ["b"]}}', "/v1/models/chatbot:predict", 400, "unknown input(s) ['mood']"),
    ("wrong dtype", b'{"instances": [1, 2]}', "/v1/models/chatbot:predict", 400, "must be string"),
    ("wrong control dtype", chat_body(top_k="many"), "/v1/models/chatbot:predict", 400, "'top_k' must be int32"),
    ("retrieval not a bool", chat_body(retrieval=1), "/v1/models/chatbot:predict", 400, "'retrieval' must be bool"),
    ("infinite temperature", chat_body().replace(b'"temperature": 1.0', b'"temperature": 1e400'),
     "/v1/models/chatbot:predict", 400, "temperature must be finite"),
    ("bad control value", chat_body(strategy="nucleus"), "/v1/models/chatbot:predict", 400, "strategy must be one of"),
    ("1 MB text", json.dumps({"instances": ["가" * 1_000_000]}).encode(), "/v1/models/chatbot:predict", 400,
     "exceeds this server's limit"),
    ("long text", json.dumps({"instances": ["가" * 5000]}, ensure_ascii=False).encode(), "/v1/models/chatbot:predict", 400,
     "longer than 1000 characters"),
    ("empty batch", b'{"instances": []}', "/v1/models/chatbot:predict", 400, "non-empty list"),
    ("empty columnar batch", b'{"inputs": {"text": []}}', "/v1/models/chatbot:predict", 400, "empty batch"),
    ("10,000-item batch", json.dumps({"instances": ["안녕"] * 10_000}).encode(), "/v1/models/chatbot:predict", 400,
     "at most 256 per request"),
    ("unknown URL", b"{}", "/v2/whatever", 404, "Malformed request"),
]


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_other_methods_get_a_json_405(server, rest, method):
    request = urllib.request.Request(server[1] + "/v1/models/chatbot:predict", data=b"{}", method=method)
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 405 and "use GET or POST" in json.loads(caught.value.read())["error"]
    assert rest.reply(["안녕"])  # Still serving.


@pytest.mark.parametrize("name, body, path, status, message", BAD_REST, ids=[case[0] for case in BAD_REST])
def test_bad_rest_requests_get_tf_serving_errors_and_the_server_keeps_serving(server, rest, name, body, path, status, message):
    got, answer = post(server[1], body, path)
    assert (got, list(answer)) == (status, ["error"]), answer
    assert message in answer["error"], answer
    assert len(rest.reply(["안녕"])) == 1  # Still serving.


BAD_GRPC = [
    ("unknown model", {"text": ["a"]}, {"model_name": "nobody"}, "NOT_FOUND"),
    ("unknown version", {"text": ["a"]}, {"version": 7}, "NOT_FOUND"),
    ("unknown signature", {"text": ["a"]}, {"signature_name": "x"}, "FAILED_PRECONDITION"),
    ("missing input", {}, {}, "INVALID_ARGUMENT"),
    ("extra input", {"text": ["a"], "mood": ["b"]}, {}, "INVALID_ARGUMENT"),
    ("wrong dtype", {"text": np.array([1.5], np.float32)}, {}, "INVALID_ARGUMENT"),
    ("1 MB text", {"text": ["가" * 1_000_000]}, {}, "INVALID_ARGUMENT"),
    ("empty batch", {"text": np.array([], object)}, {}, "INVALID_ARGUMENT"),
    ("10,000-item batch", {"text": ["안녕"] * 10_000}, {}, "INVALID_ARGUMENT"),
]


@pytest.mark.parametrize("name, inputs, spec, code", BAD_GRPC, ids=[case[0] for case in BAD_GRPC])
def test_bad_grpc_requests_get_tf_serving_codes(server, grpc_client, name, inputs, spec, code):
    client = GrpcClient(server[2], spec.get("model_name", "chatbot"))
    with pytest.raises(ServingError) as caught:
        client.predict(inputs, spec.get("signature_name", "serving_default"), spec.get("version"))
    assert caught.value.status == code, caught.value
    assert len(grpc_client.reply(["안녕"])) == 1


def test_chat_cli_through_the_server(server):
    for address in (server[2], server[1]):
        process = subprocess.run(
            [sys.executable, str(ROOT / "chat.py"), "--server", address],
            input="안녕하세요\n/set strategy beam\n배고파\n", capture_output=True, text=True, timeout=120, cwd=ROOT,
        )
        assert process.returncode == 0, process.stderr
        lines = process.stdout.splitlines()
        assert len(lines) == 3 and lines[0] and lines[1] == "strategy = 'beam'" and lines[2], lines
        assert "server error" not in process.stdout


def wait_for_state(client, version: str, state: str, seconds: float = 180):
    deadline = time.time() + seconds
    while time.time() < deadline:
        states = {s["version"]: s["state"] for s in client.status()["model_version_status"]}
        if states.get(version) == state:
            return
        time.sleep(0.2)
    raise AssertionError(f"version {version} never reached {state}: {states}")


def test_new_versions_are_picked_up_mid_traffic_and_a_broken_one_is_reported(server, rest, grpc_client):
    _, url, _, base, output = server
    failures, done, stop = [], [0], threading.Event()

    def traffic():
        client = RestClient(url)
        while not stop.is_set():
            try:
                assert len(client.reply(["오늘 뭐 해?"])) == 1
                done[0] += 1
            except Exception as error:  # Counted, never raised in the thread.
                failures.append(repr(error))

    threads = [threading.Thread(target=traffic) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        staging = base / ".incoming-2"
        shutil.copytree(base / "1", staging)
        staging.rename(base / "2")  # Appears whole, as export.py publishes.
        wait_for_state(rest, "2", "AVAILABLE")
        time.sleep(1.0)  # Traffic on the new version.
        broken = base / ".incoming-3"
        broken.mkdir()
        (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
        broken.rename(base / "3")
        wait_for_state(rest, "3", "END")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not failures and done[0] > 0, failures[:3]
    states = {s["version"]: s for s in rest.status()["model_version_status"]}
    assert states["1"]["state"] == "END" and states["2"]["state"] == "AVAILABLE"
    assert states["3"]["state"] == "END" and states["3"]["status"]["error_message"], states["3"]
    assert len(grpc_client.reply(["안녕"])) == 1  # Version 2 still serves.
    response = grpc_client.predict({"text": ["안녕"]})
    assert response["reply"].shape == (1,)
    assert any("version 3" in line and "failed to load" in line for line in output), "".join(output[-20:])


def test_binds_localhost_unless_told():
    sys.path.insert(0, str(ROOT))
    from serve import parse_args

    assert parse_args(["--model_base_path", "x"]).host == "127.0.0.1"
