"""Image and array files for the tools: PNG grids, input images at the model's size, .npz files.

    tile_images(uint8 [N, H, W, C], n_cols) -> uint8 grid [rows*H, n_cols*W, C]   (row-major)
    save_png / save_image_grid / save_images    PNG files, written atomically
    list_image_files(paths) -> files;  load_images(files, (H, W, C)) -> uint8 [N, H, W, C]
    quantise(uint8 images, n_bits_x)  what an n_bits_x model can represent of them:
                                      x -> floor(x / 2^(8 - n_bits_x)) * 2^(8 - n_bits_x)
    save_npz(path, arrays)            an .npz written atomically

Input images are ordinary image files of any size: centre-cropped to a square and resized to the
model's resolution (`glow_tf.data.load_image_file`). Problems raise `InputError` naming the file.
"""

import math
import os

import numpy as np

from glow_tf.errors import InputError
from glow_tf.fileio import atomic_write_bytes


# ---------------------------------------------------------------------------------------------
# grids and PNG files
# ---------------------------------------------------------------------------------------------
def tile_images(images, n_cols=None, pad=0, pad_value=255):
    """uint8 [N, H, W, C] -> one uint8 grid [rows*H, n_cols*W, C] (row-major; blanks are black).

    n_cols: default ceil(sqrt(N)). pad: pixels of `pad_value` between tiles.
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"expected images [N, H, W, C] with N > 0, got shape {images.shape}")
    n, h, w, c = images.shape
    n_cols = int(n_cols) if n_cols else int(math.ceil(math.sqrt(n)))
    n_cols = max(1, min(n_cols, n))
    rows = int(math.ceil(n / n_cols))
    grid = np.full(
        (rows * h + (rows - 1) * pad, n_cols * w + (n_cols - 1) * pad, c), pad_value, np.uint8
    )
    for i in range(rows * n_cols):
        r, col = divmod(i, n_cols)
        top, left = r * (h + pad), col * (w + pad)
        grid[top : top + h, left : left + w] = images[i] if i < n else 0
    return grid


def save_png(path, image):
    """Write one uint8 image [H, W, C] (C = 1 or 3) atomically; creates parent directories."""
    from PIL import Image

    image = np.asarray(image, np.uint8)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    path = os.fspath(path)
    atomic_write_bytes(path, lambda f: Image.fromarray(image).save(f, format='PNG'))
    return path


def save_image_grid(images, path, n_cols=None, pad=0):
    """Save uint8 images [N, H, W, C] as one PNG grid (n_cols default ceil(sqrt(N))).
    Returns the grid."""
    grid = tile_images(images, n_cols, pad)
    save_png(path, grid)
    return grid


def save_images(images, out_dir, prefix='image'):
    """Save each uint8 image [N, H, W, C] as `out_dir/{prefix}_{i:04d}.png`. Returns the paths."""
    os.makedirs(out_dir, exist_ok=True)
    return [
        save_png(os.path.join(out_dir, f'{prefix}_{i:04d}.png'), im) for i, im in enumerate(images)
    ]


def save_npz(path, arrays):
    """Write the dict of numpy `arrays` as one .npz file, atomically."""
    atomic_write_bytes(os.fspath(path), lambda f: np.savez(f, **arrays))
    return path


# ---------------------------------------------------------------------------------------------
# input images
# ---------------------------------------------------------------------------------------------
def list_image_files(paths):
    """Expand directories (sorted image files, non-recursive) and keep files as given."""
    from glow_tf.data.images import is_image_file

    out = []
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            files = sorted(f for f in os.listdir(p) if is_image_file(f))
            if not files:
                raise InputError(f"{p}: directory holds no image files")
            out += [os.path.join(p, f) for f in files]
        else:
            out.append(p)
    if not out:
        raise InputError("no input images given")
    return out


def load_images(paths, image_shape):
    """Image files -> uint8 [N, H, W, C] at the model's size (centre crop + resize)."""
    from glow_tf.data import DataError, load_image_file

    h, w, c = image_shape
    if h != w:
        raise InputError(f"model image shape {tuple(image_shape)} is not square")
    out = []
    for p in paths:
        try:
            img = load_image_file(p, int(h))
        except DataError as e:
            raise InputError(f"cannot use input image: {e}") from None
        if c == 1:
            img = np.round(img.astype(np.float32).mean(-1, keepdims=True)).astype(np.uint8)
        out.append(img)
    return np.stack(out)


def quantise(images, n_bits_x):
    """What the model can represent of uint8 images: each value reduced to its n_bits_x bin."""
    images = np.asarray(images, np.uint8)
    if n_bits_x >= 8:
        return images
    step = 2 ** (8 - n_bits_x)
    return (images // step * step).astype(np.uint8)
