"""serving/batching.py: concurrent requests share runs, each gets its own rows, errors stay isolated."""

import threading
import time

import numpy as np
import pytest

from serving.batching import Batcher


class FakeVersion:
    """Doubles its input; records each run's batch size; fails on a row equal to -1."""

    def __init__(self, delay=0.05):
        self.delay = delay
        self.batch_sizes = []

    def run(self, signature, inputs):
        x = inputs["x"]
        self.batch_sizes.append(len(x))
        time.sleep(self.delay)
        if (x == -1).any():
            raise ValueError("bad row")
        return {"y": x * 2}


def fire(batcher, version, values):
    results = [None] * len(values)

    def call(i):
        try:
            results[i] = batcher.run(version, "serving_default", {"x": np.array([values[i]])})["y"].tolist()
        except ValueError as error:
            results[i] = str(error)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(values))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_requests_are_batched_and_answered_with_their_own_rows():
    version, batcher = FakeVersion(), Batcher(max_batch_size=8)
    results = fire(batcher, version, list(range(20)))
    assert results == [[2 * i] for i in range(20)]
    assert max(version.batch_sizes) > 1 and max(version.batch_sizes) <= 8
    assert sum(version.batch_sizes) == 20  # Every row ran exactly once.
    batcher.stop()


def test_a_failing_request_does_not_fail_its_batch_mates():
    version, batcher = FakeVersion(), Batcher(max_batch_size=8)
    results = fire(batcher, version, [1, 2, -1, 3, 4, 5])
    assert results[2] == "bad row"
    assert [r for i, r in enumerate(results) if i != 2] == [[2], [4], [6], [8], [10]]
    batcher.stop()


def test_requests_for_different_versions_never_share_a_run():
    first, second, batcher = FakeVersion(), FakeVersion(), Batcher(max_batch_size=8)
    out = {}

    def call(version, value):
        out[(id(version), value)] = batcher.run(version, "s", {"x": np.array([value])})["y"].tolist()

    threads = [threading.Thread(target=call, args=(v, i)) for i in range(6) for v in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(first.batch_sizes) == 6 and sum(second.batch_sizes) == 6
    assert all(value == [2 * key[1]] for key, value in out.items())
    batcher.stop()


@pytest.mark.parametrize("timeout", [0.0, 0.02])
def test_a_lone_request_is_answered(timeout):
    version, batcher = FakeVersion(delay=0), Batcher(max_batch_size=8, batch_timeout_s=timeout)
    assert batcher.run(version, "s", {"x": np.array([3, 4])})["y"].tolist() == [6, 8]
    batcher.stop()
