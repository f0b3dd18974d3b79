"""benchmarks/harness.py: data prepared as a run does, seeded arms, alternating rounds, latency."""

import numpy as np

from benchmarks.harness import StepMeter, alternate, compiled_model, cpu_line, latencies_ms, prepared_data
from config import build_config
from data_pipeline.dataset import make_dataset


def test_arms_train_the_same_fresh_model_in_alternating_counted_rounds(tmp_path, chatbot_csv):
    small = tmp_path / "small.csv"
    small.write_text("\n".join(chatbot_csv.read_text(encoding="utf-8").splitlines()[:201]) + "\n", encoding="utf-8")
    config = build_config("tiny", overrides={"data": {"sources": [str(small)]}, "train": {"batch_size": 16}})
    data = prepared_data(config)
    assert len(data.train) + len(data.validation) == 200  # Read and split as a run does; no folder left behind.
    first, second = (compiled_model(config, len(data.vocabulary)) for _ in range(2))
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)  # Same seed, same start.
    common = dict(sequence_length=config.data.sequence_length, batch_size=16, shuffle=False)
    arms = {"bucketed": StepMeter(first, make_dataset(data.train, data.tokenizer, **common)),
            "padded": StepMeter(second, make_dataset(data.train, data.tokenizer, pad_to=24, **common))}
    order = []
    for name, meter in arms.items():
        step = meter.step
        meter.step = lambda step=step, name=name: order.append(name) or step()
    alternate(arms, rounds=2, steps=3, warmup_steps=1)
    assert order == ["bucketed", "padded"] + ["bucketed"] * 3 + ["padded"] * 3 + ["bucketed"] * 3 + ["padded"] * 3
    for meter in arms.values():
        assert len(meter.steps) == 6  # The warm-up is not counted.
        assert all(s.seconds >= s.wait >= 0 and 0 < s.real_tokens <= s.positions for s in meter.steps)
        assert meter.real_tokens_per_second() > 0 and 0 < meter.input_wait() < 1
    assert {s.shape[2] for s in arms["padded"].steps} == {24}
    assert arms["padded"].padding() > arms["bucketed"].padding()


def test_latencies_time_each_item_after_uncounted_warm_up_calls():
    calls = []
    times = latencies_ms(calls.append, ["a", "b", "c", "d"], warmup=2)
    assert calls == ["a", "b", "a", "b", "c", "d"] and times.shape == (4,) and (times >= 0).all()
    assert cpu_line().startswith("CPU: ")
