"""Fault injection for the reliability tests: make chosen steps fail the way real runs do.

    faults = FaultInjection.from_config(cfg)    # None unless the hidden flags
                                                # --inject_nan_steps / --inject_inf_lr_steps
    loss = faults.loss(loss, step)              # traced gradient step: NaN at the chosen steps
    lr = faults.learning_rate(lr, step_number)  # in the loop: inf at the chosen steps

Steps are numbered from 1 (`step_number` = the counter after the step; the traced step receives
the 0-based index `step` of its batch). A NaN loss makes the loss and every gradient non-finite,
so the step is skipped (`--max_nonfinite`); an infinite learning rate makes the update's weights
non-finite, so the guarded update rolls it back. Without injected faults the trainer builds its
steps with no hook, so the production step's graph holds no injection op.
"""

import tensorflow as tf


class FaultInjection:
    """Test-only faults at given step numbers.

    Args:
        nan_steps: step numbers (1-based) whose training loss is multiplied by NaN.
        inf_lr_steps: step numbers (1-based) applied with an infinite learning rate.
    """

    def __init__(self, nan_steps=(), inf_lr_steps=()):
        self.nan_steps = frozenset(int(s) for s in nan_steps)
        self.inf_lr_steps = frozenset(int(s) for s in inf_lr_steps)

    @classmethod
    def from_config(cls, cfg):
        """The config's `inject_nan_steps` / `inject_inf_lr_steps`; None when both are empty."""
        if not (cfg.inject_nan_steps or cfg.inject_inf_lr_steps):
            return None
        return cls(cfg.inject_nan_steps, cfg.inject_inf_lr_steps)

    def loss(self, loss, step):
        """Traced: `loss`, times NaN when step + 1 (an int64 tensor) is one of `nan_steps`."""
        if not self.nan_steps:
            return loss
        chosen = tf.constant(sorted(self.nan_steps), tf.int64)
        hit = tf.reduce_any(tf.equal(tf.cast(step, tf.int64) + 1, chosen))
        return loss * tf.where(hit, tf.constant(float('nan')), 1.0)

    def learning_rate(self, lr, step_number):
        """Eager: `lr`, or inf when `step_number` is one of `inf_lr_steps`."""
        return float('inf') if step_number in self.inf_lr_steps else lr

    def __repr__(self):
        return (
            f'FaultInjection(nan_steps={sorted(self.nan_steps)}, '
            f'inf_lr_steps={sorted(self.inf_lr_steps)})'
        )
