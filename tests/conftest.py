"""Shared pytest fixtures about data: the shared real-data directory and fixture-file writers that
produce small datasets in the real on-disk formats (IDX gzip, CIFAR pickle batches, image folders,
CelebA attribute files with CRLF, TFRecord shards)."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / 'shared' / 'data'


@pytest.fixture(scope='session')
def shared_data() -> Path:
    """``<repo>/../shared/data`` (real MNIST, CIFAR-10 subset, CelebA subset); skips if absent."""
    if not (SHARED_DATA / 'README.md').is_file():
        pytest.skip(f'shared data not present at {SHARED_DATA}')
    return SHARED_DATA


@pytest.fixture
def data_cache(tmp_path, monkeypatch) -> Path:
    """A private glow_tf data cache (``$GLOW_CACHE_DIR``) and no ``$GLOW_DATA_DIR``."""
    d = tmp_path / 'glow_cache'
    monkeypatch.setenv('GLOW_CACHE_DIR', str(d))
    monkeypatch.delenv('GLOW_DATA_DIR', raising=False)
    return d


# ----------------------------------------------------------------------------------------------
# Writers (plain functions exposed through fixtures so test modules need no imports from here)
# ----------------------------------------------------------------------------------------------


def write_idx(
    path: Path, array: np.ndarray, magic: int | None = None, compress: bool = True
) -> Path:
    """Write ``uint8`` ``array`` as an IDX file (gzip when ``compress``); ``magic`` overrides the
    header."""
    array = np.asarray(array, np.uint8)
    magic = (0x0800 | array.ndim) if magic is None else magic
    blob = struct.pack('>I', magic) + struct.pack(f'>{array.ndim}I', *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(blob) if compress else blob)
    return path


def make_mnist_dir(root: Path, n_train: int = 20, n_test: int = 10, seed: int = 0) -> dict:
    """Four MNIST IDX gzip files with random digits; returns the arrays written."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n, stem in (('train', n_train, 'train'), ('test', n_test, 't10k')):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n, dtype=np.uint8)
        write_idx(root / f'{stem}-images-idx3-ubyte.gz', x)
        write_idx(root / f'{stem}-labels-idx1-ubyte.gz', y)
        out[split] = (x, y)
    return out


def cifar_batch_bytes(x_hwc: np.ndarray, labels, protocol: int = 2) -> bytes:
    """A pickled CIFAR-10 python batch (bytes keys) for ``uint8 [n, 32, 32, 3]`` images."""
    data = np.ascontiguousarray(
        np.asarray(x_hwc, np.uint8).transpose(0, 3, 1, 2).reshape(len(x_hwc), 3072)
    )
    d = {b'batch_label': b'fixture', b'labels': [int(v) for v in labels], b'data': data}
    return pickle.dumps(d, protocol=protocol)


def make_cifar_dir(root: Path, per_batch: int = 4, seed: int = 0, tarball: bool = False) -> dict:
    """``root/cifar-10-batches-py/`` (or ``root/cifar-10-python.tar.gz``) with 5 train + 1 test
    batch."""
    rng = np.random.default_rng(seed)
    files, arrays = {}, {'train': ([], []), 'test': ([], [])}
    for name in [f'data_batch_{i}' for i in range(1, 6)] + ['test_batch']:
        x = rng.integers(0, 256, (per_batch, 32, 32, 3), dtype=np.uint8)
        y = rng.integers(0, 10, per_batch)
        files[name] = cifar_batch_bytes(x, y)
        split = 'test' if name == 'test_batch' else 'train'
        arrays[split][0].append(x)
        arrays[split][1].append(y)
    files['batches.meta'] = pickle.dumps({b'label_names': [b'a'] * 10}, protocol=2)
    root.mkdir(parents=True, exist_ok=True)
    if tarball:
        with tarfile.open(root / 'cifar-10-python.tar.gz', 'w:gz') as tar:
            for name, blob in files.items():
                info = tarfile.TarInfo(f'cifar-10-batches-py/{name}')
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
    else:
        (root / 'cifar-10-batches-py').mkdir()
        for name, blob in files.items():
            (root / 'cifar-10-batches-py' / name).write_bytes(blob)
    return {k: (np.concatenate(v[0]), np.concatenate(v[1])) for k, v in arrays.items()}


