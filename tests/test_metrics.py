"""model/metrics.py and model/schedule.py: padding-blind loss/accuracy, Noam schedule."""

import numpy as np
import keras
import pytest

from model.metrics import MaskedAccuracy, MaskedSparseCrossentropy, perplexity
from model.schedule import NoamSchedule

RNG = np.random.default_rng(0)


def padded_pair():
    targets = np.array([[5, 6, 7, 0, 0, 0]], dtype=np.int32)
    logits = RNG.normal(size=(1, 6, 10)).astype("float32")
    logits[0, 0, 5] = logits[0, 1, 9] = logits[0, 2, 7] = 10.0  # 2 of 3 real tokens right.
    logits[0, 3:, 0] = 10.0  # Padding positions "predict" [PAD] perfectly.
    return targets, logits


def test_accuracy_ignores_padding():
    targets, logits = padded_pair()
    metric = MaskedAccuracy()
    metric.update_state(targets, logits)
    assert float(metric.result()) == pytest.approx(2 / 3)  # Counting padding would give 5/6.


def test_loss_ignores_padding():
    targets, logits = padded_pair()
    loss = MaskedSparseCrossentropy()
    other = logits.copy()
    other[0, 3:] = RNG.normal(size=(3, 10)) * 50  # Change only padding positions.
    assert float(loss(targets, logits)) == pytest.approx(float(loss(targets, other)), rel=1e-6)
    real_only = MaskedSparseCrossentropy()(targets[:, :3], logits[:, :3])
    assert float(loss(targets, logits)) == pytest.approx(float(real_only), rel=1e-6)


def test_label_smoothing_formula():
    targets, logits = padded_pair()
    log_probs = logits[0, :3] - np.log(np.exp(logits[0, :3]).sum(-1, keepdims=True))
    nll = -log_probs[np.arange(3), targets[0, :3]]
    expected = np.mean(0.9 * nll + 0.1 * -log_probs.mean(-1))
    assert float(MaskedSparseCrossentropy(label_smoothing=0.1)(targets, logits)) == pytest.approx(expected, rel=1e-5)


def test_perplexity_ignores_padding():
    targets, logits = padded_pair()
    metric = perplexity()
    metric.update_state(targets, logits)
    expected = float(np.exp(MaskedSparseCrossentropy()(targets, logits)))
    assert float(metric.result()) == pytest.approx(expected, rel=1e-5)


def test_noam_schedule_shape_and_serialisation():
    schedule = NoamSchedule(hidden_dim=512, warmup_steps=600)
    rates = [float(schedule(step)) for step in (0, 299, 599, 2399)]
    assert rates[0] < rates[1] < rates[2] and rates[3] == pytest.approx(rates[2] / 2, rel=1e-3)
    assert rates[2] == pytest.approx((512 * 600) ** -0.5, rel=1e-6)
    clone = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert float(clone(599)) == pytest.approx(rates[2])
    for obj in (MaskedSparseCrossentropy(0.1), MaskedAccuracy()):
        assert type(obj).from_config(obj.get_config()).get_config() == obj.get_config()


def test_held_peak_stays_at_the_noam_peak_after_warmup_and_still_cools_down():
    plain = NoamSchedule(hidden_dim=512, warmup_steps=600)
    held = NoamSchedule(hidden_dim=512, warmup_steps=600, total_steps=3000, cooldown_steps=1000, hold_peak=True)
    peak = (512 * 600) ** -0.5
    for step in (0, 299, 599):  # Warm-up: unchanged.
        assert float(held(step)) == pytest.approx(float(plain(step)), rel=1e-6)
    for step in (600, 1200, 1999):  # Noam falls as 1/sqrt(step); the held rate stays at the peak.
        assert float(held(step)) == pytest.approx(peak, rel=1e-6)
    assert float(plain(1200)) < 0.75 * peak  # Where the two differ.
    assert float(held(2500)) == pytest.approx(peak / 2, rel=1e-5) and float(held(3000)) == 0.0
    clone = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(held))
    assert float(clone(1500)) == pytest.approx(peak, rel=1e-6)


def test_noam_cooldown_falls_linearly_to_zero_at_the_last_step():
    plain = NoamSchedule(hidden_dim=512, warmup_steps=600)
    cooled = NoamSchedule(hidden_dim=512, warmup_steps=600, total_steps=3000, cooldown_steps=1000)
    for step in (0, 599, 1999):  # Before the cooldown: the plain schedule.
        assert float(cooled(step)) == pytest.approx(float(plain(step)), rel=1e-6)
    for step in (2000, 2500, 2999):  # The plain rate times remaining / cooldown: 1, 1/2, 1/1000.
        assert float(cooled(step)) == pytest.approx(float(plain(step)) * (3000 - step) / 1000, rel=1e-5)
    assert float(cooled(3000)) == 0.0 and float(cooled(4000)) == 0.0  # Past the plan: no updates.
    clone = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(cooled))
    assert float(clone(2500)) == pytest.approx(float(cooled(2500)))
    with pytest.raises(ValueError, match="cooldown_steps"):
        NoamSchedule(hidden_dim=512, warmup_steps=600, total_steps=100, cooldown_steps=200)
