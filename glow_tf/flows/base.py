"""The contract every flow layer follows, in TFP's bijector vocabulary, and the chain of layers.

A flow layer is an invertible map f with a tractable log-determinant. In the *encoding*
direction (image -> latent, the direction used for training) it computes

    forward(x) -> (y, fldj),   fldj = log |det dy/dx|   (one value per example, shape [B])
    inverse(y) -> (x, ildj),   ildj = log |det dx/dy| = -fldj

so `log p(x) = log p(z) + sum of fldj` over the stack (paper, eq. 3). A chain f_n ∘ ... ∘ f_1
(`chain_forward` / `chain_inverse`) is again a flow, with the log-dets summed.

For the memory modes of `glow_tf.model.memory` a layer also answers two backward-pass questions,
given the gradients (dy [B, ...], dlog_det [B]) of a loss with respect to its outputs:

    recompute_and_backprop(x, dy, dlog_det)   -> (dx, [(variable, gradient)])
    reconstruct_and_backprop(y, dy, dlog_det) -> (x, dx, [(variable, gradient)])

the second from the *output* alone (x = inverse(y), then the first). `Coupling` overrides it with
a version that evaluates its network once. `invertible_parts()` lists the layers a memory mode
may walk one by one (a FlowStep: its three layers; a single layer: itself).
"""

import keras
import tensorflow as tf

from glow_tf.variables import tf_variables


class FlowLayer(keras.layers.Layer):
    """Base class: a Keras layer whose `call` is `forward` and which also has `inverse`.

    Subclasses implement `_forward(x) -> (y, fldj)` and `_inverse(y) -> (x, ildj)` on rank-4
    NHWC tensors [B, H, W, C]. Building happens on first use, from the input shape.

    Args:
        **kwargs: `keras.layers.Layer` arguments (`name`, ...).
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

    # ---- what the memory modes ask (glow_tf.model.memory) ----------------------------------
    def invertible_parts(self):
        """The flow layers this layer chains, in forward order; `[self]` for a single layer."""
        return [self]

    def recompute_and_backprop(self, x, dy, dlog_det):
        """Re-run `forward(x)` under a tape and backpropagate (dy, dlog_det) through it.

        Returns (dx, [(tf.Variable, gradient)]) for every trainable variable (zeros if unused).
        """
        variables = tf_variables(self.trainable_variables)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x)
            tape.watch(variables)
            y, log_det = self.forward(x)
        grads = tape.gradient(
            [y, log_det],
            [x] + variables,
            output_gradients=[dy, dlog_det],
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        return grads[0], list(zip(variables, grads[1:]))

    def reconstruct_and_backprop(self, y, dy, dlog_det):
        """The input x = inverse(y) and the backward pass through the layer at x.

        Returns (x, dx, [(tf.Variable, gradient)]); x carries no gradient. Default: invert, then
        `recompute_and_backprop`; a layer that can share work between the two overrides it.
        """
        x = tf.stop_gradient(self.inverse(y)[0])
        dx, var_grads = self.recompute_and_backprop(x, dy, dlog_det)
        return x, dx, var_grads


def chain_forward(layers, x, inputs=None):
    """Apply flow layers in order: x [B, ...] -> (y, Σ fldj [B]).

    `inputs`: a list to which each layer's input is appended (for checkpointing).
    """
    total = None
    for layer in layers:
        if inputs is not None:
            inputs.append(x)
        x, log_det = layer.forward(x)
        total = log_det if total is None else total + log_det
    return x, _zeros_if_none(total, x)


def chain_inverse(layers, y):
    """Undo `chain_forward(layers, ·)`: y -> (x, Σ ildj [B]), the layers in reverse order."""
    total = None
    for layer in reversed(list(layers)):
        y, log_det = layer.inverse(y)
        total = log_det if total is None else total + log_det
    return y, _zeros_if_none(total, y)


def _zeros_if_none(total, x):
    """The log-det of an empty chain: zeros [B]."""
    return tf.zeros([batch_size(x)], x.dtype) if total is None else total


def batch_size(x):
    """B of a [B, ...] tensor: a Python int when its static shape knows it (a traced training
    step's does), else a scalar tensor. Static sizes keep shape arithmetic out of the graph, so
    a step traces and optimises faster (docs/performance.md)."""
    return x.shape[0] if x.shape[0] is not None else tf.shape(x)[0]


def split_channels(x, n):
    """(x[..., :n], x[..., n:]) of a tensor with a static channel count: one split, whose
    gradient is one concatenation (two slices would add a slice gradient each)."""
    return tuple(tf.split(x, [n, int(x.shape[-1]) - n], axis=-1))


def interleaved_channels(x):
    """(x[..., 0::2], x[..., 1::2]) of a tensor with an even, static channel count: one reshape to
    [..., C/2, 2] and one unstack (a smaller graph and gradient than two strided slices)."""
    channels = int(x.shape[-1])
    if x.shape[:-1].is_fully_defined():
        shape = [*x.shape[:-1], channels // 2, 2]
    else:
        shape = tf.concat([tf.shape(x)[:-1], [channels // 2, 2]], axis=0)
    return tuple(tf.unstack(tf.reshape(x, shape), axis=-1))


def spatial_size(x):
    """h * w of an NHWC tensor, as float32 (the multiplier of per-pixel log-dets)."""
    height, width = x.shape[1], x.shape[2]
    if height is not None and width is not None:
        return tf.constant(float(height * width), tf.float32)
    shape = tf.shape(x)
    return tf.cast(shape[1] * shape[2], tf.float32)


def sum_except_batch(t):
    """Sum over every axis but the first: [B, ...] -> [B]."""
    rank = t.shape.rank
    return tf.reduce_sum(
        t, axis=list(range(1, rank)) if rank is not None else tf.range(1, tf.rank(t))
    )
