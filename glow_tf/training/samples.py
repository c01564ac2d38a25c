"""Sample grids at the paper's temperatures (rank 0), as PNG files and TensorBoard images.

Samples come from `glow_tf.tools.trained.InMemoryModel` with the run's seed, so a grid written
during training shows the same images that `sample.py --seed SEED` draws from the saved checkpoint.
"""

import os

import numpy as np

from glow_tf.tools.images import save_png, tile_images
from glow_tf.tools.sampling import TEMPERATURES
from glow_tf.tools.trained import InMemoryModel


def write_sample_grids(
    model,
    outdir,
    tag,
    n_bits_x,
    image_size,
    n_classes=0,
    chunk=64,
    seed=0,
    temperatures=TEMPERATURES,
    logger=None,
    step=0,
):
    """One grid per temperature: `{outdir}/{tag}_t{T}.png` (10x10, or 4x4 above 64 px).

    Class-conditional models cycle the labels y = 0, 1, 2, ... through the grid. Returns the
    list of written paths.
    """
    rows = 10 if image_size <= 64 else 4
    n = rows * rows
    flow = InMemoryModel(model, n_bits_x=n_bits_x, batch_size=chunk)
    y = (np.arange(n) % n_classes).astype(np.int32) if n_classes else None
    paths = []
    for t in temperatures:
        grid = tile_images(flow.sample(n, float(t), seed, y), n_cols=rows)
        path = save_png(os.path.join(outdir, f'{tag}_t{t:.1f}.png'), grid)
        paths.append(path)
        if logger is not None:
            logger.image(f'samples/T={t:.1f}', step, grid)
    return paths
