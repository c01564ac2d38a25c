"""One step of flow (paper figure 2a): ActNorm -> channel mixing -> coupling.

    y = coupling(mix(actnorm(x))),   log-det = sum of the three log-dets

`permutation` is '1x1' (invertible 1x1 convolution, optionally LU-decomposed), 'reverse' or
'shuffle' (the paper's section 4.1 ablation); `coupling` is 'additive' or 'affine'.
"""

import keras

from glow_tf.errors import ArgumentError
from glow_tf.flows.actnorm import ActNorm
from glow_tf.flows.base import FlowLayer, chain_forward, chain_inverse
from glow_tf.flows.coupling import Coupling
from glow_tf.flows.invertible_conv import InvertibleConv1x1
from glow_tf.flows.networks import deserialize_network, serialize_network
from glow_tf.flows.permutation import ChannelPermutation

PERMUTATIONS = ChannelPermutation.KINDS + ('1x1',)  # 'reverse', 'shuffle', '1x1'


@keras.saving.register_keras_serializable(package='glow_tf')
class FlowStep(FlowLayer):
    """Input/output: [B, H, W, C] (C >= 2).

    `flow_layers` (also `invertible_parts()`) are the three layers in forward order; the
    attribute name is part of the `.keras` weight layout, so it stays.

    Args:
        network: the coupling's NN() (`Coupling`): a Keras layer or a factory (in_channels,
            out_channels, name) -> layer, e.g. `glow_tf.nets.CouplingNetworks(width=512)`.
        permutation: '1x1', 'reverse' or 'shuffle' (the model's `flow_permutation`; checked here).
        coupling: 'additive' or 'affine' (checked by `Coupling`).
        lu_decomposed: LU-parameterised 1x1 convolution.
        seed: initialiser / permutation seed of the 1x1 convolution or permutation.
    """

    def __init__(
        self,
        network=None,
        permutation='1x1',
        coupling='affine',
        lu_decomposed=False,
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        FlowStep.check_arguments(permutation)
        self.permutation, self.coupling_kind = permutation, coupling
        self.lu_decomposed, self.seed = bool(lu_decomposed), int(seed)
        self.actnorm = ActNorm(name='actnorm')
        if permutation == '1x1':
            self.mix = InvertibleConv1x1(lu_decomposed=lu_decomposed, seed=seed, name='invconv')
        else:
            self.mix = ChannelPermutation(permutation, seed=seed, name='permute')
        self.coupling = Coupling(coupling, network=network, name='coupling')
        self.flow_layers = (self.actnorm, self.mix, self.coupling)

    @staticmethod
    def check_arguments(permutation):
        """ArgumentError('flow_permutation') unless `permutation` is one of PERMUTATIONS."""
        if permutation not in PERMUTATIONS:
            raise ArgumentError(
                'flow_permutation',
                f"flow_permutation must be one of {PERMUTATIONS}, got {permutation!r}",
            )

    def build(self, input_shape):
        for layer in self.flow_layers:
            layer.build(input_shape)

    def invertible_parts(self):
        """ActNorm, the 1x1 convolution / permutation and the coupling, in forward order."""
        return list(self.flow_layers)

    def actnorm_layers(self):
        """The step's ActNorm and the two inside its coupling network, in forward order."""
        return [self.actnorm] + self.coupling.actnorm_layers()

    def _forward(self, x):
        return chain_forward(self.flow_layers, x)

    def _inverse(self, y):
        return chain_inverse(self.flow_layers, y)

    def get_config(self):
        return {
            **super().get_config(),
            'network': serialize_network(self.coupling.network),
            'permutation': self.permutation,
            'coupling': self.coupling_kind,
            'lu_decomposed': self.lu_decomposed,
            'seed': self.seed,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**{**config, 'network': deserialize_network(config.get('network'))})
