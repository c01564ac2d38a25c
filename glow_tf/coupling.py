"""Affine and additive coupling layers (paper section 3.3; Table 1, line 3).

    x_a, x_b = split(x)                       (first / second half of the channels)
    (log s, t) = NN(x_a)
    affine:    y_b = (x_b + t) ⊙ s,  s = sigmoid(h + 2)   (the original code's stable variant)
    additive:  y_b = x_b + t                               (s = 1, log-det 0)
    y = concat(x_a, y_b)
    log-det = sum(log |s|)

NN() is the paper's three-layer network: conv3x3(width) -> ActNorm -> ReLU -> conv1x1(width)
-> ActNorm -> ReLU -> ZeroConv3x3, so every coupling starts as the identity map. Both 3x3
convolutions use the original's edge-bias padding by default (`glow_tf.conv`).

Each ActNorm is folded into the convolution before it when the network runs,
s ⊙ (conv(x, K) + b) = conv(x, K·s) + b·s: the same function and parameters, but one fused
conv + bias + ReLU per layer, and fewer width-sized activations kept for the backward pass.
The data-dependent init pass runs unfolded, as it needs the conv statistics. The convolutions
themselves go through `glow_tf.conv.conv2d_same` (GEMM forms of the 1x1 and output layers).
"""
import keras
import tensorflow as tf

from glow_tf.actnorm import ActNorm
from glow_tf.conv import conv2d_same
from glow_tf.layer_base import FlowLayer, sum_except_batch
from glow_tf.zero_conv import ZeroConv2D


@keras.saving.register_keras_serializable(package='glow_tf')
class CouplingNetwork(keras.layers.Layer):
    """NN(): [B, H, W, C_in] -> [B, H, W, out_channels].

    Args:
        width: hidden channels (the paper's 512).
        out_channels: C_b (additive) or 2·C_b (affine: shift and scale).
        seed: initialiser seed of the two hidden kernels.
        edge_bias: the original's border channel in both 3x3 convolutions.
    """

    def __init__(self, width, out_channels, seed=0, edge_bias=True, **kwargs):
        super().__init__(**kwargs)
        if int(width) <= 0:
            raise ValueError(f"width must be a positive number of hidden channels, got {width}")
        self.width = int(width)
        self.out_channels = int(out_channels)
        self.seed = int(seed)
        self.edge_bias = bool(edge_bias)
        self.norm1 = ActNorm(name='actnorm1')
        self.norm2 = ActNorm(name='actnorm2')
        self.out = ZeroConv2D(self.out_channels, edge_bias=self.edge_bias, name='zero_conv')

    def build(self, input_shape):
        init = lambda offset: keras.initializers.RandomNormal(stddev=0.05, seed=self.seed + offset)
        c_in = int(input_shape[-1]) + (1 if self.edge_bias else 0)
        self.kernel1 = self.add_weight(name='kernel1', shape=(3, 3, c_in, self.width),
                                       initializer=init(0))
        self.kernel2 = self.add_weight(name='kernel2', shape=(1, 1, self.width, self.width),
                                       initializer=init(1))
        hidden = tuple(input_shape[:-1]) + (self.width,)
        self.norm1.build(hidden)
        self.norm2.build(hidden)
        self.out.build(hidden)

    def call(self, x):
        if self.norm1.awaiting_data_init or self.norm2.awaiting_data_init:
            return self._call_unfolded(x)   # the data-dependent init needs the conv statistics
        h = conv2d_same(x, *self.norm1.fold_into_conv(self.kernel1), relu=True,
                        edge_bias=self.edge_bias)
        h = conv2d_same(h, *self.norm2.fold_into_conv(self.kernel2), relu=True)
        return self.out(h)

    def _call_unfolded(self, x):
        h = tf.nn.relu(self.norm1.forward(conv2d_same(x, self.kernel1, edge_bias=self.edge_bias))[0])
        h = tf.nn.relu(self.norm2.forward(conv2d_same(h, self.kernel2))[0])
        return self.out(h)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.out_channels,)

    def get_config(self):
        return {**super().get_config(), 'width': self.width, 'out_channels': self.out_channels,
                'seed': self.seed, 'edge_bias': self.edge_bias}


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
            raise ValueError(f"a coupling layer needs at least 2 channels, got input shape {input_shape}")
        self.n_a = channels // 2
        n_b = channels - self.n_a
        self.nn = CouplingNetwork(self.width, n_b if self.kind == 'additive' else 2 * n_b,
                                  seed=self.seed, edge_bias=self.edge_bias, name='nn')
        self.nn.build(tuple(input_shape[:-1]) + (self.n_a,))

    def _shift_and_log_scale(self, x_a):
        h = self.nn(x_a)
        if self.kind == 'additive':
            return h, None
        return h[..., 0::2], tf.math.log_sigmoid(h[..., 1::2] + 2.0)

    def _forward(self, x):
        x_a, x_b = x[..., :self.n_a], x[..., self.n_a:]
        shift, log_scale = self._shift_and_log_scale(x_a)
        if log_scale is None:
            return tf.concat([x_a, x_b + shift], axis=-1), tf.zeros([tf.shape(x)[0]])
        y_b = (x_b + shift) * tf.exp(log_scale)
        return tf.concat([x_a, y_b], axis=-1), sum_except_batch(log_scale)

    def _inverse(self, y):
        y_a, y_b = y[..., :self.n_a], y[..., self.n_a:]
        shift, log_scale = self._shift_and_log_scale(y_a)
        if log_scale is None:
            return tf.concat([y_a, y_b - shift], axis=-1), tf.zeros([tf.shape(y)[0]])
        x_b = y_b * tf.exp(-log_scale) - shift
        return tf.concat([y_a, x_b], axis=-1), -sum_except_batch(log_scale)

    def get_config(self):
        return {**super().get_config(), 'kind': self.kind, 'width': self.width, 'seed': self.seed,
                'edge_bias': self.edge_bias}
