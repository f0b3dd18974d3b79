"""data_pipeline/dataset.py: the data contract, truncation, bucketing and padding statistics."""

import numpy as np
import tensorflow as tf

from config import END_ID, PAD_ID, START_ID
from data_pipeline.dataset import NO_BUCKETS, make_dataset, padding_stats
from data_pipeline.examples import Example, to_examples


def batches(examples, tokenizer, **kwargs):
    args = dict(sequence_length=40, batch_size=8, shuffle=False)
    args.update(kwargs)
    return list(make_dataset(examples, tokenizer, **args))


def test_contract_shift_by_one_and_special_tokens(tokenizer):
    examples = [Example("안녕하세요", "반가워요 . 좋은 하루"), Example("뭐 해 ?", "그냥 있어")]
    for inputs, targets in batches(examples, tokenizer):
        encoder, decoder, targets = (inputs["encoder_inputs"].numpy(), inputs["decoder_inputs"].numpy(), targets.numpy())
        assert decoder.shape == targets.shape and encoder.shape[0] == decoder.shape[0]
        assert encoder.dtype == decoder.dtype == targets.dtype == np.int32
        for dec, tgt in zip(decoder, targets):
            n = int(np.count_nonzero(dec != PAD_ID))
            assert dec[0] == START_ID
            np.testing.assert_array_equal(dec[1:n], tgt[: n - 1])  # Target = input shifted by one.
            assert tgt[n - 1] == END_ID and np.all(tgt[n:] == PAD_ID) and np.all(dec[n:] == PAD_ID)


def test_truncation_rule(tokenizer):
    long_context = " ".join(f"질문{i}" for i in range(60))
    long_response = " ".join(["대답"] * 60)
    (inputs, targets), = batches([Example(long_context, long_response)], tokenizer, sequence_length=10)
    encoder, decoder, targets = inputs["encoder_inputs"].numpy()[0], inputs["decoder_inputs"].numpy()[0], targets.numpy()[0]
    full_context = [int(i) for i in tokenizer(tf.constant([long_context]))[0]]
    assert list(encoder) == full_context[-10:]  # Context keeps its last tokens.
    assert len(decoder) == 10 and decoder[0] == START_ID
    assert END_ID not in targets  # A cut response does not teach the model to stop there.
    assert np.all(targets != PAD_ID)


def test_bucketing_computes_little_padding(tokenizer, chatbot_dialogues):
    examples = to_examples(chatbot_dialogues[:2000])
    bucketed = padding_stats(make_dataset(examples, tokenizer, sequence_length=40, batch_size=64, shuffle=True))
    unbucketed = padding_stats(
        make_dataset(examples, tokenizer, sequence_length=40, batch_size=64, shuffle=True, buckets=NO_BUCKETS)
    )
    assert bucketed.real_tokens == unbucketed.real_tokens  # Same examples, nothing lost.
    assert bucketed.padding_fraction < 0.35
    assert bucketed.padding_fraction < unbucketed.padding_fraction - 0.1
    fixed_40 = 1 - bucketed.real_tokens / (2 * 40 * len(examples))
    assert fixed_40 > 0.7  # What a pad-everything-to-40 pipeline would compute.


def test_pipelines_run_without_the_autotune_thread(tokenizer):
    # With it, deleting each epoch's iterator waited out the thread's sleep: 40-s stalls (dataset.py).
    examples = [Example(f"질문 {i}", f"대답 {i}") for i in range(10)]
    for shuffle in (True, False):
        dataset = make_dataset(examples, tokenizer, sequence_length=40, batch_size=4, shuffle=shuffle)
        assert dataset.options().autotune.enabled is False
        assert sum(int(b[1].shape[0]) for b in dataset) == 10


def test_every_example_appears_once(tokenizer):
    examples = [Example(f"질문 {i}", f"대답 {i}") for i in range(100)]
    stats = padding_stats(make_dataset(examples, tokenizer, sequence_length=40, batch_size=16, shuffle=True))
    count = sum(int(b[0]["encoder_inputs"].shape[0]) for b in make_dataset(examples, tokenizer, sequence_length=40, batch_size=16, shuffle=True))
    assert count == 100 and stats.batches >= 7


def test_word_dropout_hides_inputs_not_targets(tokenizer, chatbot_dialogues):
    examples = to_examples(chatbot_dialogues[:300])
    plain = list(make_dataset(examples, tokenizer, sequence_length=40, batch_size=300, shuffle=False, buckets=NO_BUCKETS))
    noisy = list(make_dataset(examples, tokenizer, sequence_length=40, batch_size=300, shuffle=False, buckets=NO_BUCKETS,
                              word_dropout_rate=0.3))
    (plain_inputs, plain_targets), = plain
    (noisy_inputs, noisy_targets), = noisy
    np.testing.assert_array_equal(plain_targets, noisy_targets)
    for name in ("encoder_inputs", "decoder_inputs"):
        before, after = plain_inputs[name].numpy(), noisy_inputs[name].numpy()
        real = before != PAD_ID
        changed = (before != after) & real
        assert np.all(after[changed] == 1)  # [UNK]
        assert 0.2 < changed.sum() / real.sum() < 0.4
        assert np.all(after[~real] == PAD_ID)
    assert np.all(noisy_inputs["decoder_inputs"].numpy()[:, 0] == START_ID)


def test_weights_repeat_training_examples_with_fresh_draws_each_epoch(tokenizer):
    examples = [Example("하나", "둘", weight=3.0), Example("셋", "넷", weight=0.5)]
    dataset = make_dataset(examples, tokenizer, sequence_length=16, batch_size=1, shuffle=True, seed=1)
    per_epoch = [sum(1 for _ in dataset) for _ in range(40)]
    assert set(per_epoch) == {3, 4}  # Three copies always; the half-weighted example about every other epoch.
    assert 10 <= per_epoch.count(4) <= 30
    # Validation pipelines ignore weights: each example once.
    assert sum(1 for _ in make_dataset(examples, tokenizer, sequence_length=16, batch_size=1, shuffle=False)) == 2
