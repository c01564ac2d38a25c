"""Training-time augmentation: the original's `--dal` levels.

openai/glow augmented MNIST and CIFAR-10 with Keras's `ImageDataGenerator` and nothing else:

    problem   --dal 0   --dal 1                    --dal 2
    mnist     none      shifts up to 10% of H, W   shifts only (as --dal 1)
    cifar10   none      shifts up to 10% of H, W   shifts, horizontal flips, rotation up to 15
                                                   degrees, zoom 0.9-1.1, shear up to 0.02 degrees
    others    none      none                       none (the TFRecord problems had none)

Each problem's levels are its record's `augmentation` (`glow_tf.data.problems`, which also has
`augmentation_for(problem, level)`).

Each image is resampled at the affine map of its output coordinates p (pixel centres, about the
image centre c), bilinearly, with the nearest edge pixel outside the image (Keras's
fill_mode='nearest'), and floored back to uint8 as the original did:

    p_in = c + R(θ) · Shear(φ) · diag(z_x, z_y) · (p - c) + (t_x, t_y)

with t ~ U(-0.1, 0.1)·(W, H), θ ~ U(-15°, 15°), z ~ U(0.9, 1.1), φ ~ U(-0.02°, 0.02°), then a
horizontal flip with probability 1/2. The draws are stateless functions of a seed pair, which the
trainer derives from (seed, epoch, rank, step), so a resumed run sees the same augmented batches.
Labels are unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Augmentation:
    """One level's random transformations (fractions of the size, degrees, zoom range)."""

    shift: float = 0.0
    flip: bool = False
    rotation: float = 0.0
    zoom: float = 0.0
    shear: float = 0.0

    @property
    def active(self) -> bool:
        return bool(self.shift or self.flip or self.rotation or self.zoom or self.shear)

    def describe(self) -> str:
        if not self.active:
            return 'none'
        parts = [f'shifts up to {self.shift:.0%}'] if self.shift else []
        parts += ['horizontal flips'] if self.flip else []
        parts += [f'rotation up to {self.rotation:g} degrees'] if self.rotation else []
        parts += [f'zoom {1 - self.zoom:g}-{1 + self.zoom:g}'] if self.zoom else []
        parts += [f'shear up to {self.shear:g} degrees'] if self.shear else []
        return ', '.join(parts)


NONE = Augmentation()
SHIFTS = Augmentation(shift=0.1)
CIFAR_FULL = Augmentation(shift=0.1, flip=True, rotation=15.0, zoom=0.1, shear=0.02)


def augment(x, aug: Augmentation, seed_pair):
    """Augmented copy of a uint8 batch [B, H, W, C] (module docstring); `seed_pair`: int64 [2]."""
    import tensorflow as tf

    if not aug.active:
        return x
    batch = tf.shape(x)[0]
    height, width = int(x.shape[1]), int(x.shape[2])
    u = tf.random.stateless_uniform([batch, 7], seed=seed_pair, minval=-1.0, maxval=1.0)
    t_x, t_y = u[:, 0] * aug.shift * width, u[:, 1] * aug.shift * height
    theta = u[:, 2] * aug.rotation * (math.pi / 180.0)
    shear = u[:, 3] * aug.shear * (math.pi / 180.0)
    z_x, z_y = 1.0 + u[:, 4] * aug.zoom, 1.0 + u[:, 5] * aug.zoom
    cos, sin = tf.cos(theta), tf.sin(theta)
    # A = R(θ) · [[1, -sin φ], [0, cos φ]] · diag(z_x, z_y), acting on (x = column, y = row)
    a00, a01 = cos * z_x, (-cos * tf.sin(shear) - sin * tf.cos(shear)) * z_y
    a10, a11 = sin * z_x, (-sin * tf.sin(shear) + cos * tf.cos(shear)) * z_y
    c_x, c_y = (width - 1) / 2.0, (height - 1) / 2.0
    transforms = tf.stack(
        [
            a00,
            a01,
            c_x + t_x - a00 * c_x - a01 * c_y,
            a10,
            a11,
            c_y + t_y - a10 * c_x - a11 * c_y,
            tf.zeros_like(a00),
            tf.zeros_like(a00),
        ],
        axis=1,
    )
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.cast(x, tf.float32),
        transforms=transforms,
        output_shape=tf.constant([height, width], tf.int32),
        fill_value=0.0,
        interpolation='BILINEAR',
        fill_mode='NEAREST',
    )
    if aug.flip:
        out = tf.where((u[:, 6] < 0.0)[:, None, None, None], tf.reverse(out, axis=[2]), out)
    # floor, as the original's x_to_uint8 (+ a hair against 254.99999 from the interpolation)
    return tf.cast(tf.clip_by_value(tf.floor(out + 1e-3), 0.0, 255.0), tf.uint8)
