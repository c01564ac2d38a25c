"""Squeeze: trade spatial size for channels (RealNVP's multi-scale architecture, paper figure 2b).

    squeeze:   [B, H, W, C] -> [B, H/2, W/2, 4C]     each 2x2 block becomes 4 channels
    unsqueeze: the exact inverse
    log-det = 0 (a reshape/transpose)

Channel order follows the original code: output channel 4c + 2i + j holds x[2h+i, 2w+j, c], so
the four sub-pixels of one input channel are adjacent.

`Squeeze` is the same map as a flow layer (forward = squeeze, inverse = unsqueeze, log-det 0), so a
level is a chain of flow layers; `squeeze2d` / `unsqueeze2d` are the functions it applies.
"""

import keras
import tensorflow as tf

from glow_tf.flows.base import FlowLayer, batch_size


def squeeze2d(x, factor=2):
    """[B, H, W, C] -> [B, H/f, W/f, C·f²]."""
    _, height, width, channels = x.shape
    if height % factor or width % factor:
        raise ValueError(f"squeeze needs H and W divisible by {factor}, got shape {x.shape}")
    b = batch_size(x)
    x = tf.reshape(x, [b, height // factor, factor, width // factor, factor, channels])
    x = tf.transpose(x, [0, 1, 3, 5, 2, 4])
    return tf.reshape(x, [b, height // factor, width // factor, channels * factor * factor])


def unsqueeze2d(x, factor=2):
    """[B, H, W, C] -> [B, H·f, W·f, C/f²]; the inverse of `squeeze2d`."""
    _, height, width, channels = x.shape
    if channels % (factor * factor):
        raise ValueError(f"unsqueeze needs C divisible by {factor * factor}, got shape {x.shape}")
    b = batch_size(x)
    c = channels // (factor * factor)
    x = tf.reshape(x, [b, height, width, c, factor, factor])
    x = tf.transpose(x, [0, 1, 4, 2, 5, 3])
    return tf.reshape(x, [b, height * factor, width * factor, c])


@keras.saving.register_keras_serializable(package='glow_tf')
class Squeeze(FlowLayer):
    """[B, H, W, C] -> [B, H/f, W/f, C·f²] and back; log-det 0 (a permutation of the entries).

    Args:
        factor: f, the side of the blocks that become channels (2 in Glow).
    """

    def __init__(self, factor=2, **kwargs):
        super().__init__(**kwargs)
        self.factor = int(factor)

    def _forward(self, x):
        return squeeze2d(x, self.factor), tf.zeros([batch_size(x)])

    def _inverse(self, y):
        return unsqueeze2d(y, self.factor), tf.zeros([batch_size(y)])

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        f = self.factor
        return (b, h // f, w // f, c * f * f), (b,)

    def get_config(self):
        return {**super().get_config(), 'factor': self.factor}
