"""TF Serving's REST API over a `ModelServer` (same URLs, bodies and error shape).

    GET  /v1/models/{name}[/versions/{v}]            model status
    GET  /v1/models/{name}[/versions/{v}]/metadata   signatures
    POST /v1/models/{name}[/versions/{v}]:predict    {"signature_name"?, "instances": [...]}  (row)
                                                     {"signature_name"?, "inputs": ...}       (columnar)

Row requests answer `{"predictions": [...]}`, columnar ones `{"outputs": ...}`;
errors answer `{"error": "..."}` with TF Serving's HTTP status. Strings travel as
UTF-8 JSON strings (or `{"b64": ...}` for raw bytes). Like TF Serving's REST server,
every answer carries `Access-Control-Allow-Origin: *` and `OPTIONS` answers the CORS
preflight, so a page hosted elsewhere can call it. `GET /` serves the chat page
(`serving/web/`: plain files that use only the API above).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from pathlib import Path

import numpy as np
import tensorflow as tf

from serving.api_messages import HTTP_STATUS, metadata_response, status_response, to_json
from serving.http_server import HttpLimits, HttpServer, Request, Response, json_body, json_error
from serving.loaded_model import RequestError
from serving.model_server import ModelServer

WEB_DIR = Path(__file__).resolve().parent / "web"
WEB_FILES = {"/": ("index.html", "text/html; charset=utf-8"), "/index.html": ("index.html", "text/html; charset=utf-8"),
             "/chat.js": ("chat.js", "text/javascript; charset=utf-8"), "/chat.css": ("chat.css", "text/css; charset=utf-8")}
CORS_HEADERS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Max-Age": "86400"}
_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?(?P<rest>/metadata|:predict)?$")


def parse_path(path: str) -> tuple[str, int | None, str]:
    """(model name, version or None, "" | "/metadata" | ":predict"), or NOT_FOUND."""
    match = _PATH.match(path.split("?", 1)[0])
    if not match:
        raise RequestError("NOT_FOUND", f"Malformed request: {path}")
    version = match["version"]
    if version is not None and not version.isdigit():
        raise RequestError("INVALID_ARGUMENT", f"version must be a positive integer, got {version!r}")
    return match["name"], int(version) if version else None, match["rest"] or ""


def request_inputs(body: dict, specs: dict) -> tuple[dict[str, np.ndarray], bool]:
    """(inputs by name, True if row format) from a predict body, typed by the signature."""
    if not isinstance(body, dict):
        raise RequestError("INVALID_ARGUMENT", "the request body must be a JSON object")
    unknown = set(body) - {"signature_name", "instances", "inputs"}
    if unknown:
        raise RequestError("INVALID_ARGUMENT", f"unknown key(s) {sorted(unknown)} in the request body")
    if ("instances" in body) == ("inputs" in body):
        raise RequestError("INVALID_ARGUMENT", "Missing 'inputs' or 'instances' key (give exactly one)")
    names = sorted(specs)
    if "instances" in body:
        columns = _rows_to_columns(body["instances"], names)
    elif isinstance(body["inputs"], dict):
        columns = body["inputs"]
    elif len(names) == 1:
        columns = {names[0]: body["inputs"]}
    else:
        raise RequestError("INVALID_ARGUMENT", f"'inputs' must be an object with keys {names}")
    unknown = sorted(set(columns) - set(names))
    if unknown:
        raise RequestError("INVALID_ARGUMENT", f"unknown input(s) {unknown}; the signature takes {names}")
    return {k: to_array(v, specs[k][0], k) for k, v in columns.items()}, "instances" in body


def _rows_to_columns(instances, names: list[str]) -> dict:
    if not isinstance(instances, list) or not instances:
        raise RequestError("INVALID_ARGUMENT", "'instances' must be a non-empty list")
    if len(names) == 1 and not all(isinstance(row, dict) and "b64" not in row for row in instances):
        return {names[0]: instances}
    if not all(isinstance(row, dict) for row in instances):
        raise RequestError("INVALID_ARGUMENT", f"each instance must be an object with keys {names}")
    keys = set(instances[0])
    if any(set(row) != keys for row in instances):
        raise RequestError("INVALID_ARGUMENT", "every instance must have the same keys")
    return {key: [row[key] for row in instances] for key in keys}


def to_array(value, dtype: tf.DType, name: str) -> np.ndarray:
    """A JSON value as a numpy array of the signature's dtype, or INVALID_ARGUMENT naming `name`."""
    if dtype == tf.string:
        try:
            array = np.array(_to_bytes(value, name), dtype=object)
        except (ValueError, RecursionError) as error:
            raise RequestError("INVALID_ARGUMENT", f"input {name!r} is not a rectangular array of strings") from error
        if not all(isinstance(v, bytes) for v in array.ravel()):
            raise RequestError("INVALID_ARGUMENT", f"input {name!r}: rows of strings must all have the same length")
        return array
    try:
        array = np.array(value)
    except (ValueError, TypeError, OverflowError, RecursionError) as error:  # Ragged, too deep, too large.
        raise RequestError("INVALID_ARGUMENT", f"input {name!r} is not a rectangular {dtype.name} array: {error}") from error
    if dtype == tf.bool:  # JSON true / false, as TF Serving takes DT_BOOL.
        if array.dtype.kind != "b":
            raise RequestError("INVALID_ARGUMENT", f"input {name!r} must be bool (true or false); got {str(value)[:60]!r}")
        return array
    wanted = "f" if dtype.is_floating else "i"
    if array.dtype.kind not in ({"f", "i", "u"} if wanted == "f" else {"i", "u"}):
        raise RequestError("INVALID_ARGUMENT", f"input {name!r} must be {dtype.name}; got {str(value)[:60]!r}")
    if array.dtype.kind in "iu" and array.size and dtype.is_integer and (
            array.min() < dtype.min or array.max() > dtype.max):
        raise RequestError("INVALID_ARGUMENT", f"input {name!r} holds a value outside {dtype.name}'s range")
    return array.astype(dtype.as_numpy_dtype)


