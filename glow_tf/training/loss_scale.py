"""Dynamic loss scaling for float16 training (Micikevicius et al. 2018, "Mixed precision training").

    grads = grad(S · loss) / S

float16 has 5 exponent bits: small gradients underflow to zero unless the loss is scaled up
before the backward pass. S starts large (2^15); a step whose scaled gradients overflow (are not
finite while the loss is) is skipped and halves S; `period` finite steps in a row double it. This
is the schedule of Keras's `LossScaleOptimizer`, kept beside the trainer's own guarded update
(`training/steps.py`), which already skips non-finite steps on all workers alike.

Only `--precision fp16` uses it; bfloat16 has float32's exponent range and needs none.
"""

import tensorflow as tf


class DynamicLossScale:
    """The loss scale S and its schedule, as two non-trainable variables.

    Args:
        initial: the first S.
        period: finite steps in a row after which S doubles.
        maximum: S never exceeds this.
    """

    def __init__(self, initial=2.0**15, period=2000, maximum=2.0**24):
        self.period, self.maximum = int(period), float(maximum)
        with tf.init_scope():
            self.scale = tf.Variable(float(initial), trainable=False, name='loss_scale')
            self.finite_steps = tf.Variable(0, trainable=False, dtype=tf.int64, name='finite_steps')

    def scaled(self, loss):
        """S · loss, the value to differentiate."""
        return loss * self.scale

    def unscaled(self, grads):
        """The gradients of `scaled(loss)` divided by S."""
        inverse = 1.0 / self.scale
        return [g * inverse for g in grads]

    def update(self, finite):
        """After a step: halve S if its gradients were not finite, else count it, doubling S
        after `period` in a row. Returns the ops (for control dependencies)."""
        grown = self.finite_steps + 1 >= self.period
        new_scale = tf.where(
            finite,
            tf.where(grown, tf.minimum(self.scale * 2.0, self.maximum), self.scale),
            tf.maximum(self.scale * 0.5, 1.0),
        )
        new_count = tf.where(finite & ~grown, self.finite_steps + 1, tf.zeros([], tf.int64))
        return [self.scale.assign(new_scale), self.finite_steps.assign(new_count)]
