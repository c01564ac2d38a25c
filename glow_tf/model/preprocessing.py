"""Quantisation-aware pre/post-processing (paper section 5; the original code's `preprocess`).

    x = floor(x_uint8 / 2^(8 - n_bits)) / n_bins - 1/2 + u,   u ~ U(0, 1/n_bins),  n_bins = 2^n_bits

A density p on the continuous x gives the discrete image probability P ≈ p(x) · n_bins^-D, so

    bits/dim = -(log p(x) - D · log n_bins) / (D · log 2).
"""

import math

import tensorflow as tf

from glow_tf.errors import ArgumentError


def check_n_bits(n_bits_x):
    """n_bins = 2**n_bits_x; ArgumentError('n_bits_x') unless it is an integer in 1..8."""
    if isinstance(n_bits_x, bool) or not isinstance(n_bits_x, int) or not 1 <= n_bits_x <= 8:
        raise ArgumentError('n_bits_x', f"n_bits_x must be an integer in 1..8, got {n_bits_x!r}")
    return 2**n_bits_x


def preprocess(x_uint8, n_bits_x=8, noise=True, seed=None):
    """uint8 images [B, H, W, C] -> float32 in [-0.5, 0.5) plus dequantisation noise u / n_bins.

    noise: True draws u ~ U[0, 1) (statelessly from `seed`, shape [2] int, when given); False
    adds none; a float tensor shaped like the images is used as the draw u itself (so a trainer
    can make the noise a function of step and rank, and reproduce it on resume).
    """
    n_bins = check_n_bits(n_bits_x)
    x = tf.cast(x_uint8, tf.float32)
    if n_bits_x < 8:
        x = tf.floor(x / 2 ** (8 - n_bits_x))
    x = x / n_bins - 0.5
    if noise is False or noise is None:
        return x
    if noise is True:
        shape = tf.shape(x)
        noise = (
            tf.random.stateless_uniform(shape, seed)
            if seed is not None
            else tf.random.uniform(shape)
        )
    return x + tf.cast(noise, tf.float32) / n_bins


def postprocess(x, n_bits_x=8):
    """float images in [-0.5, 0.5] -> uint8 [B, H, W, C] (the bin each value falls in)."""
    n_bins = check_n_bits(n_bits_x)
    x = tf.floor((x + 0.5) * n_bins) * (256.0 / n_bins)
    return tf.cast(tf.clip_by_value(x, 0, 255), tf.uint8)


def nats_to_bits_per_dim(log_prob, n_dims, n_bits_x=8):
    """Discrete bits per sub-pixel from the continuous log-density (nats) of dequantised data."""
    n_bins = check_n_bits(n_bits_x)
    return -(log_prob - n_dims * math.log(n_bins)) / (n_dims * math.log(2.0))
