"""Fixed channel permutations: the paper's ablation baselines for the 1x1 convolution (section 4.1).

reverse:  y = x[..., ::-1]           (RealNVP's alternating order)
shuffle:  y = x[..., perm]           (a fixed random permutation, drawn once from `seed`)
log-det = 0 (a permutation matrix has |det| = 1)
"""

import keras
import numpy as np
import tensorflow as tf

from glow_tf.flows.base import FlowLayer, batch_size
from glow_tf.flows.terms import FORWARD, INVERSE, WeightTerms


@keras.saving.register_keras_serializable(package='glow_tf')
class ChannelPermutation(WeightTerms, FlowLayer):
    """Permute channels by a fixed order. Input/output: [B, H, W, C].

    Args:
        kind: 'reverse' or 'shuffle'.
        seed: seed of the shuffled order (unused by 'reverse').
    """

    KINDS = ('reverse', 'shuffle')

    def __init__(self, kind='reverse', seed=0, **kwargs):
        super().__init__(**kwargs)
        if kind not in self.KINDS:
            raise ValueError(f"ChannelPermutation kind must be one of {self.KINDS}, got {kind!r}")
        self.kind = kind
        self.seed = int(seed)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        if self.kind == 'reverse':
            perm = np.arange(channels)[::-1]
        else:
            perm = np.random.default_rng(self.seed).permutation(channels)
        self.perm = tf.constant(perm, tf.int32)
        self.inverse_perm = tf.constant(np.argsort(perm), tf.int32)

    def weight_values(self):
        """{'perm', 'inverse_perm'}: the fixed orders, int32 [C] (`glow_tf.flows.terms`)."""
        return {'perm': self.perm, 'inverse_perm': self.inverse_perm}

    def weight_terms(self, values, direction, input_shape):
        """The order that `direction` gathers the channels in."""
        return values['perm'] if direction == FORWARD else values['inverse_perm']

    def _forward(self, x):
        order = self.current_terms(FORWARD, x.shape)
        return tf.gather(x, order, axis=-1), tf.zeros([batch_size(x)])

    def _inverse(self, y):
        order = self.current_terms(INVERSE, y.shape)
        return tf.gather(y, order, axis=-1), tf.zeros([batch_size(y)])

    def get_config(self):
        return {**super().get_config(), 'kind': self.kind, 'seed': self.seed}