def save_image(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    """Save a uint8 array as an image file (format from the extension)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    img = (
        Image.fromarray(np.asarray(array, np.uint8), mode)
        if mode
        else Image.fromarray(np.asarray(array, np.uint8))
    )
    img.save(path, quality=95) if path.suffix.lower() in ('.jpg', '.jpeg') else img.save(path)
    return path


def random_image(rng, h: int, w: int, channels: int = 3) -> np.ndarray:
    """Smooth random uint8 image ``[h, w, channels]`` (smooth so JPEG keeps it recognisable)."""
    base = rng.integers(0, 256, (2, 2, channels)).astype(np.float32)
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing='ij')
    img = (
        base[0, 0] * (1 - yy[..., None]) * (1 - xx[..., None])
        + base[1, 0] * yy[..., None] * (1 - xx[..., None])
        + base[0, 1] * (1 - yy[..., None]) * xx[..., None]
        + base[1, 1] * yy[..., None] * xx[..., None]
    )
    img = img.astype(np.uint8)
    return img if channels > 1 else img[..., 0]


def make_celeba_dir(
    root: Path,
    n_images: int = 12,
    n_rows: int = 15,
    count_line: int | None = None,
    size=(20, 24),
    seed: int = 0,
    crlf: bool = True,
) -> np.ndarray:
    """CelebA layout: ``list_attr_celeba.txt`` (CRLF, ``n_rows`` rows, 40 attributes) and
    ``img_align_celeba/`` with the first ``n_images`` JPEGs (w x h = ``size``). Returns the +1/-1
    rows."""
    from glow_tf.data import CELEBA_ATTRIBUTE_NAMES

    rng = np.random.default_rng(seed)
    values = rng.choice(np.array([-1, 1], np.int8), (n_rows, 40))
    nl = '\r\n' if crlf else '\n'
    lines = [
        str(n_rows if count_line is None else count_line),
        ' '.join(CELEBA_ATTRIBUTE_NAMES) + ' ',
    ]
    for i in range(n_rows):
        lines.append(f'{i + 1:06d}.jpg ' + ' '.join(f'{v:2d}' for v in values[i]))
    root.mkdir(parents=True, exist_ok=True)
    (root / 'list_attr_celeba.txt').write_bytes((nl.join(lines) + nl).encode())
    for i in range(n_images):
        save_image(
            root / 'img_align_celeba' / f'{i + 1:06d}.jpg', random_image(rng, size[1], size[0])
        )
    return values


def write_tfrecord_shards(
    root: Path,
    split: str,
    images: list[np.ndarray],
    labels=None,
    n_shards: int = 2,
    res_log2: int | None = None,
    attrs=None,
    digits: int = 5,
) -> list[Path]:
    """Write ``images`` round-robin into ``root/split/split-rLL-s-i-of-n.tfrecords`` (original
    features)."""
    import tensorflow as tf

    from glow_tf.data import make_example

    d = root / split
    d.mkdir(parents=True, exist_ok=True)
    lg = res_log2 if res_log2 is not None else int(np.log2(images[0].shape[0]))
    paths = [
        d / f'{split}-r{lg:02d}-s-{i:0{digits}d}-of-{n_shards:0{digits}d}.tfrecords'
        for i in range(n_shards)
    ]
    writers = [tf.io.TFRecordWriter(str(p)) for p in paths]
    for i, img in enumerate(images):
        writers[i % n_shards].write(
            make_example(
                img, 0 if labels is None else labels[i], None if attrs is None else attrs[i]
            )
        )
    for w in writers:
        w.close()
    return paths


class Writers:
    """Namespace handed to tests by the ``fixtures`` fixture."""

    write_idx = staticmethod(write_idx)
    make_mnist_dir = staticmethod(make_mnist_dir)
    cifar_batch_bytes = staticmethod(cifar_batch_bytes)
    make_cifar_dir = staticmethod(make_cifar_dir)
    save_image = staticmethod(save_image)
    random_image = staticmethod(random_image)
    make_celeba_dir = staticmethod(make_celeba_dir)
    write_tfrecord_shards = staticmethod(write_tfrecord_shards)


@pytest.fixture(scope='session')
def fixtures() -> type[Writers]:
    """Writers of small datasets in the real formats (see the functions in tests/conftest.py)."""
    return Writers


# ---- a tiny trained Glow checkpoint on real CelebA faces (tests/tiny_model.py), shared by the
# sampling, manipulation and export tests
@pytest.fixture(scope='session')
def logdir(tmp_path_factory):
    from tests import tiny_model

    return tiny_model.tiny_logdir(tmp_path_factory)


@pytest.fixture
def flow(tmp_path_factory, logdir):
    from tests import tiny_model

    return tiny_model.tiny_flow(tmp_path_factory)
