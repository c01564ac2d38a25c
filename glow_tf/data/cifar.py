"""CIFAR-10 from the official "python version": the tarball or the extracted directory.

Each batch is a pickled dict with byte-string keys ``b'data'`` (uint8 ``[n, 3072]``, channel-major
RGB rows of a 32x32 image) and ``b'labels'`` (n ints in 0..9). Pickles are read with a restricted
unpickler that only allows the numpy array reconstruction functions, so a hostile file cannot run
code.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np

from glow_tf.data.errors import DataError, describe

TARBALL = 'cifar-10-python.tar.gz'
BATCH_DIR = 'cifar-10-batches-py'
TRAIN_BATCHES = tuple(f'data_batch_{i}' for i in range(1, 6))
TEST_BATCHES = ('test_batch',)
CLASS_NAMES = (
    'airplane',
    'automobile',
    'bird',
    'cat',
    'deer',
    'dog',
    'frog',
    'horse',
    'ship',
    'truck',
)

_ALLOWED = {
    ('numpy.core.multiarray', '_reconstruct'),
    ('numpy._core.multiarray', '_reconstruct'),
    ('numpy', 'ndarray'),
    ('numpy', 'dtype'),
    ('_codecs', 'encode'),
    ('numpy.core.numeric', '_frombuffer'),
    ('numpy._core.numeric', '_frombuffer'),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f'global {module}.{name} is not allowed in a CIFAR-10 batch')


def _unpickle(blob: bytes, where: str):
    try:
        return _RestrictedUnpickler(io.BytesIO(blob), encoding='bytes').load()
    except Exception as e:  # any unpickling failure is a bad file; name it
        raise DataError(
            f'{where}: not a readable CIFAR-10 python batch ({type(e).__name__}: {e})'
        ) from None


def parse_batch(blob: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Decode one pickled batch to ``(uint8 [n, 32, 32, 3], int32 [n])``; DataError naming
    ``where``."""
    d = _unpickle(blob, where)
    if not isinstance(d, dict):
        raise DataError(f'{where}: expected a pickled dict, found {type(d).__name__}')
    keys = {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}
    for k in ('data', 'labels'):
        if k not in keys:
            raise DataError(f"{where}: missing key b'{k}' (has {sorted(map(str, keys))})")
    data = np.asarray(keys['data'])
    labels = np.asarray(keys['labels'])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{where}: b'data' is {data.dtype} {data.shape}, expected uint8 [n, 3072]")
    if labels.ndim != 1 or labels.shape[0] != data.shape[0]:
        raise DataError(f"{where}: {labels.shape} labels for {data.shape[0]} images")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f'{where}: labels outside 0..9 (min {labels.min()}, max {labels.max()})')
    x = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x), labels.astype(np.int32)


def locate(data_dir: str | os.PathLike) -> Path:
    """The batch directory or tarball under ``data_dir``; DataError saying what was looked for."""
    d = Path(data_dir)
    if (d / 'data_batch_1').exists() or (d / 'test_batch').exists():
        return d
    if (d / BATCH_DIR).is_dir():
        return d / BATCH_DIR
    if d.is_file() and d.name.endswith(('.tar.gz', '.tgz')):
        return d
    if (d / TARBALL).is_file():
        return d / TARBALL
    raise describe(
        d,
        f'no CIFAR-10 data: expected {BATCH_DIR}/, {TARBALL} or data_batch_1..5 + test_batch '
        'here; run `python data/download.py cifar10 --dest DIR`',
    )


def _read_from_tar(tar_path: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    out = {}
    try:
        with tarfile.open(tar_path, 'r:*') as tar:
            for m in tar:
                base = m.name.rsplit('/', 1)[-1]
                if m.isfile() and base in names:
                    out[base] = tar.extractfile(m).read()
    except (tarfile.TarError, EOFError, OSError) as e:
        raise describe(tar_path, f'corrupt or truncated tarball ({e})') from None
    return out


def load_cifar10_split(data_dir: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Load ``split`` ('train' or 'test') as ``(uint8 [n, 32, 32, 3], int32 [n])`` in file order."""
    src = locate(data_dir)
    names = TRAIN_BATCHES if split == 'train' else TEST_BATCHES
    if src.is_file():
        blobs = _read_from_tar(src, names)
        where = {n: f'{src}:{BATCH_DIR}/{n}' for n in names}
    else:
        blobs, where = {}, {}
        for n in names:
            p = src / n
            where[n] = str(p)
            if p.is_file():
                blobs[n] = p.read_bytes()
    missing = [n for n in names if n not in blobs]
    if missing:
        raise describe(src, f'missing CIFAR-10 batch file(s) {", ".join(missing)}')
    xs, ys = zip(*(parse_batch(blobs[n], where[n]) for n in names))
    return np.concatenate(xs), np.concatenate(ys)


def looks_like_cifar10(d: Path) -> bool:
    """True if ``d`` holds CIFAR-10 in one of the accepted layouts."""
    try:
        locate(d)
        return True
    except DataError:
        return False
