"""Polyak averaging: an exponential moving average of the trainable weights.

As in the original (tf.train.ExponentialMovingAverage over the trainable variables, decay =
beta2 = 1 - 1/(train_its * polyak_epochs)), the average starts from the weights after the
data-dependent init and is updated after every *applied* optimiser step:
    avg <- decay * avg + (1 - decay) * w
The averaged weights are what evaluation, sampling and the saved model use: `swapped()` puts
them into the model temporarily.
"""
import contextlib

import tensorflow as tf

from glow_tf.distributed import tf_variables


class EMA(tf.Module):
    def __init__(self, variables, decay, name='ema'):
        super().__init__(name=name)
        self._targets = tf_variables(variables)
        self.decay = float(decay)
        with tf.init_scope():
            self.shadow = [tf.Variable(v.read_value(), trainable=False, name=f'avg{i}')
                           for i, v in enumerate(self._targets)]
            self._backup = None

    def reset(self):
        """avg <- current weights (after init / broadcast)."""
        for s, v in zip(self.shadow, self._targets):
            s.assign(v)

    def update(self):
        """One EMA step; callable inside tf.function."""
        d = tf.constant(self.decay, tf.float32)
        for s, v in zip(self.shadow, self._targets):
            s.assign(d * s + (1.0 - d) * tf.cast(v, s.dtype))

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
