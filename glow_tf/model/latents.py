"""The latent random scheme: reproducible per-level latents, and packing them into one tensor.

`Glow.sample(n, T, seed=s)`, `sample.py --seed s`, the training sample grids and an exported
SavedModel's `sample` all draw with this scheme, so they show the same images for the same seed.

Image i of a run with seed s draws its latents from counter-based (stateless) random numbers
keyed by (s, block, level), in fixed blocks of `LATENT_BLOCK` images, so the images depend only
on (seed, i, temperature) -- not on the batch size, on how many images are drawn, or on whether
the checkpoint or an exported SavedModel decodes them:

    eps_l[i] = T * N(0, I)   drawn by
        tf.random.stateless_normal([BLOCK, *latent_shape_l],
                                   seed=[s, (i // BLOCK) * n_levels + l])[i % BLOCK]

Several temperatures reuse the same base noise scaled by T, so a grid shows the same samples
at each temperature (one block of rows per temperature).

"Packed latents": the per-level ε_1..ε_L flattened, concatenated and reshaped to the image shape
[B, H, W, C] (`pack_latents`; `unpack_latents` is its inverse): the TFP view's base sample
(`glow_tf.model.bijector`) and what the tools encode images to.
"""

import numpy as np
import tensorflow as tf

from glow_tf.flows.base import batch_size

LATENT_BLOCK = 16


def block_latents(latent_shapes, seed, start, stop, temperature=1.0):
    """Per-level latents of images [start, stop) for `seed` (see the module docstring).

    Works eagerly and inside tf.function (seed/start/stop may be tensors). Returns a list of
    float32 tensors [stop - start, *latent_shapes[l]].
    """
    n_levels = len(latent_shapes)
    seed = tf.cast(seed, tf.int64)
    start, stop = tf.cast(start, tf.int64), tf.cast(stop, tf.int64)
    first = start // LATENT_BLOCK
    last = tf.maximum(stop - 1, start) // LATENT_BLOCK
    blocks = tf.range(first, last + 1)
    offset = start - first * LATENT_BLOCK
    count = stop - start
    out = []
    for level, shape in enumerate(latent_shapes):
        shape = [int(d) for d in shape]

        def draw(b, level=level, shape=shape):
            key = tf.stack([seed, b * n_levels + level])
            return tf.random.stateless_normal([LATENT_BLOCK] + shape, seed=key)

        drawn = tf.map_fn(
            draw, blocks, fn_output_signature=tf.TensorSpec([LATENT_BLOCK] + shape, tf.float32)
        )
        drawn = tf.reshape(drawn, [-1] + shape)[offset : offset + count]
        out.append(drawn * tf.cast(temperature, tf.float32))
    return out


def pack_latents(eps_list, image_shape):
    """Per-level latents [B, *latent_shape_l] -> packed latents [B, *image_shape]."""
    flat = [tf.reshape(e, [batch_size(e), -1]) for e in eps_list]
    return tf.reshape(tf.concat(flat, axis=1), [-1, *image_shape])


def unpack_latents(latents, latent_shapes):
    """Packed latents [B, H, W, C] -> the list of per-level latents [B, *latent_shapes[l]]."""
    flat = tf.reshape(latents, [batch_size(latents), -1])
    sizes = [int(np.prod(s)) for s in latent_shapes]
    return [
        tf.reshape(part, [-1, *shape])
        for part, shape in zip(tf.split(flat, sizes, axis=1), latent_shapes)
    ]
