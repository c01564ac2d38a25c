"""Zero-initialised output layers (the original code's `conv2d_zeros` / `linear_zeros`).

    y = (conv(x, W) + b) · exp(logscale_factor · logs),   W = b = logs = 0 at init

Used as the last layer of every coupling network (so each flow step starts as the identity,
paper section 3.3) and for the learned priors (so they start as N(0, I)).
"""

import keras
import tensorflow as tf

from glow_tf.flows.terms import FORWARD, WeightTerms
from glow_tf.nets.conv import apply_conv
from glow_tf.nets.conv_forms import check_policy, prepare_conv2d


@keras.saving.register_keras_serializable(package='glow_tf')
class ZeroConv2D(WeightTerms, keras.layers.Layer):
    """3x3 'SAME' conv, zero-initialised, with a learned per-channel output scale.

    Input [B, H, W, C_in] -> output [B, H, W, filters].

    Args:
        filters: output channels.
        kernel_size: odd spatial size of the kernel (3 in every use).
        logscale_factor: s = exp(logscale_factor · logs).
        edge_bias: pad with the original's border channel (`glow_tf.nets.conv`); the kernel then has
            C_in + 1 input channels. False reproduces models saved before edge bias existed.
        conv_forms: 'auto', 'gemm' or 'native' (`glow_tf.nets.conv_forms`).
    """

    def __init__(
        self,
        filters,
        kernel_size=3,
        logscale_factor=3.0,
        edge_bias=True,
        conv_forms='auto',
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.logscale_factor = float(logscale_factor)
        self.edge_bias = bool(edge_bias) and self.kernel_size > 1
        self.conv_forms = check_policy(conv_forms)

    def build(self, input_shape):
        k = self.kernel_size
        c_in = int(input_shape[-1]) + (1 if self.edge_bias else 0)
        self.kernel = self.add_weight(
            name='kernel', shape=(k, k, c_in, self.filters), initializer='zeros'
        )
        self.bias = self.add_weight(name='bias', shape=(self.filters,), initializer='zeros')
        self.logs = self.add_weight(name='logs', shape=(self.filters,), initializer='zeros')

    def weight_values(self):
        """{'kernel', 'bias', 'logs'} (`glow_tf.flows.terms`)."""
        return {'kernel': self.kernel, 'bias': self.bias, 'logs': self.logs}

    def weight_terms(self, values, direction, input_shape):
        """The convolution with the scale folded in, (conv(x, W) + b) · s == conv(x, W · s) + b · s
        (one fused conv + bias op), prepared for its form (`glow_tf.nets.conv.PreparedConv`) for
        inputs of `input_shape`, in the layer's compute dtype."""
        values = {k: tf.cast(v, self.compute_dtype) for k, v in values.items()}
        scale = tf.exp(values['logs'] * self.logscale_factor)
        kernel = values['kernel'] * scale[..., None, None, None, :]
        return prepare_conv2d(
            input_shape,
            kernel,
            values['bias'] * scale,
            self.edge_bias,
            self.conv_forms,
            self.compute_dtype,
        )

    def call(self, x):
        return apply_conv(x, self.current_terms(FORWARD, x.shape))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        return {
            **super().get_config(),
            'filters': self.filters,
            'kernel_size': self.kernel_size,
            'logscale_factor': self.logscale_factor,
            'edge_bias': self.edge_bias,
            'conv_forms': self.conv_forms,
        }


@keras.saving.register_keras_serializable(package='glow_tf')
class ZeroDense(keras.layers.Layer):
    """Dense layer, zero-initialised, with a learned output scale. [B, D_in] -> [B, units].

    Args:
        units: output features.
        logscale_factor: s = exp(logscale_factor · logs).
    """

    def __init__(self, units, logscale_factor=3.0, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.logscale_factor = float(logscale_factor)

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name='kernel', shape=(int(input_shape[-1]), self.units), initializer='zeros'
        )
        self.bias = self.add_weight(name='bias', shape=(self.units,), initializer='zeros')
        self.logs = self.add_weight(name='logs', shape=(self.units,), initializer='zeros')

    def call(self, x):
        return (tf.matmul(x, self.kernel) + self.bias) * tf.exp(self.logs * self.logscale_factor)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {
            **super().get_config(),
            'units': self.units,
            'logscale_factor': self.logscale_factor,
        }
