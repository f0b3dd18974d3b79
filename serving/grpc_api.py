"""TF Serving's gRPC API over a `ModelServer`, from `tensorflow-serving-api`'s service definitions.

    tensorflow.serving.PredictionService/Predict, /GetModelMetadata
    tensorflow.serving.ModelService/GetModelStatus

Clients written for TF Serving (`prediction_service_pb2_grpc.PredictionServiceStub`)
work unchanged. Errors abort the call with TF Serving's status code and message.
"""

from __future__ import annotations

import logging
from concurrent import futures

import grpc
import tensorflow as tf
from tensorflow_serving.apis import (
    model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc,
)

from serving.api_messages import metadata_response, status_response
from serving.loaded_model import RequestError
from serving.model_server import ModelServer

log = logging.getLogger("serve")


def _version(model_spec) -> int | None:
    if model_spec.HasField("version_label"):
        raise RequestError("INVALID_ARGUMENT", "version labels are not supported by this server; give a version")
    return model_spec.version.value if model_spec.HasField("version") else None


def _abort(context, error: Exception):
    if isinstance(error, RequestError):
        context.abort(grpc.StatusCode[error.code], error.message)
    log.exception("internal error")
    context.abort(grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {error}")


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, server: ModelServer):
        self.server = server

    def Predict(self, request, context):  # noqa: N802 (gRPC method name)
        try:
            spec = request.model_spec
            signature_name = spec.signature_name or "serving_default"
            loaded = self.server.resolve(spec.name, _version(spec))
            if signature_name not in loaded.signatures:  # TF Serving's gRPC wording and code.
                raise RequestError("FAILED_PRECONDITION", f'Serving signature key "{signature_name}" not found.')
            inputs = {}
            for key, proto in request.inputs.items():
                try:
                    inputs[key] = tf.make_ndarray(proto)
                except (TypeError, ValueError) as error:
                    raise RequestError("INVALID_ARGUMENT", f"input {key!r} is not a valid TensorProto: {error}") from error
            outputs = self.server.predict(loaded, signature_name, inputs)
            response = predict_pb2.PredictResponse()
            response.model_spec.name = spec.name
            response.model_spec.version.value = loaded.version
            response.model_spec.signature_name = signature_name
            for key, value in outputs.items():
                response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
            return response
        except Exception as error:
            _abort(context, error)

    def GetModelMetadata(self, request, context):  # noqa: N802
        try:
            if list(request.metadata_field) != ["signature_def"]:
                raise RequestError("INVALID_ARGUMENT", "metadata_field must be ['signature_def']")
            loaded = self.server.resolve(request.model_spec.name, _version(request.model_spec))
            return metadata_response(request.model_spec.name, loaded)
        except Exception as error:
            _abort(context, error)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, server: ModelServer):
        self.server = server

    def GetModelStatus(self, request, context):  # noqa: N802
        try:
            return status_response(self.server.status(request.model_spec.name, _version(request.model_spec)))
        except Exception as error:
            _abort(context, error)


def start_grpc(server: ModelServer, host: str, port: int, max_workers: int = 32,
               max_message_bytes: int = 4 << 20) -> tuple[grpc.Server, int]:
    """A started gRPC server and its port (0 picks a free one); 4 MiB messages, gRPC's default."""
    # No SO_REUSEPORT: a second server on a taken port must fail, not share it silently.
    options = [("grpc.max_receive_message_length", max_message_bytes), ("grpc.so_reuseport", 0)]
    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers), options=options)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(server), grpc_server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(server), grpc_server)
    bound = grpc_server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind gRPC to {host}:{port}")
    grpc_server.start()
    return grpc_server, bound
