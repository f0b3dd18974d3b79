"""serve.py with serving/{model_server,rest_api,grpc_api,client}.py: TF Serving's REST and gRPC APIs
against a real exported model: round trips, status codes for bad requests, live version updates."""

import json
import re
import shutil
import signal
import socket
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
    process, output = start_server(base, grpc_port, rest_port, "--file_system_poll_wait_seconds", "0.3",
                                   "--rest_api_timeout_in_ms", "1500", "--rest_api_idle_timeout_seconds", "3")
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


PREDICT = "/v1/models/chatbot:predict"
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
    # Found by fuzzing: each once answered 500 or 200.
    ("b64 that is not base64", b'{"instances": [{"b64": "!!!"}]}', PREDICT, 400, "'b64' is not base64"),
    ("lone surrogate", b'{"instances": ["\\ud800"]}', PREDICT, 400, "lone surrogate"),
    ("100,000 nested brackets", b"[" * 100_000 + b"]" * 100_000, PREDICT, 400, "nested too deeply"),
    ("40 levels of text", json.dumps({"inputs": {"text": json.loads("[" * 40 + '"a"' + "]" * 40)}}).encode(),
     PREDICT, 400, "must have rank 1"),
    ("70 levels of a number", chat_body(seed=json.loads("[" * 70 + "1" + "]" * 70)), PREDICT, 400,
     "not a rectangular int64 array"),
    ("empty question", b'{"instances": [""]}', PREDICT, 400, "input 'text' has an empty question"),
    ("whitespace question", b'{"instances": [" \\t\\n\\u3000 "]}', PREDICT, 400, "empty question"),
    ("zero-width question", b'{"instances": ["\\u200b"]}', PREDICT, 400, "empty question"),
    ("empty history", chat_body(history=[["", " "]]), PREDICT, 400, "'history' has a row whose turns are all empty"),
    ("one empty history row", chat_body(history=[["안녕"], [""]]), PREDICT, 400, "all empty"),
    ("infinite top_p", chat_body(top_p=float("inf")), PREDICT, 400, "top_p must be finite"),
    ("NaN temperature", chat_body().replace(b'"temperature": 1.0', b'"temperature": NaN'), PREDICT, 400,
     "temperature must be finite"),
    ("zero temperature", chat_body(temperature=0.0), PREDICT, 400, "temperature must be > 0"),
    ("negative top_k", chat_body(top_k=-1), PREDICT, 400, "top_k must be >= 0"),
    ("zero max_length", chat_body(max_length=0), PREDICT, 400, "max_length must be >= 1"),
    ("max_length past int32", chat_body(max_length=2**40), PREDICT, 400, "outside int32's range"),
    ("a float for an int", chat_body(top_k=1.5), PREDICT, 400, "'top_k' must be int32"),
    ("a list for a scalar", chat_body(seed=[1, 2]), PREDICT, 400, "'seed' must have rank 0"),
    ("history of rank 1", chat_body(history=["안녕"]), PREDICT, 400, "'history' must have rank 2"),
    ("ragged history", chat_body(history=[["a", "b"], ["c"]]), PREDICT, 400, "same length"),
    ("not UTF-8 bytes", b'{"instances": [{"b64": "//79"}]}', PREDICT, 400, "not valid UTF-8"),
    ("control character", b'{"instances": ["\\u0007bell"]}', PREDICT, 400, "control character (U+0007)"),
    ("NUL", b'{"instances": ["a\\u0000b"]}', PREDICT, 400, "control character (U+0000)"),
    ("body is a list", b"[1, 2]", PREDICT, 400, "must be a JSON object"),
    ("body is null", b"null", PREDICT, 400, "must be a JSON object"),
    ("empty body", b"", PREDICT, 400, "JSON Parse error"),
    ("body not UTF-8", b'\xff\xfe{"instances": ["a"]}', PREDICT, 400, "JSON Parse error"),
    ("instances null", b'{"instances": null}', PREDICT, 400, "non-empty list"),
    ("instances a string", b'{"instances": "abc"}', PREDICT, 400, "non-empty list"),
    ("both keys", b'{"instances": ["a"], "inputs": ["a"]}', PREDICT, 400, "give exactly one"),
    ("unknown body key", b'{"instances": ["a"], "mood": 1}', PREDICT, 400, "unknown key(s) ['mood']"),
    ("signature_name a number", b'{"signature_name": 5, "instances": ["a"]}', PREDICT, 400, "must be a string"),
    ("a bool for a string", b'{"instances": [true]}', PREDICT, 400, "must be string"),
    ("rows with other keys", b'{"instances": [{"text": "a"}, {"txt": "b"}]}', PREDICT, 400, "same keys"),
    ("rank-3 text", b'{"inputs": {"text": [[["a"]]]}}', PREDICT, 400, "must have rank 1"),
    ("version not a number", b'{"instances": ["a"]}', "/v1/models/chatbot/versions/abc:predict", 400,
     "positive integer"),
    ("POST to metadata", b'{"instances": ["a"]}', "/v1/models/chatbot/metadata", 404, "Malformed request"),
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


