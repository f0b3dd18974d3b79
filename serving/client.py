"""Talk to the chatbot through TF Serving's APIs: `RestClient` (:8501) and `GrpcClient` (:8500).

Both work against `serve.py` and against the official `tensorflow/serving` image:

    client = connect("127.0.0.1:8500")                 # gRPC; "http://127.0.0.1:8501" for REST
    client.reply(["오늘 너무 피곤해"])                    # serving_default, greedy
    client.chat([["배고파", "뭐 먹을까요?", "라면"]], strategy="sample", top_p=0.9, seed=7)
    client.status()

Errors from the server raise `ServingError` with its status and message.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np

from config import DecodingSettings

_SERVED = DecodingSettings()  # The `chat` signature's inputs (the API's `max_length` is the reply's length).
CHAT_DEFAULTS = {"strategy": _SERVED.strategy, "temperature": _SERVED.temperature, "top_k": _SERVED.top_k,
                 "top_p": _SERVED.top_p, "max_length": _SERVED.max_reply_length, "seed": 0,
                 "retrieval": _SERVED.retrieval}
MAX_TURNS = 16  # The latest turns a chat client sends with each message (the graph keeps what its model saw).
CHAT_DTYPES = {"temperature": np.float32, "top_k": np.int32, "top_p": np.float32, "max_length": np.int32, "seed": np.int64,
               "retrieval": np.bool_}


class ServingError(Exception):
    def __init__(self, status, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def chat_columns(history: list[list[str]], **controls) -> dict:
    """The `chat` signature's inputs: rows padded with "" to one length, controls filled with defaults."""
    unknown = set(controls) - set(CHAT_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown decoding controls {sorted(unknown)}; known: {sorted(CHAT_DEFAULTS)}")
    width = max(1, max((len(turns) for turns in history), default=1))
    padded = [list(turns) + [""] * (width - len(turns)) for turns in history]
    return {"history": padded, **CHAT_DEFAULTS, **controls}


def chat_arrays(history: list[list[str]], **controls) -> dict[str, np.ndarray]:
    """`chat_columns` as numpy arrays of the signature's dtypes (for gRPC and in-process calls)."""
    return {k: np.array(v, dtype=CHAT_DTYPES.get(k, object)) for k, v in chat_columns(history, **controls).items()}


class RestClient:
    def __init__(self, url: str = "http://127.0.0.1:8501", model_name: str = "chatbot", timeout: float = 30.0):
        self.base = f"{url.rstrip('/')}/v1/models/{model_name}"
        self.timeout = timeout

    def _call(self, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(self.base + path, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            body = error.read()
            try:
                message = json.loads(body).get("error", body.decode("utf-8", "replace"))
            except ValueError:
                message = body.decode("utf-8", "replace")
            raise ServingError(error.code, message) from None

    def predict(self, body: dict, version: int | None = None) -> dict:
        path = (f"/versions/{version}" if version else "") + ":predict"
        return self._call(path, body)

    def reply(self, texts: list[str]) -> list[str]:
        return self.predict({"instances": list(texts)})["predictions"]

    def chat(self, history: list[list[str]], **controls) -> list[str]:
        body = {"signature_name": "chat", "inputs": chat_columns(history, **controls)}
        return self.predict(body)["outputs"]

    def status(self) -> dict:
        return self._call("")

    def metadata(self) -> dict:
        return self._call("/metadata")


class GrpcClient:
    def __init__(self, target: str = "127.0.0.1:8500", model_name: str = "chatbot", timeout: float = 30.0):
        import grpc
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        self.channel = grpc.insecure_channel(target)
        self.predictions = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)
        self.model_name = model_name
        self.timeout = timeout

    def _rpc(self, method, request):
        import grpc

        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as error:
            raise ServingError(error.code().name, error.details()) from None

    def predict(self, inputs: dict, signature_name: str = "serving_default", version: int | None = None) -> dict:
        """Inputs as numpy-convertible values (dtypes as the signature's) -> outputs as numpy arrays."""
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        request.model_spec.name = self.model_name
        request.model_spec.signature_name = signature_name
        if version:
            request.model_spec.version.value = version
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        response = self._rpc(self.predictions.Predict, request)
        return {key: tf.make_ndarray(proto) for key, proto in response.outputs.items()}

    def reply(self, texts: list[str]) -> list[str]:
        return [r.decode("utf-8") for r in self.predict({"text": list(texts)})["reply"]]

    def chat(self, history: list[list[str]], **controls) -> list[str]:
        return [r.decode("utf-8") for r in self.predict(chat_arrays(history, **controls), "chat")["reply"]]

    def status(self) -> dict:
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_status_pb2

        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = self.model_name
        response = self._rpc(self.models.GetModelStatus, request)
        return json_format.MessageToDict(response, preserving_proto_field_name=True)


def connect(server: str, model_name: str = "chatbot"):
    """`http(s)://host:port` -> REST client; `host:port` or `grpc://host:port` -> gRPC client."""
    if server.startswith(("http://", "https://")):
        return RestClient(server, model_name)
    return GrpcClient(server.removeprefix("grpc://"), model_name)


class RemoteReplies:
    """Chat replies from a server's `chat` signature (for chat.py), like `LocalReplies.reply_to`.

    The history travels as it is (at most `MAX_TURNS` of the latest turns); the exported
    graph keeps as many as its model was trained to see and adds the character's
    persona. Beam width, length penalty and the no-repeat n-gram size were fixed at
    export; the other settings travel with each request. Without a seed, each request
    draws a fresh one.
    """


    def __init__(self, client):
        self.client = client

    def reply_to(self, history: list[str], settings) -> str:
        import random

        seed = settings.seed if settings.seed is not None else random.randrange(2**31)
        return self.client.chat(
            [history[-MAX_TURNS:]], strategy=settings.strategy,
            temperature=settings.temperature, top_k=settings.top_k, top_p=settings.top_p,
            max_length=settings.max_reply_length, seed=seed, retrieval=settings.retrieval,
        )[0]
