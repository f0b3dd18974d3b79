"""Teacher-forced scores of held-out examples: loss, perplexity and token accuracy over non-padding tokens.

The same masked loss and metrics as training, without label smoothing, so the loss
is the plain negative log-likelihood per reply token.
"""

from __future__ import annotations

import keras

from config import DataConfig
from data_pipeline.dataset import make_dataset
from data_pipeline.examples import Example
from model.metrics import MaskedAccuracy, MaskedSparseCrossentropy, perplexity


def likelihood_scores(model, tokenizer, examples: list[Example], data: DataConfig, batch_size: int = 64) -> dict:
    """{"loss", "perplexity", "token_accuracy"} of `examples` under `model`, packed as `data` says."""
    dataset = make_dataset(examples, tokenizer, sequence_length=data.sequence_length,
                           max_persona_length=data.max_persona_length, batch_size=batch_size, shuffle=False)
    model.compile(
        optimizer=keras.optimizers.Adam(),  # Unused: evaluation only.
        loss=MaskedSparseCrossentropy(label_smoothing=0.0),
        metrics=[MaskedAccuracy(), perplexity()],
    )
    results = model.evaluate(dataset, return_dict=True, verbose=0)
    return {k: round(float(results[k]), 4) for k in ("loss", "perplexity", "token_accuracy")}
