"""benchmarks/time_to_quality.py: epochs and seconds until a run first reaches a perplexity."""

from benchmarks.time_to_quality import time_to_target


def rows(*perplexities, seconds=10.0):
    return [{"epoch": i, "epoch_seconds": seconds, "val_perplexity": p} for i, p in enumerate(perplexities)]


def test_counts_epochs_and_seconds_until_the_first_epoch_at_or_below_the_target():
    assert time_to_target(rows(40.0, 25.0, 21.16, 19.0), 21.16) == (3, 30.0)


def test_a_run_that_never_reaches_the_target_gives_none():
    assert time_to_target(rows(40.0, 25.0, 21.2), 21.16) is None


def test_a_later_rise_does_not_undo_the_first_arrival():
    assert time_to_target(rows(30.0, 20.0, 23.0), 21.0) == (2, 20.0)
