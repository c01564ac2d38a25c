"""Squeeze: trade spatial size for channels (RealNVP's multi-scale architecture, paper figure 2b).

    squeeze:   [B, H, W, C] -> [B, H/2, W/2, 4C]     each 2x2 block becomes 4 channels
    unsqueeze: the exact inverse
    log-det = 0 (a reshape/transpose)

Channel order follows the original code: output channel 4c + 2i + j holds x[2h+i, 2w+j, c], so
the four sub-pixels of one input channel are adjacent.
"""

import tensorflow as tf


def squeeze2d(x, factor=2):
    """[B, H, W, C] -> [B, H/f, W/f, C·f²]."""
    _, height, width, channels = x.shape
    if height % factor or width % factor:
        raise ValueError(f"squeeze needs H and W divisible by {factor}, got shape {x.shape}")
    b = tf.shape(x)[0]
    x = tf.reshape(x, [b, height // factor, factor, width // factor, factor, channels])
    x = tf.transpose(x, [0, 1, 3, 5, 2, 4])
    return tf.reshape(x, [b, height // factor, width // factor, channels * factor * factor])


def unsqueeze2d(x, factor=2):
    """[B, H, W, C] -> [B, H·f, W·f, C/f²]; the inverse of `squeeze2d`."""
    _, height, width, channels = x.shape
    if channels % (factor * factor):
        raise ValueError(f"unsqueeze needs C divisible by {factor * factor}, got shape {x.shape}")
    b = tf.shape(x)[0]
    c = channels // (factor * factor)
    x = tf.reshape(x, [b, height, width, c, factor, factor])
    x = tf.transpose(x, [0, 1, 4, 2, 5, 3])
    return tf.reshape(x, [b, height * factor, width * factor, c])
