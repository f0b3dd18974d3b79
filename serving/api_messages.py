"""TF Serving's API messages, built from the server's state (shared by the REST and gRPC fronts).

The same protos (`tensorflow-serving-api`) answer both protocols; REST sends their
JSON form, as TF Serving's own HTTP handler does. Error codes are gRPC status
names, mapped to HTTP statuses as TF Serving maps them.
"""

from __future__ import annotations

from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

from serving.model_server import VersionState

# TF Serving's mapping from gRPC status codes to HTTP statuses (model_servers/http_server.cc).
HTTP_STATUS = {
    "INVALID_ARGUMENT": 400, "OUT_OF_RANGE": 400, "FAILED_PRECONDITION": 400, "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429, "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504, "UNAUTHENTICATED": 401, "INTERNAL": 500, "UNKNOWN": 500,
}


def status_response(states: dict[int, VersionState]) -> get_model_status_pb2.GetModelStatusResponse:
    response = get_model_status_pb2.GetModelStatusResponse()
    for version, state in states.items():
        entry = response.model_version_status.add()
        entry.version = version
        entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(state.state)
        entry.status.SetInParent()  # error_code OK, error_message "" (TF Serving always sends both).
        if state.error:
            entry.status.error_code = 2  # UNKNOWN: the load failed.
            entry.status.error_message = state.error
    return response


def metadata_response(model_name: str, loaded) -> get_model_metadata_pb2.GetModelMetadataResponse:
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = model_name
    response.model_spec.version.value = loaded.version
    signatures = get_model_metadata_pb2.SignatureDefMap()
    for name, signature in loaded.signatures.items():
        signatures.signature_def[name].CopyFrom(signature)
    response.metadata["signature_def"].Pack(signatures)
    return response


def to_json(message) -> dict:
    """A proto in the JSON form TF Serving's REST API uses."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
