"""NN() of a coupling layer (paper section 3.3): the network that predicts (log s, t) from x_a.

    conv3x3(width) -> ActNorm -> ReLU -> conv1x1(width) -> ActNorm -> ReLU -> ZeroConv3x3

The last layer starts at zero, so every coupling starts as the identity map. Both 3x3
convolutions use the original's edge-bias padding by default (`glow_tf.nets.conv`).

Each ActNorm is folded into the convolution before it when the network runs,
s ⊙ (conv(x, K) + b) = conv(x, K·s) + b·s: the same function and parameters, but one fused
conv + bias + ReLU per layer, and fewer width-sized activations kept for the backward pass.
The data-dependent init pass runs unfolded, as it needs the conv statistics. The convolutions
themselves go through `glow_tf.nets.conv_forms.conv2d` (the fastest form on this machine).

Precision: the network computes in its Keras dtype policy's compute dtype (`set_precision`,
`glow_tf.nets.precision`): inputs and weights are cast on the way in (Keras autocasting), and the
output is cast back to float32, so the flow around it stays float32.
"""

import keras
import tensorflow as tf

from glow_tf.errors import ArgumentError
from glow_tf.flows.actnorm import ActNorm
from glow_tf.flows.terms import FORWARD, WeightTerms
from glow_tf.nets.conv import apply_conv
from glow_tf.nets.conv_forms import check_policy, conv2d, prepare_conv2d
from glow_tf.nets.precision import policy_name
from glow_tf.nets.zero_conv import ZeroConv2D


@keras.saving.register_keras_serializable(package='glow_tf')
class CouplingNetwork(WeightTerms, keras.layers.Layer):
    """NN(): [B, H, W, C_in] -> [B, H, W, out_channels].

    Args:
        width: hidden channels (the paper's 512).
        out_channels: C_b (additive) or 2·C_b (affine: shift and scale).
        seed: initialiser seed of the two hidden kernels.
        edge_bias: the original's border channel in both 3x3 convolutions.
        conv_forms: how the convolutions are computed, 'auto' (timed on this machine), 'gemm' or
            'native' (`glow_tf.nets.conv_forms`); the function is the same.
        dtype: Keras dtype policy (float32 by default; `set_precision` sets it by name).
    """

    def __init__(self, width, out_channels, seed=0, edge_bias=True, conv_forms='auto', **kwargs):
        super().__init__(**kwargs)
        CouplingNetwork.check_arguments(width)
        self.width = int(width)
        self.out_channels = int(out_channels)
        self.seed = int(seed)
        self.edge_bias = bool(edge_bias)
        self.conv_forms = check_policy(conv_forms)
        self.norm1 = ActNorm(name='actnorm1')
        self.norm2 = ActNorm(name='actnorm2')
        self.out = ZeroConv2D(
            self.out_channels,
            edge_bias=self.edge_bias,
            conv_forms=self.conv_forms,
            dtype=self.dtype_policy,
            name='zero_conv',
        )

    @staticmethod
    def check_arguments(width):
        """ArgumentError('width') unless `width` is a positive number of channels."""
        if int(width) <= 0:
            raise ArgumentError(
                'width', f"width must be a positive number of hidden channels, got {width}"
            )

    def build(self, input_shape):
        init = lambda offset: keras.initializers.RandomNormal(stddev=0.05, seed=self.seed + offset)
        c_in = int(input_shape[-1]) + (1 if self.edge_bias else 0)
        self.kernel1 = self.add_weight(
            name='kernel1', shape=(3, 3, c_in, self.width), initializer=init(0)
        )
        self.kernel2 = self.add_weight(
            name='kernel2', shape=(1, 1, self.width, self.width), initializer=init(1)
        )
        hidden = tuple(input_shape[:-1]) + (self.width,)
        self.norm1.build(hidden)
        self.norm2.build(hidden)
        self.out.build(hidden)

    def set_precision(self, precision):
        """Compute in 'fp32', 'bf16' or 'fp16' (`glow_tf.nets.precision`); weights stay float32."""
        policy = keras.DTypePolicy(policy_name(precision))
        self.dtype_policy = policy
        self.out.dtype_policy = policy

    def set_conv_forms(self, policy):
        """'auto', 'gemm' or 'native' for all three convolutions (`glow_tf.nets.conv_forms`)."""
        self.conv_forms = self.out.conv_forms = check_policy(policy)

    def actnorm_layers(self):
        """The two hidden-layer ActNorms, in forward order."""
        return [self.norm1, self.norm2]

    def weight_values(self):
        """The kernels and the ActNorms' and output layer's weights (`glow_tf.flows.terms`)."""
        return {
            'kernel1': self.kernel1,
            'kernel2': self.kernel2,
            'norm1': self.norm1.weight_values(),
            'norm2': self.norm2.weight_values(),
            'out': self.out.weight_values(),
        }

    def weight_terms(self, values, direction, input_shape):
        """The three convolutions, ActNorms folded in, prepared for their forms
        (`glow_tf.nets.conv.PreparedConv`), for inputs of `input_shape` (either direction of the
        flow runs the network forward)."""
        values = tf.nest.map_structure(lambda v: tf.cast(v, self.compute_dtype), values)
        hidden = tuple(input_shape[:-1]) + (self.width,)
        dtype, forms = self.compute_dtype, self.conv_forms
        kernel1, bias1 = self.norm1.fold_into_conv(values['kernel1'], values['norm1'])
        kernel2, bias2 = self.norm2.fold_into_conv(values['kernel2'], values['norm2'])
        return (
            prepare_conv2d(input_shape, kernel1, bias1, self.edge_bias, forms, dtype),
            prepare_conv2d(hidden, kernel2, bias2, False, forms, dtype),
            self.out.weight_terms(values['out'], direction, hidden),
        )

    def call(self, x):
        if self.norm1.awaiting_data_init or self.norm2.awaiting_data_init:
            return self._call_unfolded(x)  # the data-dependent init needs the conv statistics
        layer1, layer2, out = self.current_terms(FORWARD, x.shape)
        h = apply_conv(apply_conv(x, layer1, relu=True), layer2, relu=True)
        return tf.cast(apply_conv(h, out), tf.float32)

    def _call_unfolded(self, x):
        forms = self.conv_forms
        h = conv2d(x, self.kernel1, edge_bias=self.edge_bias, policy=forms)
        h = tf.nn.relu(self.norm1.forward(h)[0])
        h = tf.nn.relu(self.norm2.forward(conv2d(h, self.kernel2, policy=forms))[0])
        return tf.cast(self.out(h), tf.float32)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.out_channels,)

    def get_config(self):
        return {
            **super().get_config(),
            'width': self.width,
            'out_channels': self.out_channels,
            'seed': self.seed,
            'edge_bias': self.edge_bias,
            'conv_forms': self.conv_forms,
        }
