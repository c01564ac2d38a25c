"""Keras callbacks for `Glow.fit`: the trainer's Polyak averaging, for Keras users.

    model.compile(optimizer=keras.optimizers.Adamax(1e-3))
    model.fit(images, epochs=10, callbacks=[PolyakAveraging(decay=0.999)])

`PolyakAveraging` keeps the `glow_tf.training.ema.EMA` of the trainable weights that train.py
keeps (avg <- d · avg + (1 - d) · w after every batch, with the EMA class's own warm-up),
evaluates with the averaged weights, and leaves them in the model when `fit` ends, so what
you save, export or sample from afterwards is the averaged model (as train.py's checkpoints).
"""

import keras
import tensorflow as tf

from glow_tf.training.ema import EMA


class PolyakAveraging(keras.callbacks.Callback):
    """Polyak (exponential moving) averaging of the weights during `fit`.

    Args:
        decay: the EMA decay d; train.py uses 1 - 1/(iterations per epoch · polyak_epochs).
        evaluate_averaged: validation during `fit` (and `evaluate(..., callbacks=[this])`) uses
            the averaged weights.
        keep_averaged: when `fit` ends, the model keeps the averaged weights (else the raw ones;
            `self.ema.swapped()` still gives the averages).

    The average starts from the weights at the beginning of the first `fit` (after the
    data-dependent init) and continues across later `fit` calls with the same callback.
    """

    def __init__(self, decay=0.999, evaluate_averaged=True, keep_averaged=True):
        super().__init__()
        if not 0.0 <= float(decay) < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.evaluate_averaged = bool(evaluate_averaged)
        self.keep_averaged = bool(keep_averaged)
        self.ema = None
        self._update = None
        self._swap = None

    def on_train_begin(self, logs=None):
        if self.ema is None:
            self.ema = EMA(self.model.trainable_variables, self.decay)
            self.ema.reset()
            self._update = tf.function(self.ema.update, autograph=False)

    def on_train_batch_end(self, batch, logs=None):
        self._update()

    def on_test_begin(self, logs=None):
        if self.ema is not None and self.evaluate_averaged and self._swap is None:
            self._swap = self.ema.swapped()
            self._swap.__enter__()

    def on_test_end(self, logs=None):
        if self._swap is not None:
            swap, self._swap = self._swap, None
            swap.__exit__(None, None, None)

    def on_train_end(self, logs=None):
        if self.keep_averaged and self.ema is not None:
            variables = self.model.trainable_variables
            with self.ema.swapped():
                averaged = [tf.identity(v) for v in variables]
            for v, a in zip(variables, averaged):
                v.assign(a)