def chat_inputs(**override):
    from serving.client import chat_arrays

    return {**chat_arrays([["안녕"]]), **{k: np.array(v) for k, v in override.items()}}


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
    ("6 MB message", {"text": ["가" * 2_000_000]}, {}, "RESOURCE_EXHAUSTED"),  # gRPC's 4 MiB receive limit.
    ("empty question", {"text": [""]}, {}, "INVALID_ARGUMENT"),
    ("whitespace question", {"text": ["  \t"]}, {}, "INVALID_ARGUMENT"),
    ("not UTF-8", {"text": np.array([b"\xff\xfe"], object)}, {}, "INVALID_ARGUMENT"),
    ("control character", {"text": ["\x07"]}, {}, "INVALID_ARGUMENT"),
    ("rank-2 text", {"text": [["a"]]}, {}, "INVALID_ARGUMENT"),
    ("empty history", chat_inputs(history=[[""]]), {"signature_name": "chat"}, "INVALID_ARGUMENT"),
    ("NaN temperature", chat_inputs(temperature=np.float32("nan")), {"signature_name": "chat"}, "INVALID_ARGUMENT"),
    ("infinite top_p", chat_inputs(top_p=np.float32("inf")), {"signature_name": "chat"}, "INVALID_ARGUMENT"),
    ("unknown strategy", chat_inputs(strategy="nucleus"), {"signature_name": "chat"}, "INVALID_ARGUMENT"),
    ("zero max_length", chat_inputs(max_length=np.int32(0)), {"signature_name": "chat"}, "INVALID_ARGUMENT"),
    ("int64 for int32", chat_inputs(top_k=np.int64(1)), {"signature_name": "chat"}, "INVALID_ARGUMENT"),
    ("version label", {"text": ["a"]}, {"version_label": "stable"}, "INVALID_ARGUMENT"),
]


