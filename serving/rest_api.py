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
import json
import logging
import re
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import tensorflow as tf

from serving.api_messages import HTTP_STATUS, metadata_response, status_response, to_json
from serving.loaded_model import RequestError
from serving.model_server import ModelServer

log = logging.getLogger("serve")
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
        array = np.array(_to_bytes(value, name), dtype=object)
        if not all(isinstance(v, bytes) for v in array.ravel()):
            raise RequestError("INVALID_ARGUMENT", f"input {name!r}: rows of strings must all have the same length")
        return array
    array = np.array(value)
    if dtype == tf.bool:  # JSON true / false, as TF Serving takes DT_BOOL.
        if array.dtype.kind != "b":
            raise RequestError("INVALID_ARGUMENT", f"input {name!r} must be bool (true or false); got {str(value)[:60]!r}")
        return array
    wanted = "f" if dtype.is_floating else "i"
    if array.dtype.kind not in ({"f", "i", "u"} if wanted == "f" else {"i", "u"}):
        raise RequestError("INVALID_ARGUMENT", f"input {name!r} must be {dtype.name}; got {str(value)[:60]!r}")
    return array.astype(dtype.as_numpy_dtype)


def _to_bytes(value, name: str):
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        return base64.b64decode(value["b64"])
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


def make_handler(server: ModelServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # Keep-alive: clients reuse connections.

        def setup(self):
            super().setup()
            # Headers and body go out at once: no Nagle delay waiting for the client's delayed ACK.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self):
            page = WEB_FILES.get(self.path.split("?", 1)[0])
            if page:
                self._send(200, (WEB_DIR / page[0]).read_bytes(), page[1])
            else:
                self._answer(self._get)

        def do_OPTIONS(self):  # The CORS preflight of a page on another origin.
            self._send(204, b"", None)

        def _method_not_allowed(self):
            body = {"error": f"{self.command} is not allowed on {self.path.split('?', 1)[0]}; use GET or POST"}
            self.close_connection = True  # Whatever body it sent is not read.
            self._send(405, json.dumps(body).encode("utf-8"), "application/json")

        do_PUT = do_DELETE = do_PATCH = _method_not_allowed

        def do_POST(self):
            self._answer(self._post)

        def _get(self) -> dict:
            name, version, rest = parse_path(self.path)
            if rest == ":predict":
                raise RequestError("INVALID_ARGUMENT", "predict needs POST")
            if rest == "/metadata":
                return to_json(metadata_response(name, server.resolve(name, version)))
            return to_json(status_response(server.status(name, version)))

        def _post(self) -> dict:
            name, version, rest = parse_path(self.path)
            if rest != ":predict":
                raise RequestError("NOT_FOUND", f"Malformed request: POST {self.path}")
            body = self._json_body()
            signature_name = body.get("signature_name", "serving_default") if isinstance(body, dict) else ""
            loaded = server.resolve(name, version)
            inputs, row_format = request_inputs(body, loaded.input_specs(signature_name))
            outputs = server.predict(loaded, signature_name, inputs)
            return predict_body(outputs, row_format)

        def _json_body(self):
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                self.close_connection = True
                raise RequestError("INVALID_ARGUMENT", "a Content-Length header is required")
            if int(length) > server.limits.max_body_bytes:
                self._discard(int(length))
                raise RequestError(
                    "INVALID_ARGUMENT",
                    f"request body of {length} bytes exceeds this server's limit of {server.limits.max_body_bytes}",
                )
            raw = self.rfile.read(int(length))
            try:
                return json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise RequestError("INVALID_ARGUMENT", f"JSON Parse error: {error}") from error

        def _discard(self, length: int) -> None:
            """Read and drop a refused body, so the client gets the 400 instead of a broken pipe."""
            self.close_connection = True
            if length > 64 * server.limits.max_body_bytes:
                return  # Not worth reading: the connection just closes.
            while length > 0:
                chunk = self.rfile.read(min(length, 1 << 16))
                if not chunk:
                    return
                length -= len(chunk)

        def _answer(self, route) -> None:
            try:
                status, body = 200, route()
            except RequestError as error:
                status, body = HTTP_STATUS.get(error.code, 500), {"error": error.message}
            except Exception as error:  # Never let one request take the server down.
                log.exception("internal error on %s", self.path)
                status, body = 500, {"error": f"internal error: {type(error).__name__}: {error}"}
            self._send(status, json.dumps(body, ensure_ascii=False).encode("utf-8"), "application/json")

        def _send(self, status: int, data: bytes, content_type: str | None) -> None:
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            for header, value in CORS_HEADERS.items():
                self.send_header(header, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format, *args):  # noqa: A002 (BaseHTTPRequestHandler's signature)
            log.debug("%s " + format, self.address_string(), *args)

    return Handler


def start_rest(server: ModelServer, host: str, port: int) -> ThreadingHTTPServer:
    httpd = ThreadingHTTPServer((host, port), make_handler(server))
    httpd.daemon_threads = True
    return httpd
