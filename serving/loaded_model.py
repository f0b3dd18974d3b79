"""One SavedModel version loaded the way TF Serving loads it, and run by signature.

TF Serving's `main.cc` calls `tensorflow::DisableXlaCompilation()` and loads a version
with the TF1 loader into its own `Session`; requests are `Session.run` calls fed
through the signature's tensor names. `LoadedVersion` does the same, so what
passes here is what the real server can run. `disable_xla_compilation()` reaches
the C++ function through ctypes (it is exported by `libtensorflow_cc.so.2`).

Inputs are checked against the signature before running (names, dtypes, ranks),
raising `RequestError` with the status TF Serving would give.
"""

from __future__ import annotations

import ctypes
import re
import threading
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops the graph uses)

_XLA_DISABLED = False
_LOCK = threading.Lock()


class RequestError(Exception):
    """A request TF Serving would refuse: `code` is a gRPC status name (INVALID_ARGUMENT, NOT_FOUND, ...)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def disable_xla_compilation() -> None:
    """Turn XLA compilation off for this process, as TF Serving does (idempotent)."""
    global _XLA_DISABLED
    with _LOCK:
        if _XLA_DISABLED:
            return
        library = Path(tf.__file__).parent / "libtensorflow_cc.so.2"
        ctypes.CDLL(str(library))._ZN10tensorflow21DisableXlaCompilationEv()
        _XLA_DISABLED = True


def session_config(intra_op_threads: int = 0, inter_op_threads: int = 0) -> tf.compat.v1.ConfigProto:
    """Thread pools as TF Serving's `--tensorflow_intra_op_parallelism` / `..._inter_op_...` (0: TF's choice)."""
    return tf.compat.v1.ConfigProto(
        intra_op_parallelism_threads=intra_op_threads, inter_op_parallelism_threads=inter_op_threads
    )


class LoadedVersion:
    """A version directory loaded into its own graph and session."""

    def __init__(self, path: str | Path, config: tf.compat.v1.ConfigProto | None = None):
        self.path = Path(path)
        self.version = int(self.path.name) if self.path.name.isdigit() else 0
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph, config=config or session_config())
        with self.graph.as_default():
            meta_graph = tf.compat.v1.saved_model.loader.load(self.session, ["serve"], str(self.path))
        self.signatures = dict(meta_graph.signature_def)

    def signature(self, name: str):
        if name not in self.signatures:
            raise RequestError(
                "INVALID_ARGUMENT",
                f'Serving signature name: "{name}" not found in signature def; known: {sorted(self.signatures)}',
            )
        return self.signatures[name]

    def input_specs(self, name: str) -> dict[str, tuple[tf.DType, list[int] | None]]:
        """{input name: (dtype, shape with -1 for unknown dims, or None for unknown rank)}."""
        specs = {}
        for key, info in self.signature(name).inputs.items():
            shape = None if info.tensor_shape.unknown_rank else [d.size for d in info.tensor_shape.dim]
            specs[key] = (tf.dtypes.as_dtype(info.dtype), shape)
        return specs

    def batchable(self, name: str) -> bool:
        """Every input and output has a leading batch dimension (requests can be concatenated)."""
        tensors = list(self.signature(name).inputs.values()) + list(self.signature(name).outputs.values())
        return all(
            not t.tensor_shape.unknown_rank and t.tensor_shape.dim and t.tensor_shape.dim[0].size == -1 for t in tensors
        )

    def check_inputs(self, name: str, inputs: dict[str, np.ndarray]) -> None:
        """Raise `RequestError` unless `inputs` has exactly the signature's names, dtypes and ranks."""
        specs = self.input_specs(name)
        missing, extra = sorted(set(specs) - set(inputs)), sorted(set(inputs) - set(specs))
        if missing or extra:
            raise RequestError(
                "INVALID_ARGUMENT",
                f"input names do not match signature {name!r}: missing {missing}, unexpected {extra}; "
                f"expected {sorted(specs)}",
            )
        for key, (dtype, shape) in specs.items():
            value = inputs[key]
            if not _dtype_matches(value, dtype):
                raise RequestError(
                    "INVALID_ARGUMENT", f"input {key!r} must be {dtype.name}, got {value.dtype} ({value.ravel()[:1]!r})"
                )
            if shape is not None and value.ndim != len(shape):
                raise RequestError(
                    "INVALID_ARGUMENT", f"input {key!r} must have rank {len(shape)} (shape {shape}), got shape {list(value.shape)}"
                )

    def run(self, name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run signature `name` on `inputs` (checked first) -> {output name: value}."""
        self.check_inputs(name, inputs)
        signature = self.signature(name)
        feeds = {signature.inputs[k].name: v for k, v in inputs.items()}
        fetches = {k: info.name for k, info in signature.outputs.items()}
        try:
            return self.session.run(fetches, feed_dict=feeds)
        except tf.errors.InvalidArgumentError as error:
            raise RequestError("INVALID_ARGUMENT", _graph_error_message(error.message)) from error

    def close(self) -> None:
        self.session.close()


def _graph_error_message(message: str) -> str:
    """The useful part of a graph error: an assertion's own message, else the first non-empty line."""
    found = re.search(r"assertion failed: \[(.*?)\]", message)
    if found:
        return found.group(1).replace("\\'", "'")
    return next((line.strip() for line in message.splitlines() if line.strip() and line.strip() != "Graph execution error:"), message)


def _dtype_matches(value: np.ndarray, dtype: tf.DType) -> bool:
    if dtype == tf.string:
        return value.dtype.kind in ("O", "S", "U") and all(isinstance(v, (bytes, str)) for v in value.ravel())
    return value.dtype == dtype.as_numpy_dtype
