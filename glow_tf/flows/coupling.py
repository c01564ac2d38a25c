"""Affine and additive coupling layers (paper section 3.3; Table 1, line 3).

    x_a, x_b = split(x)                       (first / second half of the channels)
    (log s, t) = NN(x_a)
    affine:    y_b = (x_b + t) ⊙ s,  s = sigmoid(h + 2)   (the original code's stable variant)
    additive:  y_b = x_b + t                               (s = 1, log-det 0)
    y = concat(x_a, y_b)
    log-det = sum(log |s|)

NN() is injected (`glow_tf.flows.networks`): a layer [B, H, W, C_a] -> [B, H, W, C_b] (additive)
or [B, H, W, 2·C_b] (affine, shift and scale interleaved), or a factory that makes one. The model
passes the paper's three-layer network (`glow_tf.nets.factories.CouplingNetworks`), whose last
layer is zero-initialised, so every coupling starts as the identity map.

Backward pass from the output alone (`reconstruct_and_backprop`, the reversible memory mode): x_a =
y_a passes through unchanged, so one evaluation of NN(y_a) under a gradient tape gives both
x_b = inverse(y_b) and the gradients of x_a, x_b and the network's weights.
"""

import keras
import tensorflow as tf

from glow_tf.errors import ArgumentError
from glow_tf.flows.base import (
    FlowLayer,
    batch_size,
    interleaved_channels,
    split_channels,
    sum_except_batch,
)
from glow_tf.flows.networks import (
    check_network,
    deserialize_network,
    make_network,
    serialize_network,
)
from glow_tf.flows.terms import FORWARD, WeightTerms
from glow_tf.variables import tf_variables


@keras.saving.register_keras_serializable(package='glow_tf')
class Coupling(WeightTerms, FlowLayer):
    """Coupling flow. Input/output: [B, H, W, C], C >= 2; x_a = the first C//2 channels.

    Args:
        kind: 'affine' or 'additive' (the model's `flow_coupling`; checked here).
        network: NN(), a Keras layer or a factory (in_channels, out_channels, name) -> layer
            (`glow_tf.flows.networks`), e.g. `glow_tf.nets.CouplingNetworks(width=512)`.
    """

    KINDS = ('additive', 'affine')

    def __init__(self, kind='affine', network=None, **kwargs):
        super().__init__(**kwargs)
        Coupling.check_arguments(kind)
        self.kind = kind
        self.network = check_network(network, 'network', 'Coupling')
        self.nn = None

    @classmethod
    def check_arguments(cls, kind):
        """ArgumentError('flow_coupling') unless `kind` is one of KINDS."""
        if kind not in cls.KINDS:
            raise ArgumentError(
                'flow_coupling', f"flow_coupling must be one of {cls.KINDS}, got {kind!r}"
            )

    def build(self, input_shape):
        channels = int(input_shape[-1])
        if channels < 2:
            raise ValueError(
                f"a coupling layer needs at least 2 channels, got input shape {input_shape}"
            )
        self.n_a = channels // 2
        n_b = channels - self.n_a
        n_out = n_b if self.kind == 'additive' else 2 * n_b
        self.nn = make_network(self.network, self.n_a, n_out, 'nn', input_shape)

    def actnorm_layers(self):
        """The ActNorms inside NN() that the data-dependent init sets, in forward order (none
        before the layer is built, or for a network without `actnorm_layers()`)."""
        return list(getattr(self.nn, 'actnorm_layers', list)())

    def weight_values(self):
        """NN()'s (`glow_tf.flows.terms`); NotImplementedError for a network that does not split
        its computation into weight terms (then the model runs the coupling as it is)."""
        if not isinstance(self.nn, WeightTerms):
            raise NotImplementedError(f"{type(self.nn).__name__} has no weight terms")
        return self.nn.weight_values()

    def weight_terms(self, values, direction, input_shape):
        """NN()'s terms for inputs x_a; both directions run NN() forward."""
        nn_shape = tuple(input_shape[:-1]) + (self.n_a,)
        return self.nn.weight_terms(values, FORWARD, nn_shape)

    def given_terms(self, terms):
        """NN() uses `terms` (the coupling itself has no weights)."""
        return self.nn.given_terms(terms)

    def _shift_and_log_scale(self, x_a):
        h = self.nn(x_a)
        if self.kind == 'additive':
            return h, None
        shift, raw_scale = interleaved_channels(h)
        return shift, tf.math.log_sigmoid(raw_scale + 2.0)

    def _forward(self, x):
        x_a, x_b = split_channels(x, self.n_a)
        shift, log_scale = self._shift_and_log_scale(x_a)
        if log_scale is None:
            return tf.concat([x_a, x_b + shift], axis=-1), tf.zeros([batch_size(x)])
        y_b = (x_b + shift) * tf.exp(log_scale)
        return tf.concat([x_a, y_b], axis=-1), sum_except_batch(log_scale)

    def _inverse(self, y):
        y_a, y_b = split_channels(y, self.n_a)
        shift, log_scale = self._shift_and_log_scale(y_a)
        if log_scale is None:
            return tf.concat([y_a, y_b - shift], axis=-1), tf.zeros([batch_size(y)])
        x_b = y_b * tf.exp(-log_scale) - shift
        return tf.concat([y_a, x_b], axis=-1), -sum_except_batch(log_scale)

    def reconstruct_and_backprop(self, y, dy, dlog_det):
        """`FlowLayer.reconstruct_and_backprop` with one evaluation of NN(y_a) (see module)."""
        n_a = self.n_a
        x_a, y_b = split_channels(y, n_a)
        dy_a, dy_b = split_channels(dy, n_a)
        variables = tf_variables(self.trainable_variables)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x_a)
            tape.watch(variables)
            shift, log_scale = self._shift_and_log_scale(x_a)
            if log_scale is None:
                x_b = tf.stop_gradient(y_b - shift)
                tape.watch(x_b)
                outputs, out_grads = [x_b + shift], [dy_b]
            else:
                x_b = tf.stop_gradient(y_b * tf.exp(-log_scale) - shift)
                tape.watch(x_b)
                outputs = [(x_b + shift) * tf.exp(log_scale), sum_except_batch(log_scale)]
                out_grads = [dy_b, dlog_det]
        grads = tape.gradient(
            outputs,
            [x_a, x_b] + variables,
            output_gradients=out_grads,
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        dx = tf.concat([dy_a + grads[0], grads[1]], axis=-1)
        return tf.concat([x_a, x_b], axis=-1), dx, list(zip(variables, grads[2:]))

    def get_config(self):
        return {
            **super().get_config(),
            'kind': self.kind,
            'network': serialize_network(self.network),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**{**config, 'network': deserialize_network(config.get('network'))})
