"""Server-side batching: concurrent requests to one signature run as one `Session.run`.

Like TF Serving's `--enable_batching`, requests whose inputs all have a batch
dimension are queued; a batch thread takes the oldest request, adds every queued
request for the same version and signature (same shapes beyond the batch
dimension) up to `max_batch_size` rows, waiting at most `batch_timeout_s` for more,
runs them together and hands each request its own rows. A lone request therefore
waits for nothing (with the default timeout of 0), while under load requests
that arrive during a run share the next one. If a batch fails, its requests are
run one by one so that one request's error never reaches another's.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np


@dataclass
class _Request:
    version: object  # LoadedVersion
    signature: str
    inputs: dict[str, np.ndarray]
    future: Future = field(default_factory=Future)

    @property
    def rows(self) -> int:
        return next(iter(self.inputs.values())).shape[0]

    def key(self):
        return (id(self.version), self.signature, tuple((k, v.shape[1:]) for k, v in sorted(self.inputs.items())))


class Batcher:
    def __init__(self, max_batch_size: int = 32, batch_timeout_s: float = 0.0, num_threads: int = 1):
        self.max_batch_size = max_batch_size
        self.batch_timeout_s = batch_timeout_s
        self.enabled = max_batch_size > 1
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._held: list[_Request] = []  # Taken from the queue but not batchable with the last batch.
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._work, name=f"batch-{i}", daemon=True) for i in range(num_threads)]
        for thread in self._threads:
            thread.start()

    def run(self, version, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run `inputs` batched with concurrent requests; blocks until this request's rows are back."""
        request = _Request(version, signature, inputs)
        self._queue.put(request)
        return request.future.result()

    def stop(self) -> None:
        for _ in self._threads:
            self._queue.put(None)

    def _work(self) -> None:
        while True:
            first = self._next(block=True)
            if first is None:
                return
            batch = self._gather(first)
            self._execute(batch)

    def _next(self, block: bool, timeout: float | None = None):
        with self._lock:
            if self._held:
                return self._held.pop(0)
        try:
            return self._queue.get(block=block, timeout=timeout)
        except queue.Empty:
            return None

    def _gather(self, first: _Request) -> list[_Request]:
        batch, rows = [first], first.rows
        deadline = time.monotonic() + self.batch_timeout_s
        while rows < self.max_batch_size:
            remaining = deadline - time.monotonic()
            request = self._next(block=remaining > 0, timeout=max(remaining, 0) or None)
            if request is None:
                if remaining <= 0:
                    break
                continue
            if request.key() != first.key() or rows + request.rows > self.max_batch_size:
                with self._lock:
                    self._held.append(request)
                break
            batch.append(request)
            rows += request.rows
        return batch

    def _execute(self, batch: list[_Request]) -> None:
        first = batch[0]
        if len(batch) == 1:
            self._settle(first, lambda: first.version.run(first.signature, first.inputs))
            return
        try:
            inputs = {k: np.concatenate([r.inputs[k] for r in batch]) for k in first.inputs}
            outputs = first.version.run(first.signature, inputs)
        except Exception:  # Isolate the failing request: run each alone.
            for request in batch:
                self._settle(request, lambda r=request: r.version.run(r.signature, r.inputs))
            return
        start = 0
        for request in batch:
            stop = start + request.rows
            request.future.set_result({k: v[start:stop] for k, v in outputs.items()})
            start = stop

    @staticmethod
    def _settle(request: _Request, compute) -> None:
        try:
            request.future.set_result(compute())
        except Exception as error:
            request.future.set_exception(error)
