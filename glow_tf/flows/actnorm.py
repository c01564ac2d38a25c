"""Activation normalisation (paper section 3.1; Table 1, line 1).

    y_{i,j} = s ⊙ (x_{i,j} + b)                      (per channel scale s, bias b)
    x_{i,j} = y_{i,j} / s - b
    log-det = h · w · sum(log |s|)

Data-dependent initialisation: on the first minibatch, b = -mean(x) and s = 1 / std(x) per
channel, so the post-actnorm activations have zero mean and unit variance per channel. After
that s and b are ordinary trainable parameters. The non-trainable `initialized` flag (0 or 1) is
saved with the weights; `Glow.initialize` / `Glow.is_initialized` read it, so a restored model is
never re-initialised by accident.

Like the original code, s is parameterised as s = exp(logscale_factor · logs) so that the
effective learning rate of the log-scale is `logscale_factor` times larger.
"""

import keras
import tensorflow as tf

from glow_tf.flows.base import FlowLayer, batch_size, spatial_size
from glow_tf.flows.terms import FORWARD, INVERSE, WeightTerms


@keras.saving.register_keras_serializable(package='glow_tf')
class ActNorm(WeightTerms, FlowLayer):
    """Per-channel affine flow with data-dependent init. Input/output: [B, H, W, C].

    The init is armed by `begin_data_init` and performed (then disarmed) by the next forward
    pass; `awaiting_data_init` says whether it is pending, `initialized` whether it ever ran.

    Args:
        logscale_factor: s = exp(logscale_factor · logs).
        epsilon: added to the std in the data-dependent init, s = 1 / (std + epsilon).
    """

    def __init__(self, logscale_factor=3.0, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.logscale_factor = float(logscale_factor)
        self.epsilon = float(epsilon)
        self._ddi_reduce = None  # set only while the model runs its data-dependent init pass

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.bias = self.add_weight(name='bias', shape=(channels,), initializer='zeros')
        self.logs = self.add_weight(name='logs', shape=(channels,), initializer='zeros')
        self.initialized = self.add_weight(
            name='initialized', shape=(), initializer='zeros', trainable=False
        )

    def begin_data_init(self, reduce_mean=None):
        """Arm data-dependent init: the next forward pass sets b and s from its input.

        `reduce_mean(t)` averages a tensor across workers (e.g. Horovod allreduce) so every
        worker initialises from the statistics of the union of their batches.
        """
        self._ddi_reduce = reduce_mean or (lambda t: t)

    def _data_init(self, x):
        reduce = self._ddi_reduce
        self._ddi_reduce = None
        mean = reduce(tf.reduce_mean(x, axis=[0, 1, 2]))
        mean_sq = reduce(tf.reduce_mean(tf.square(x), axis=[0, 1, 2]))
        std = tf.sqrt(tf.maximum(mean_sq - tf.square(mean), 0.0))
        self.bias.assign(-mean)
        self.logs.assign(tf.math.log(1.0 / (std + self.epsilon)) / self.logscale_factor)
        self.initialized.assign(1.0)

    @property
    def awaiting_data_init(self):
        """True between `begin_data_init` and the forward pass that performs it."""
        return self._ddi_reduce is not None

    def fold_into_conv(self, kernel, values=None):
        """(kernel', bias') with s ⊙ (conv(x, kernel) + b) == conv(x, kernel') + bias'.

        For an ActNorm that follows a convolution inside a network (not as a flow step): the
        scale and bias move into the convolution, so the backend runs one fused
        Conv2D + BiasAdd (+ Relu) instead of the convolution and two elementwise passes over its
        output (and keeps fewer activations for the backward pass). kernel: [..., kh, kw, C_in,
        C]; `values`: this layer's `weight_values()` (stacked like the kernel), default now's.
        """
        values = self.weight_values() if values is None else values
        scale = tf.exp(values['logs'] * self.logscale_factor)
        return kernel * scale[..., None, None, None, :], values['bias'] * scale

    def weight_values(self):
        """{'bias': b, 'logs': logs}, each [C] (`glow_tf.flows.terms`)."""
        return {'bias': self.bias, 'logs': self.logs}

    def weight_terms(self, values, direction, input_shape):
        """{'bias': b, 'scale': s (forward) or 1/s (inverse), 'log_scale_sum': Σ log s}."""
        log_scale = values['logs'] * self.logscale_factor
        return {
            'bias': values['bias'],
            'scale': tf.exp(log_scale if direction == FORWARD else -log_scale),
            'log_scale_sum': tf.reduce_sum(log_scale, axis=-1),
        }

    def _forward(self, x):
        if self.awaiting_data_init:
            self._data_init(x)
        terms = self.current_terms(FORWARD, x.shape)
        y = (x + terms['bias']) * terms['scale']
        fldj = spatial_size(x) * terms['log_scale_sum']
        return y, tf.fill([batch_size(x)], fldj)

    def _inverse(self, y):
        terms = self.current_terms(INVERSE, y.shape)
        x = y * terms['scale'] - terms['bias']
        ildj = -spatial_size(y) * terms['log_scale_sum']
        return x, tf.fill([batch_size(y)], ildj)

    def get_config(self):
        return {
            **super().get_config(),
            'logscale_factor': self.logscale_factor,
            'epsilon': self.epsilon,
        }
