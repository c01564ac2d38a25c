"""Sampling from a trained Glow: images at several temperatures, and grids of them.

    sample_images(model, n, temperatures, seed) -> uint8 [T, n, H, W, C]
    sample_grid(model, temperatures, n_per_row, seed) -> one uint8 grid, a row per temperature

The same n base latents are used at every temperature (`glow_tf.model.latents`: image i of a
seed always draws the same ε), so a grid shows the same samples at each T. `model` is a
`glow_tf.Glow` or a `glow_tf.tools.trained.TrainedModel` (e.g. from `load_trained_model`).
"""

import numpy as np

from glow_tf.tools.images import tile_images
from glow_tf.tools.trained import as_trained_model

# the paper's sample temperatures (figure 8): one row each in a sample grid
TEMPERATURES = (0.0, 0.5, 0.7, 0.8, 0.9, 1.0)


def sample_images(
    model, n, temperatures=(1.0,), seed=0, y=None, n_bits_x=8, batch_size=64, timings=None
):
    """uint8 [len(temperatures), n, H, W, C]: the same n base latents at each temperature."""
    flow = as_trained_model(model, n_bits_x, batch_size)
    return np.stack([flow.sample(n, float(t), seed, y, timings) for t in temperatures])


def sample_grid(
    model,
    temperatures=TEMPERATURES,
    n_per_row=8,
    seed=0,
    y=None,
    n_bits_x=8,
    batch_size=64,
):
    """One uint8 grid image: a row of `n_per_row` samples per temperature (same base latents
    in every row). `model`: a glow_tf.Glow or a TrainedModel. Class-conditional: y (labels
    [n_per_row] or one int) is required."""
    images = sample_images(model, n_per_row, temperatures, seed, y, n_bits_x, batch_size)
    return tile_images(images.reshape(-1, *images.shape[2:]), n_cols=n_per_row)


def random_seed():
    """A fresh seed (printed by the tools so a run can be repeated)."""
    return int(np.random.default_rng().integers(0, 2**31 - 1))
