"""The model behind both APIs: versions under a base path, request limits, batching.

`ModelServer` follows TF Serving's model manager with its default version policy:
it serves the highest integer version under `--model_base_path`, polls for new
ones, loads a new version (replaying its `assets.extra` warm-up requests) before
switching to it, and keeps serving the old one if the new one fails to load
(the failure shows in the model status). Requests already running on an old version
finish on it. `predict` checks a request against the signature and the limits,
then runs it, batched with concurrent requests to the same signature when every
input has a batch dimension (`Batcher`).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from data_pipeline.sources import CONTROL_CHARACTERS
from run_directory import ExportVersion, versions
from serving.batching import Batcher
from serving.loaded_model import LoadedVersion, RequestError, session_config

log = logging.getLogger("serve")


@dataclass(frozen=True)
class Limits:
    """What one request may contain; beyond it, INVALID_ARGUMENT (HTTP 400)."""

    max_body_bytes: int = 1 << 20  # REST request body.
    max_rows: int = 256  # Batch size of one request.
    max_text_chars: int = 1000  # Characters in one string element.


@dataclass
class VersionState:
    state: str  # LOADING | AVAILABLE | END (TF Serving's ModelVersionStatus.State)
    error: str = ""  # Why loading failed, if it did.


class ModelServer:
    def __init__(self, model_name: str, base_path: str | Path, limits: Limits = Limits(),
                 intra_op_threads: int = 0, inter_op_threads: int = 0,
                 max_batch_size: int = 32, batch_timeout_s: float = 0.0, num_batch_threads: int = 1):
        self.model_name = model_name
        self.base_path = Path(base_path)
        self.limits = limits
        self.session_config = session_config(intra_op_threads, inter_op_threads)
        self.states: dict[int, VersionState] = {}
        self.current: LoadedVersion | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.batcher = Batcher(max_batch_size, batch_timeout_s, num_batch_threads)

    # -- versions ----------------------------------------------------------
    def poll(self) -> None:
        """Load the highest version if it is new (and not already failed)."""
        found = versions(self.base_path)
        if not found:
            return
        newest = found[-1]
        if newest in self.states or (self.current and newest <= self.current.version):
            return
        self.states[newest] = VersionState("LOADING")
        try:
            loaded = LoadedVersion(self.base_path / str(newest), self.session_config)
            self._warm_up(loaded)
        except Exception as error:  # A bad version must never take the server down.
            self.states[newest] = VersionState("END", f"{type(error).__name__}: {error}".split("\n")[0])
            log.error("version %d of %s failed to load; still serving %s: %s", newest, self.model_name,
                      self.current.version if self.current else "nothing", self.states[newest].error)
            return
        with self._lock:
            previous, self.current = self.current, loaded
            self.states[newest] = VersionState("AVAILABLE")
            if previous is not None:
                self.states[previous.version] = VersionState("END")
        log.info("serving %s version %d", self.model_name, newest)

    def watch(self, poll_seconds: float) -> threading.Thread:
        """Poll the base path every `poll_seconds` in a daemon thread."""
        def loop():
            while not self._stop.wait(poll_seconds):
                self.poll()

        thread = threading.Thread(target=loop, name="version-poller", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
        self.batcher.stop()

    def _warm_up(self, loaded: LoadedVersion) -> None:
        path = ExportVersion(loaded.path).warmup_requests
        if not path.exists():
            return
        for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
            request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            loaded.run(request.model_spec.signature_name or "serving_default", inputs)

    def resolve(self, model_name: str, version: int | None = None) -> LoadedVersion:
        """The loaded version a request asks for, or NOT_FOUND as TF Serving words it."""
        current = self.current
        if model_name != self.model_name or current is None:
            raise RequestError("NOT_FOUND", f"Servable not found for request: Latest({model_name})")
        if version is not None and version != current.version:
            raise RequestError("NOT_FOUND", f"Servable not found for request: Specific({model_name}, {version})")
        return current

    def status(self, model_name: str, version: int | None = None) -> dict[int, VersionState]:
        if model_name != self.model_name or not self.states:
            raise RequestError("NOT_FOUND", f"Could not find any versions of model {model_name}")
        if version is not None:
            if version not in self.states:
                raise RequestError("NOT_FOUND", f"Could not find version {version} of model {model_name}")
            return {version: self.states[version]}
        return dict(sorted(self.states.items()))

    # -- requests ----------------------------------------------------------
    def predict(self, loaded: LoadedVersion, signature_name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run a request on the version `resolve` gave: checked, limited, batched when it can be."""
        signature_name = signature_name or "serving_default"
        loaded.check_inputs(signature_name, inputs)
        self.check_limits(inputs)
        if self.batcher.enabled and loaded.batchable(signature_name):
            return self.batcher.run(loaded, signature_name, inputs)
        return loaded.run(signature_name, inputs)

    def check_limits(self, inputs: dict[str, np.ndarray]) -> None:
        for key, value in inputs.items():
            if value.ndim >= 1 and value.shape[0] == 0:
                raise RequestError("INVALID_ARGUMENT", f"input {key!r} is an empty batch; send at least one row")
            if value.ndim >= 1 and value.shape[0] > self.limits.max_rows:
                raise RequestError(
                    "INVALID_ARGUMENT",
                    f"input {key!r} has {value.shape[0]} rows; this server accepts at most {self.limits.max_rows} per request",
                )
            if value.dtype == object:
                for text in value.ravel():
                    self._check_text(key, text)

    def _check_text(self, key: str, text: bytes | str) -> None:
        """UTF-8 text within the length limit, without control characters (tabs and newlines aside)."""
        try:
            text = text.decode("utf-8") if isinstance(text, bytes) else text
        except UnicodeDecodeError as error:
            raise RequestError("INVALID_ARGUMENT", f"input {key!r} is not valid UTF-8 ({error.reason} at byte "
                                                   f"{error.start})") from error
        if len(text) > self.limits.max_text_chars:
            raise RequestError("INVALID_ARGUMENT", f"input {key!r} holds a text longer than "
                                                   f"{self.limits.max_text_chars} characters, this server's limit")
        control = CONTROL_CHARACTERS.search(text)
        if control:
            raise RequestError("INVALID_ARGUMENT", f"input {key!r} holds a control character "
                                                   f"(U+{ord(control.group()):04X})")
