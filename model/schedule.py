"""The Noam learning-rate schedule ("Attention Is All You Need", section 5.3), with an optional cooldown.

    noam(step) = scale * hidden_dim**-0.5 * min(step**-0.5, step * warmup_steps**-1.5)
    lr(step)   = noam(step) * min(1, (total_steps - step) / cooldown_steps)

It rises linearly for `warmup_steps`, peaks at
`scale * (hidden_dim * warmup_steps) ** -0.5`, then decays as 1/sqrt(step), or, with
`hold_peak`, stays at the peak (the "stable" phase of warmup-stable-decay).
The paper's 4000 warm-up steps suit millions of sentence pairs; ChatbotData's
~10k pairs at batch 64 give ~155 steps an epoch, so a few hundred is right here.

With `cooldown_steps` > 0 the rate also falls linearly to zero over the last
`cooldown_steps` of `total_steps` (the "warmup-stable-decay" cooldown of Hägele
et al. 2024, on top of Noam's decay): the run lands in a minimum instead of
stopping at a still-high rate. `cooldown_steps=0` is the plain Noam schedule.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="chatbot")
class NoamSchedule(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, hidden_dim: int, warmup_steps: int, scale: float = 1.0, total_steps: int = 0,
                 cooldown_steps: int = 0, hold_peak: bool = False):
        if cooldown_steps < 0 or cooldown_steps > total_steps:
            raise ValueError(f"cooldown_steps must be in [0, total_steps={total_steps}], got {cooldown_steps}")
        self.hidden_dim = hidden_dim
        self.warmup_steps = warmup_steps
        self.scale = scale
        self.total_steps = total_steps
        self.cooldown_steps = cooldown_steps
        self.hold_peak = hold_peak

    def __call__(self, step):
        step = ops.cast(step, "float32")  # Keras counts from 0.
        remaining = float(self.total_steps) - step
        step = step + 1.0
        warmup = float(self.warmup_steps)
        after_warmup = warmup**-0.5 if self.hold_peak else ops.rsqrt(step)
        rate = self.scale * float(self.hidden_dim) ** -0.5 * ops.minimum(after_warmup, step * warmup**-1.5)
        if self.cooldown_steps:
            rate = rate * ops.clip(remaining / float(self.cooldown_steps), 0.0, 1.0)
        return rate

    def get_config(self):
        return {"hidden_dim": self.hidden_dim, "warmup_steps": self.warmup_steps, "scale": self.scale,
                "total_steps": self.total_steps, "cooldown_steps": self.cooldown_steps, "hold_peak": self.hold_peak}
