"""Polyak averaging: an exponential moving average of the trainable weights, with warm-up.

After the t-th applied optimiser step (t = 1, 2, ...):

    decay_t = min(decay, t / (t + 9))                   ((1 + n) / (10 + n) with n = t - 1 updates
    avg_t   = decay_t · avg_{t-1} + (1 - decay_t) · w_t   before this one, as TF's
                                                          ExponentialMovingAverage(num_updates))

with avg_0 = the weights after the data-dependent init and decay = beta2 = 1 - 1/(train_its ·
polyak_epochs), the original's constant. Without the warm-up (the original's TF1 code used a
fixed decay) the average starts at the initial weights and forgets them only as decay^t, so a
short run's average is mostly the initial model: after 600 steps at decay 0.995 the initial
weights still carry 5% of the weight, and their log-likelihood dominates. With the warm-up the
average covers roughly the last t/10 .. 1/(1 - decay) steps at every run length, so it is the
average of recent weights, never of weights from a much worse model. (docs/training.md.)

The trainer evaluates both the raw and the averaged weights and uses whichever scored better;
`swapped()` puts the averages into the model temporarily.
"""

import contextlib

import tensorflow as tf

from glow_tf.variables import tf_variables

WARMUP_OFFSET = 9.0  # decay_t = min(decay, t / (t + 9)): TF's (1 + n) / (10 + n), n = t - 1


def warmed_up_decay(decay, t):
    """decay_t for the t-th update (t >= 1), as a float or a float32 tensor."""
    if isinstance(t, (int, float)):
        return min(float(decay), t / (t + WARMUP_OFFSET))
    t = tf.cast(t, tf.float32)
    return tf.minimum(tf.constant(float(decay), tf.float32), t / (t + WARMUP_OFFSET))


class EMA(tf.Module):
    """Polyak averages of `variables` (Keras or tf.Variables).

    Args:
        variables: the trainable variables to average.
        decay: the long-run decay (the original's beta2).
        warmup: decay_t = min(decay, t / (t + 9)) (module docstring); False: a constant decay.
    """

    def __init__(self, variables, decay, warmup=True, name='ema'):
        super().__init__(name=name)
        self._targets = tf_variables(variables)
        self.decay = float(decay)
        self.warmup = bool(warmup)
        with tf.init_scope():
            self.shadow = [
                tf.Variable(v.read_value(), trainable=False, name=f'avg{i}')
                for i, v in enumerate(self._targets)
            ]
            # updates so far; derived from the trainer's counters on resume (set_num_updates)
            self.num_updates = tf.Variable(0, dtype=tf.int64, trainable=False, name='num_updates')
            self._backup = None

    def reset(self):
        """avg <- current weights (after init / broadcast); the warm-up starts again."""
        for s, v in zip(self.shadow, self._targets):
            s.assign(v)
        self.num_updates.assign(0)

    def set_num_updates(self, n):
        """After a restore: the number of updates the restored averages have seen."""
        self.num_updates.assign(int(n))

    def current_decay(self):
        """The decay the next update will use (a float32 tensor)."""
        if not self.warmup:
            return tf.constant(self.decay, tf.float32)
        return warmed_up_decay(self.decay, self.num_updates + 1)

    def update(self):
        """One EMA step; callable inside tf.function."""
        d = self.current_decay()
        for s, v in zip(self.shadow, self._targets):
            s.assign(d * s + (1.0 - d) * tf.cast(v, s.dtype))
        self.num_updates.assign_add(1)

    def copy_to_model(self):
        for s, v in zip(self.shadow, self._targets):
            v.assign(s)

    @contextlib.contextmanager
    def swapped(self):
        """Within the block the model holds the averaged weights; restored afterwards."""
        if self._backup is None:
            with tf.init_scope():
                self._backup = [tf.Variable(v.read_value(), trainable=False) for v in self._targets]
        for b, v in zip(self._backup, self._targets):
            b.assign(v)
        self.copy_to_model()
        try:
            yield
        finally:
            for b, v in zip(self._backup, self._targets):
                v.assign(b)
