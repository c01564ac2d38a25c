"""The paper's networks as factories for the flow layers (`glow_tf.flows.networks`).

    CouplingNetworks(width, seed, edge_bias)(in_channels, out_channels, name) -> CouplingNetwork
    ZeroConvs(edge_bias)(in_channels, out_channels, name)                     -> ZeroConv2D
    ZeroDenses()(in_features, units, name)                                     -> ZeroDense

`glow_tf.model.level.Level` and `glow_tf.Glow` build them from the model's width, seeds and edge
bias and pass them down; each is a registered Keras-serialisable object, so a layer holding one
saves and loads.
"""

import keras

from glow_tf.nets.coupling_net import CouplingNetwork
from glow_tf.nets.zero_conv import ZeroConv2D, ZeroDense


class _Factory:
    """A factory whose constructor arguments are its config."""

    def get_config(self):
        return dict(self._config)

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ', '.join(f'{k}={v!r}' for k, v in self._config.items())
        return f'{type(self).__name__}({args})'

    def __eq__(self, other):
        return type(self) is type(other) and self._config == other._config

    __hash__ = None


@keras.saving.register_keras_serializable(package='glow_tf')
class CouplingNetworks(_Factory):
    """NN() of a coupling layer (`CouplingNetwork`) for any channel counts.

    Args:
        width: hidden channels (the paper's 512).
        seed: initialiser seed of the two hidden kernels.
        edge_bias: the original's border channel in both 3x3 convolutions.
    """

    def __init__(self, width=512, seed=0, edge_bias=True):
        CouplingNetwork.check_arguments(width)
        self._config = {'width': int(width), 'seed': int(seed), 'edge_bias': bool(edge_bias)}

    def __call__(self, in_channels, out_channels, name=None):
        c = self._config
        return CouplingNetwork(
            c['width'], out_channels, seed=c['seed'], edge_bias=c['edge_bias'], name=name
        )


@keras.saving.register_keras_serializable(package='glow_tf')
class ZeroConvs(_Factory):
    """A zero-initialised 3x3 convolution (`ZeroConv2D`): the split priors' and learntop's network.

    Args:
        edge_bias: the original's border channel.
    """

    def __init__(self, edge_bias=True):
        self._config = {'edge_bias': bool(edge_bias)}

    def __call__(self, in_channels, out_channels, name=None):
        return ZeroConv2D(out_channels, edge_bias=self._config['edge_bias'], name=name)


@keras.saving.register_keras_serializable(package='glow_tf')
class ZeroDenses(_Factory):
    """A zero-initialised dense layer (`ZeroDense`): the class-conditional prior's label map and
    class head."""

    def __init__(self):
        self._config = {}

    def __call__(self, in_features, units, name=None):
        return ZeroDense(units, name=name)
