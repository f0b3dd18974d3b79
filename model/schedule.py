"""The Noam learning-rate schedule ("Attention Is All You Need", section 5.3).

    lr(step) = scale * hidden_dim**-0.5 * min(step**-0.5, step * warmup_steps**-1.5)

It rises linearly for `warmup_steps`, peaks at
`scale * (hidden_dim * warmup_steps) ** -0.5`, then decays as 1/sqrt(step).
The paper's 4000 warm-up steps suit millions of sentence pairs; ChatbotData's
~10k pairs at batch 64 give ~155 steps an epoch, so a few hundred is right here.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="chatbot")
class NoamSchedule(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, hidden_dim: int, warmup_steps: int, scale: float = 1.0):
        self.hidden_dim = hidden_dim
        self.warmup_steps = warmup_steps
        self.scale = scale

    def __call__(self, step):
        step = ops.cast(step, "float32") + 1.0  # Keras counts from 0.
        warmup = float(self.warmup_steps)
        rate = ops.minimum(ops.rsqrt(step), step * warmup**-1.5)
        return self.scale * float(self.hidden_dim) ** -0.5 * rate

    def get_config(self):
        return {"hidden_dim": self.hidden_dim, "warmup_steps": self.warmup_steps, "scale": self.scale}