@pytest.mark.parametrize("name, inputs, spec, code", BAD_GRPC, ids=[case[0] for case in BAD_GRPC])
def test_bad_grpc_requests_get_tf_serving_codes(server, grpc_client, name, inputs, spec, code):
    client = GrpcClient(server[2], spec.get("model_name", "chatbot"))
    with pytest.raises(ServingError) as caught:
        if "version_label" in spec:
            from tensorflow_serving.apis import predict_pb2

            request = predict_pb2.PredictRequest()
            request.model_spec.name, request.model_spec.version_label = "chatbot", spec["version_label"]
            client._rpc(client.predictions.Predict, request)
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
    """REST and gRPC clients keep asking while version 2 is published, then two broken ones (a graph that
    is not a SavedModel, a SavedModel without its variables): no request fails, every gRPC reply names a
    whole version (1, then 2), the broken ones are reported as TF Serving reports them and 2 keeps serving."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    _, url, grpc_target, base, output = server
    failures, done, seen, stop = [], [0], set(), threading.Event()

    def rest_traffic():
        client = RestClient(url)
        while not stop.is_set():
            try:
                assert len(client.reply(["오늘 뭐 해?"])) == 1
                done[0] += 1
            except Exception as error:  # Counted, never raised in the thread.
                failures.append(repr(error))

    def grpc_traffic():
        client = GrpcClient(grpc_target, "chatbot")
        request = predict_pb2.PredictRequest()
        request.model_spec.name, request.model_spec.signature_name = "chatbot", "serving_default"
        request.inputs["text"].CopyFrom(tf.make_tensor_proto(["오늘 뭐 해?"]))
        while not stop.is_set():
            try:
                response = client.predictions.Predict(request, timeout=60)
                seen.add(response.model_spec.version.value)
                done[0] += 1
            except Exception as error:
                failures.append(repr(error))

    threads = [threading.Thread(target=t) for t in (rest_traffic, rest_traffic, grpc_traffic, grpc_traffic)]
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
        no_variables = base / ".incoming-4"
        shutil.copytree(base / "2", no_variables, ignore=shutil.ignore_patterns("variables"))
        no_variables.rename(base / "4")
        wait_for_state(rest, "4", "END")
        time.sleep(0.5)  # Traffic after both failures.
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not failures and done[0] > 0, failures[:3]
    assert seen == {1, 2}, seen  # Replies came from whole versions only.
    states = {s["version"]: s for s in rest.status()["model_version_status"]}
    assert states["1"]["state"] == "END" and states["2"]["state"] == "AVAILABLE"
    for version in ("3", "4"):
        assert states[version]["state"] == "END" and states[version]["status"]["error_message"], states[version]
    assert len(grpc_client.reply(["안녕"])) == 1  # Version 2 still serves.
    response = grpc_client.predict({"text": ["안녕"]})
    assert response["reply"].shape == (1,)
    for version in (3, 4):
        assert any(f"version {version}" in line and "failed to load" in line for line in output), "".join(output[-20:])


def test_binds_localhost_unless_told():
    from serve import parse_args

    assert parse_args(["--model_base_path", "x"]).host == "127.0.0.1"


def raw_exchange(url: str, data: bytes, seconds: float = 10) -> bytes:
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=seconds) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


RAW_HTTP = [
    ("garbage request line", b"GARBAGE\r\n\r\n", 400),
    ("no Host header", b"GET /v1/models/chatbot HTTP/1.1\r\n\r\n", 400),
    ("bad header line", b"GET /v1/models/chatbot HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400),
    ("negative Content-Length", b"POST /v1/models/chatbot:predict HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
    ("bad chunk size", b"POST /v1/models/chatbot:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
     400),
    ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 405),
    ("TLS hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 60, 400),
    ("half-sent headers", b"POST /v1/models/chatbot:predict HTTP/1.1\r\nHost: x\r\n", 408),
    ("half-sent body", b"POST /v1/models/chatbot:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{", 408),
    ("PATCH", b"PATCH /v1/models/chatbot HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", 405),
]


@pytest.mark.parametrize("name, data, status", RAW_HTTP, ids=[case[0] for case in RAW_HTTP])
def test_malformed_http_gets_a_json_4xx_and_the_server_keeps_serving(server, rest, name, data, status):
    head, _, body = raw_exchange(server[1], data).partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), head[:100]
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # The first answer (more may follow).
    assert b"Access-Control-Allow-Origin: *" in head and list(json.loads(body[:length])) == ["error"]
    assert len(rest.reply(["안녕"])) == 1


def server_threads(process) -> int:
    return int(re.search(r"Threads:\s+(\d+)", open(f"/proc/{process.pid}/status").read()).group(1))


def test_idle_and_half_sent_connections_hold_no_threads_and_a_good_request_still_answers(server, rest):
    process, url = server[0], server[1]
    port = int(url.rsplit(":", 1)[1])
    before = server_threads(process)
    held = []
    for number in range(600):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if number % 2:
            sock.sendall(b"POST /v1/models/chatbot:predict HTTP/1.1\r\nHost: x\r\nContent-Le")
        held.append(sock)
    try:
        started = time.monotonic()
        assert len(rest.reply(["안녕"])) == 1
        assert time.monotonic() - started < 1.0
        assert server_threads(process) <= before + 16  # The REST pool at most, whatever the connections.
    finally:
        for sock in held:
            sock.close()


def test_a_burst_of_concurrent_clients_gets_only_answers(server):
    results, lock = [], threading.Lock()

    def client(number):
        body = json.dumps({"instances": [f"안녕 {number}"]}).encode() if number % 3 else b'{"instances": [""]}'
        status, answer = post(server[1], body)
        with lock:
            results.append((number % 3 != 0, status, list(answer)))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(48)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(results) == 48
    assert all((status, keys) == ((200, ["predictions"]) if good else (400, ["error"])) for good, status, keys in results)


def test_sigterm_finishes_requests_in_flight_and_exits_0(server):
    """Last in this module: it stops the module's server."""
    process, url = server[0], server[1]
    results, lock, started = [], threading.Lock(), threading.Event()

    def client():
        started.set()
        try:
            results_of = post(url, json.dumps({"signature_name": "chat", "inputs": json.loads(chat_body(
                strategy="beam", max_length=24))["inputs"]}).encode())
        except OSError as error:  # Refused: sent after the listener closed.
            results_of = ("refused", repr(error))
        with lock:
            results.append(results_of)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    started.wait()
    time.sleep(0.3)  # Requests in flight.
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    for thread in threads:
        thread.join(60)
    assert len(results) == 8 and all(r[0] in (200, "refused") for r in results), results
    assert sum(r[0] == 200 for r in results) >= 1
