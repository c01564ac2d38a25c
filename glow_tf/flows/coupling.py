"""Affine and additive coupling layers (paper section 3.3; Table 1, line 3).

    x_a, x_b = split(x)                       (first / second half of the channels)
    (log s, t) = NN(x_a)
    affine:    y_b = (x_b + t) ⊙ s,  s = sigmoid(h + 2)   (the original code's stable variant)
    additive:  y_b = x_b + t                               (s = 1, log-det 0)
    y = concat(x_a, y_b)
    log-det = sum(log |s|)

NN() is the paper's three-layer network, `glow_tf.nets.coupling_net.CouplingNetwork`; its last
layer is zero-initialised, so every coupling starts as the identity map.
"""

import keras
import tensorflow as tf

from glow_tf.flows.base import FlowLayer, sum_except_batch
from glow_tf.nets.coupling_net import CouplingNetwork


@keras.saving.register_keras_serializable(package='glow_tf')
class Coupling(FlowLayer):
    """Coupling flow; kind='additive' or 'affine'. Input/output: [B, H, W, C], C >= 2."""

    KINDS = ('additive', 'affine')

    def __init__(self, kind='affine', width=512, seed=0, edge_bias=True, **kwargs):
        super().__init__(**kwargs)
        if kind not in self.KINDS:
            raise ValueError(f"flow_coupling must be one of {self.KINDS}, got {kind!r}")
        self.kind = kind
        self.width = int(width)
        self.seed = int(seed)
        self.edge_bias = bool(edge_bias)
        self.nn = None

    def build(self, input_shape):
        channels = int(input_shape[-1])
        if channels < 2:
            raise ValueError(
                f"a coupling layer needs at least 2 channels, got input shape {input_shape}"
            )
        self.n_a = channels // 2
        n_b = channels - self.n_a
        self.nn = CouplingNetwork(
            self.width,
            n_b if self.kind == 'additive' else 2 * n_b,
            seed=self.seed,
            edge_bias=self.edge_bias,
            name='nn',
        )
        self.nn.build(tuple(input_shape[:-1]) + (self.n_a,))

    def _shift_and_log_scale(self, x_a):
        h = self.nn(x_a)
        if self.kind == 'additive':
            return h, None
        return h[..., 0::2], tf.math.log_sigmoid(h[..., 1::2] + 2.0)

    def _forward(self, x):
        x_a, x_b = x[..., : self.n_a], x[..., self.n_a :]
        shift, log_scale = self._shift_and_log_scale(x_a)
        if log_scale is None:
            return tf.concat([x_a, x_b + shift], axis=-1), tf.zeros([tf.shape(x)[0]])
        y_b = (x_b + shift) * tf.exp(log_scale)
        return tf.concat([x_a, y_b], axis=-1), sum_except_batch(log_scale)

    def _inverse(self, y):
        y_a, y_b = y[..., : self.n_a], y[..., self.n_a :]
        shift, log_scale = self._shift_and_log_scale(y_a)
        if log_scale is None:
            return tf.concat([y_a, y_b - shift], axis=-1), tf.zeros([tf.shape(y)[0]])
        x_b = y_b * tf.exp(-log_scale) - shift
        return tf.concat([y_a, x_b], axis=-1), -sum_except_batch(log_scale)

    def get_config(self):
        return {
            **super().get_config(),
            'kind': self.kind,
            'width': self.width,
            'seed': self.seed,
            'edge_bias': self.edge_bias,
        }