def _to_bytes(value, name: str):
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as error:  # "\ud800" in JSON: a lone surrogate is no text.
            raise RequestError("INVALID_ARGUMENT", f"input {name!r} holds a lone surrogate ({error.reason})") from error
    if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError) as error:
            raise RequestError("INVALID_ARGUMENT", f"input {name!r}: 'b64' is not base64 ({error})") from error
    if isinstance(value, list):
        return [_to_bytes(v, name) for v in value]
    raise RequestError("INVALID_ARGUMENT", f"input {name!r} must be string; got {str(value)[:60]!r}")


def to_json_value(array: np.ndarray):
    if array.dtype == object:
        return _decode_strings(array.tolist())
    return array.tolist()


def _decode_strings(value):
    if isinstance(value, list):
        return [_decode_strings(v) for v in value]
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(value).decode("ascii")}


def predict_body(outputs: dict[str, np.ndarray], row_format: bool) -> dict:
    values = {k: to_json_value(v) for k, v in outputs.items()}
    if not row_format:
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    rows = len(next(iter(values.values())))
    return {"predictions": [{k: v[i] for k, v in values.items()} for i in range(rows)]}


class RestApi:
    """Answers one parsed HTTP request (`serving/http_server.py` owns the connections)."""

    def __init__(self, server: ModelServer):
        self.server = server

    def handle(self, request: Request) -> Response:
        path = request.target.split("?", 1)[0]
        if request.method == "OPTIONS":  # The CORS preflight of a page on another origin.
            return Response(204, content_type=None)
        method = "GET" if request.method == "HEAD" else request.method  # HEAD: GET's answer, no body.
        if method == "GET" and path in WEB_FILES:
            name, content_type = WEB_FILES[path]
            return Response(200, (WEB_DIR / name).read_bytes(), content_type)
        if method not in ("GET", "POST"):
            return json_error(405, f"{request.method} is not allowed on {path}; use GET or POST",
                              Allow="GET, HEAD, POST, OPTIONS")
        try:
            body = self._get(request.target) if method == "GET" else self._post(request)
        except RequestError as error:
            return json_error(HTTP_STATUS.get(error.code, 500), error.message)
        return Response(200, json_body(body))

    def _get(self, target: str) -> dict:
        name, version, rest = parse_path(target)
        if rest == ":predict":
            raise RequestError("INVALID_ARGUMENT", "predict needs POST")
        if rest == "/metadata":
            return to_json(metadata_response(name, self.server.resolve(name, version)))
        return to_json(status_response(self.server.status(name, version)))

    def _post(self, request: Request) -> dict:
        name, version, rest = parse_path(request.target)
        if rest != ":predict":
            raise RequestError("NOT_FOUND", f"Malformed request: POST {request.target}")
        body = parse_json(request.body)
        if not isinstance(body, dict):
            raise RequestError("INVALID_ARGUMENT", "the request body must be a JSON object")
        signature_name = body.get("signature_name", "serving_default")
        if not isinstance(signature_name, str):
            raise RequestError("INVALID_ARGUMENT", "'signature_name' must be a string")
        loaded = self.server.resolve(name, version)
        inputs, row_format = request_inputs(body, loaded.input_specs(signature_name))
        outputs = self.server.predict(loaded, signature_name, inputs)
        return predict_body(outputs, row_format)


def parse_json(raw: bytes):
    """A request body as JSON, or INVALID_ARGUMENT saying why (syntax, encoding, nesting)."""
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RequestError("INVALID_ARGUMENT", f"JSON Parse error: {error}") from error
    except RecursionError as error:
        raise RequestError("INVALID_ARGUMENT", "JSON Parse error: nested too deeply") from error


def start_rest(server: ModelServer, host: str, port: int, limits: HttpLimits | None = None) -> HttpServer:
    """TF Serving's REST API and the chat page on host:port, started (`.port`, `.stop(grace_s)`)."""
    limits = limits or HttpLimits(max_body_bytes=server.limits.max_body_bytes)
    return HttpServer(RestApi(server).handle, host, port, limits, extra_headers=CORS_HEADERS).start()
