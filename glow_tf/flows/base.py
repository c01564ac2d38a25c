"""The contract every flow layer follows, in TFP's bijector vocabulary.

A flow layer is an invertible map f with a tractable log-determinant. In the *encoding*
direction (image -> latent, the direction used for training) it computes

    forward(x) -> (y, fldj),   fldj = log |det dy/dx|   (one value per example, shape [B])
    inverse(y) -> (x, ildj),   ildj = log |det dx/dy| = -fldj

so `log p(x) = log p(z) + sum of fldj` over the stack (paper, eq. 3).
"""

import keras
import tensorflow as tf


class FlowLayer(keras.layers.Layer):
    """Base class: a Keras layer whose `call` is `forward` and which also has `inverse`.

    Subclasses implement `_forward(x) -> (y, fldj)` and `_inverse(y) -> (x, ildj)` on rank-4
    NHWC tensors [B, H, W, C]. Building happens on first use, from the input shape.
    """

    def forward(self, x):
        self._build_for(x)
        return self._forward(x)

    def inverse(self, y):
        self._build_for(y)
        return self._inverse(y)

    def call(self, x, inverse=False):
        return self.inverse(x) if inverse else self.forward(x)

    def _build_for(self, x):
        if not self.built:
            self.build(tuple(x.shape))

    def compute_output_shape(self, input_shape):
        return input_shape, (input_shape[0],)


def spatial_size(x):
    """h * w of an NHWC tensor, as float32 (the multiplier of per-pixel log-dets)."""
    shape = tf.shape(x)
    return tf.cast(shape[1] * shape[2], tf.float32)


def sum_except_batch(t):
    """Sum over every axis but the first: [B, ...] -> [B]."""
    return tf.reduce_sum(t, axis=tf.range(1, tf.rank(t)))
