"""Split with a learned conditional prior (RealNVP's factor-out, paper figure 2b).

    z_1, z_2 = split(x)                              (first / second half of the channels)
    (μ, log σ) = NN(z_1)                             p(z_2 | z_1) = N(μ, σ²)
    ε = (z_2 - μ) / σ                                 standardised latent of this level
    log-det = -sum(log σ)

so log p(z_2 | z_1) = log N(ε; 0, I) + log-det. Written this way the whole model is one bijection
from the image to standard-normal ε's, which is what the TFP view needs. Sampling at temperature
T draws ε ~ N(0, T² I). NN() is injected (`glow_tf.flows.networks`); the model passes the
original's zero-initialised 3x3 convolution (`glow_tf.nets.factories.ZeroConvs`), so every split
prior starts at N(0, I).
"""

import keras
import tensorflow as tf

from glow_tf.flows.base import interleaved_channels, split_channels, sum_except_batch
from glow_tf.flows.factor_out import FactorOut
from glow_tf.flows.networks import (
    check_network,
    deserialize_network,
    make_network,
    serialize_network,
)


@keras.saving.register_keras_serializable(package='glow_tf')
class Split(FactorOut):
    """Factor out half the channels (`FactorOut`): [B, H, W, C] -> z_1 [B, H, W, C//2],
    ε [B, H, W, C - C//2]. The label y of the contract is not used.

    Args:
        network: the prior's NN(): a Keras layer [.., C//2] -> [.., 2·(C - C//2)] (μ and log σ
            interleaved) or a factory (in_channels, out_channels, name) -> layer, e.g.
            `glow_tf.nets.ZeroConvs()`.
    """

    def __init__(self, network=None, **kwargs):
        super().__init__(**kwargs)
        self.network = check_network(network, 'network', 'Split')

    @staticmethod
    def kept_channels(channels):
        """C -> the channels of z_1 (the first half, rounded down); ε has the rest."""
        return int(channels) // 2

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.n_keep = Split.kept_channels(channels)
        n_out = 2 * (channels - self.n_keep)
        self.prior = make_network(self.network, self.n_keep, n_out, 'prior', input_shape)

    def _mean_log_scale(self, z1):
        h = self.prior(z1)
        return interleaved_channels(h)

    def _forward(self, x, y=None):
        """x -> (z_1, ε, fldj [B])."""
        z1, z2 = split_channels(x, self.n_keep)
        mean, log_scale = self._mean_log_scale(z1)
        eps = (z2 - mean) * tf.exp(-log_scale)
        return z1, eps, -sum_except_batch(log_scale)

    def _inverse(self, z1, eps, y=None):
        """(z_1, ε) -> (x, ildj [B])."""
        mean, log_scale = self._mean_log_scale(z1)
        z2 = mean + tf.exp(log_scale) * eps
        return tf.concat([z1, z2], axis=-1), sum_except_batch(log_scale)

    @staticmethod
    def _input_shape(z1, eps):
        return tuple(z1.shape[:-1]) + (z1.shape[-1] + eps.shape[-1],)

    def get_config(self):
        return {**super().get_config(), 'network': serialize_network(self.network)}

    @classmethod
    def from_config(cls, config):
        return cls(**{**config, 'network': deserialize_network(config.get('network'))})

    def compute_output_shape(self, input_shape):
        """[B, H, W, C] -> (z_1 [B, H, W, C//2], ε [B, H, W, C - C//2], fldj [B])."""
        *lead, channels = input_shape
        return (
            tuple(lead) + (channels // 2,),
            tuple(lead) + (channels - channels // 2,),
            (input_shape[0],),
        )
