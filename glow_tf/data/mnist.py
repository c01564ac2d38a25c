"""MNIST from the official IDX files (gzip or uncompressed).

Images are padded from 28x28 to 32x32 with two rows/columns of zeros on every side and the single
gray channel is replicated to 3 channels, exactly as the original Glow code did (it needs a
power-of-two size for its squeeze levels, and a 3-channel input like the other datasets). Bits/dim
is therefore measured over 32*32*3 sub-pixels, which is what the Glow paper's MNIST number uses.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from glow_tf.data.errors import describe

IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dimension

FILES = {
    'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
    'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'),
}


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == '.gz':
            with gzip.open(path, 'rb') as f:
                return f.read()
        return path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise describe(path, f'corrupt or truncated gzip file ({e})') from None
    except OSError as e:
        raise describe(path, f'cannot read file ({e})') from None


def read_idx(path: str | os.PathLike, expected_magic: int) -> np.ndarray:
    """Read an IDX file of unsigned bytes (``.gz`` or raw).

    Returns ``uint8 [n, rows, cols]`` for images (magic 2051) or ``uint8 [n]`` for labels (magic
    2049). Raises DataError naming the file on a bad magic number, a wrong size or a truncated file.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise describe(path, f'truncated IDX file: {len(raw)} bytes, no header')
    magic = struct.unpack('>I', raw[:4])[0]
    if magic != expected_magic:
        kind = 'images' if expected_magic == IMAGES_MAGIC else 'labels'
        raise describe(
            path,
            f'bad magic number {magic}, expected {expected_magic} (IDX {kind}, unsigned bytes)',
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise describe(path, 'truncated IDX header')
    dims = struct.unpack(f'>{ndim}I', raw[4:header])
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(raw) != expected:
        what = 'truncated' if len(raw) < expected else 'has trailing bytes'
        raise describe(
            path, f'IDX file {what}: {len(raw)} bytes, expected {expected} for shape {dims}'
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def find_file(data_dir: Path, stem: str) -> Path:
    """The gzip (preferred) or uncompressed IDX file ``stem`` in ``data_dir``; DataError if
    absent."""
    for name in (stem + '.gz', stem, stem.replace('-idx', '.idx')):
        if (data_dir / name).is_file():
            return data_dir / name
    raise describe(
        data_dir,
        f'missing MNIST file {stem}.gz (or uncompressed {stem}); '
        'run `python data/download.py mnist --dest DIR`',
    )


def load_mnist_split(data_dir: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Load one split as ``(uint8 [n, 32, 32, 3], int32 [n])``: zero-padded to 32x32, gray
    replicated."""
    data_dir = Path(data_dir)
    img_path, lab_path = (find_file(data_dir, s) for s in FILES[split])
    x = read_idx(img_path, IMAGES_MAGIC)
    y = read_idx(lab_path, LABELS_MAGIC)
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise describe(img_path, f'images have shape {x.shape[1:]}, expected 28x28')
    if y.shape[0] != x.shape[0]:
        raise describe(lab_path, f'{y.shape[0]} labels but {img_path.name} has {x.shape[0]} images')
    if y.size and y.max() > 9:
        bad = int(np.argmax(y > 9))
        raise describe(lab_path, f'label {int(y[bad])} at index {bad} is outside 0..9')
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)), mode='constant', constant_values=0)
    x = np.repeat(x[..., None], 3, axis=-1)
    return x, y.astype(np.int32)


def looks_like_mnist(d: Path) -> bool:
    """True if ``d`` holds the MNIST training images file."""
    return any((d / n).is_file() for n in ('train-images-idx3-ubyte.gz', 'train-images-idx3-ubyte'))
