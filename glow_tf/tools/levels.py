"""Level-wise latents: the level numbering users see, level masks, variations of a face.

Levels. A Glow with L levels encodes an image to L latents ε_1..ε_L. Users number them 1..L
from the finest to the coarsest:

    level 1      the first latent factored out (largest spatial size: fine detail, texture)
    ...
    level L      the top latent under the learned prior (smallest spatial size: the coarse
                 layout of the face: pose, face shape, lighting)

Level l is `model.latent_shapes[l - 1]` and array `eps_{l-1}` of a latents .npz
(`glow_tf.tools.manipulation.save_latents`). For a 64x64x3 model with 4 levels these are
32x32x6, 16x16x12, 8x8x24 and 4x4x96.

Variations. Variation i of a face z at temperature T with seed s keeps the chosen levels of z
and resamples the others, with the noise `sample.py --seed s` draws for image i
(`glow_tf.model.latents.block_latents`):

    ε_l(variation i) = ε_l(z)                 for l in keep   (the same float32 values)
    ε_l(variation i) = T · N_l(s, i)          otherwise

so variations are deterministic for (seed, i, T), and variation i at T = 0 keeps the kept levels
and sets the others to zero (their mode). Level-restricted edits add α · direction only on the
chosen levels (`glow_tf.tools.manipulation.edit(..., levels=...)`); both replace entries with
`np.where`, so the other levels are bit-identical to the input's latents.

All arrays here are packed latents [..., H, W, C] (`glow_tf.model.latents.pack_latents`).
"""

import numpy as np

from glow_tf.errors import InputError
from glow_tf.model.latents import block_latents, pack_latents


def level_names(latent_shapes):
    """['level 1 (32x32x6)', ...]: how the tools name each level, finest first."""
    return [
        f"level {i + 1} ({'x'.join(str(int(d)) for d in s)})" for i, s in enumerate(latent_shapes)
    ]


def check_levels(levels, n_levels, what='levels', allow_empty=False):
    """`levels` (ints, 1 = finest .. n_levels = coarsest) -> a sorted tuple without repeats.

    Raises InputError naming `what` for anything else (bools, floats, out of range, empty)."""
    if isinstance(levels, (str, bytes)) or not hasattr(levels, '__iter__'):
        raise InputError(
            f"{what} must be a list of level numbers 1..{n_levels} (1 = finest), got {levels!r:.60}"
        )
    out = set()
    for level in levels:
        if isinstance(level, (bool, np.bool_)) or not isinstance(level, (int, np.integer)):
            raise InputError(f"{what}: level numbers are integers, got {level!r:.40}")
        if not 1 <= int(level) <= n_levels:
            raise InputError(
                f"{what}: level {int(level)} does not exist; this model has levels "
                f"1..{n_levels} (1 = finest, {n_levels} = coarsest)"
            )
        out.add(int(level))
    if not out and not allow_empty:
        raise InputError(f"{what}: give at least one level (1..{n_levels})")
    return tuple(sorted(out))


def level_mask(latent_shapes, image_shape, levels):
    """bool [H, W, C]: True where the packed latent holds one of `levels` (1-based)."""
    levels = check_levels(levels, len(latent_shapes), allow_empty=True)
    parts = [np.full(int(np.prod(s)), (i + 1) in levels, bool) for i, s in enumerate(latent_shapes)]
    return np.concatenate(parts).reshape(tuple(image_shape))


def variation_latents(z, latent_shapes, keep, n, temperature, seed):
    """Packed latents [n, H, W, C] of n variations of one face z [H, W, C] (module docstring):
    the `keep` levels are z's own values, the others T · N(seed, i) for i = 0..n-1."""
    z = np.asarray(z, np.float32)
    keep = check_levels(keep, len(latent_shapes), 'keep levels', allow_empty=True)
    if int(n) < 1:
        raise InputError(f"number of variations must be >= 1, got {n}")
    drawn = pack_latents(
        block_latents(latent_shapes, int(seed), 0, int(n), float(temperature)), z.shape
    ).numpy()
    return np.where(level_mask(latent_shapes, z.shape, keep), z[None], drawn)


def variations(flow, images, keep, n, temperature, seed, y=None):
    """uint8 images [N, H, W, C] -> uint8 [N, n, H, W, C]: n variations of each (same seed for
    every image, so column i resamples the same noise). `flow`: a
    `glow_tf.tools.trained.TrainedModel`."""
    z = flow.encode(images, y)
    zs = np.stack(
        [variation_latents(zi, flow.latent_shapes, keep, n, temperature, seed) for zi in z]
    )
    yy = None if y is None else np.repeat(np.asarray(y, np.int32).reshape(-1), int(n))
    out = flow.decode(zs.reshape(-1, *z.shape[1:]), yy)
    return out.reshape(len(images), int(n), *out.shape[1:])
