"""Building a :class:`DataSource` from a problem's directory, one reader per on-disk format.

A problem's ``load`` (``glow_tf.data.problems``) calls one of these with its :class:`Problem`
record, the directory ``resolve_data_dir`` found and the caller's :class:`LoadRequest`:
``load_arrays`` (a format read whole into memory: MNIST, CIFAR-10), ``load_folder`` (an image
folder), ``load_celeba`` (``img_align_celeba*/`` + attributes) and ``load_tfrecords`` (shards in
the original Glow format).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from glow_tf.data import celeba as _celeba
from glow_tf.data import tfrecords as _tfr
from glow_tf.data.cache import cached_decode
from glow_tf.data.errors import DataError, describe, summarise_skipped, warn
from glow_tf.data.folder import check_nonempty, scan_folder
from glow_tf.data.images import area_downsample
from glow_tf.data.source import ArraySource, TFRecordSource

if TYPE_CHECKING:
    from glow_tf.data.problems import Problem


@dataclass(frozen=True)
class LoadRequest:
    """What ``load_source`` asks of a problem's loader (already validated).

    Args:
        image_size: the requested size, or None for the problem's default.
        n_train, n_test: keep the first n examples of each split (None: all).
        skip_bad: skip bad image files instead of raising.
        cache: the decoded-image / record-count cache directory, or False for none.
        image_dir: the CelebA image directory to use (None: the one with the most images).
    """

    image_size: int | None = None
    n_train: int | None = None
    n_test: int | None = None
    skip_bad: bool = False
    cache: Path | bool = False
    image_dir: str | os.PathLike | None = None


def _limit(name: str, requested: int | None, available: int, where) -> int:
    if requested is None:
        return available
    if requested > available:
        warn(
            f'{where}: {name}={requested} but only {available} examples are available; '
            f'using {available}'
        )
        return available
    return requested


def _even_subset(n_avail: int, n: int) -> np.ndarray:
    """Deterministic, evenly spread subset of ``range(n_avail)`` of size ``n`` (in order)."""
    return np.floor(np.arange(n) * (n_avail / n)).astype(np.int64) if n else np.zeros(0, np.int64)


def _array_source(problem: Problem, size: int, arrays: dict, **fields) -> ArraySource:
    """An ArraySource of ``arrays`` (``{split: (x, y, attr)}``) of ``size`` x ``size`` images."""
    return ArraySource(
        problem=problem.name,
        image_shape=(size, size, 3),
        n_train=len(arrays['train'][0]),
        n_test=len(arrays['test'][0]),
        arrays=arrays,
        **fields,
    )


def load_arrays(
    problem: Problem,
    root: Path,
    req: LoadRequest,
    read_split: Callable[[Path, str], tuple[np.ndarray, np.ndarray]],
) -> ArraySource:
    """An in-memory source: ``read_split(root, 'train' | 'test')`` gives uint8 ``[n, S, S, 3]``
    and int32 ``[n]`` labels; images are area-downsampled to ``req.image_size`` (a divisor of
    S)."""
    size = req.image_size or problem.image_size
    arrays = {}
    for split, n in (('train', req.n_train), ('test', req.n_test)):
        x, y = read_split(root, split)
        k = _limit(f'n_{split}', n, len(x), root)
        x, y = x[:k], y[:k]
        arrays[split] = (area_downsample(x, size, f'{problem.name} at {root}'), y, None)
    return _array_source(
        problem,
        size,
        arrays,
        n_classes=problem.n_classes,
        class_names=list(problem.class_names),
        split_rule='official train / test files',
        location=str(root),
    )


def load_folder(problem: Problem, root: Path, req: LoadRequest) -> ArraySource:
    """An image folder (``glow_tf.data.folder``): labels from class sub-folders, decoded once and
    cached."""
    size = req.image_size or problem.image_size
    index = scan_folder(root)
    check_nonempty(index)
    arrays, skipped, total = {}, [], 0
    for split, files, labels, n in (
        ('train', index.train_files, index.train_labels, req.n_train),
        ('test', index.test_files, index.test_labels, req.n_test),
    ):
        k = _limit(f'n_{split}', n, len(files), root)
        sel = _even_subset(len(files), k)
        files = [files[i] for i in sel]
        labels = np.asarray(labels, np.int32)[sel]
        x, ok, bad = cached_decode(files, size, req.skip_bad, req.cache)
        arrays[split] = (x, labels[ok], None)
        skipped += bad
        total += len(files)
    if skipped:
        warn(summarise_skipped(skipped, total, root))
    if not len(arrays['train'][0]):
        raise describe(root, 'no usable training images left after skipping bad files')
    return _array_source(
        problem,
        size,
        arrays,
        n_classes=len(index.class_names),
        class_names=list(index.class_names),
        skipped=skipped,
        split_rule=index.split_rule,
        location=str(root),
    )


def load_celeba(problem: Problem, root: Path, req: LoadRequest) -> ArraySource:
    """CelebA from ``img_align_celeba*/`` + ``list_attr_celeba.txt`` (``glow_tf.data.celeba``),
    with the 40 attributes."""
    size = req.image_size or problem.image_size
    index = _celeba.scan_celeba(root, image_dir=req.image_dir, skip_bad=req.skip_bad)
    arrays, skipped, total = {}, list(index.skipped), len(index.skipped)
    for split, files, attr, n in (
        ('train', index.train_files, index.train_attr, req.n_train),
        ('test', index.test_files, index.test_attr, req.n_test),
    ):
        k = _limit(f'n_{split}', n, len(files), root)
        x, ok, bad = cached_decode(list(files[:k]), size, req.skip_bad, req.cache)
        arrays[split] = (x, np.zeros(len(x), np.int32), attr[:k][ok])
        skipped += bad
        total += k
    if skipped:
        warn(summarise_skipped(skipped, total, index.image_dir))
    if not len(arrays['train'][0]):
        raise describe(
            index.image_dir, 'no usable training images (after the split and skipping bad files)'
        )
    return _array_source(
        problem,
        size,
        arrays,
        n_classes=problem.n_classes,
        attribute_names=list(index.names),
        skipped=skipped,
        split_rule=index.split_rule,
        location=str(index.image_dir),
    )


def load_tfrecords(
    problem: Problem, root: Path, req: LoadRequest, default_size: int | None = None
) -> TFRecordSource:
    """TFRecord shards in the original Glow format (``glow_tf.data.tfrecords``). The image size
    is ``req.image_size``, else the converter's metadata, else ``default_size`` (default: the
    problem's); ``problem.random_crop`` (or the metadata's ``random_crop``) trains on random
    crops of larger stored images."""
    meta = _tfr.read_meta(root)
    size = req.image_size or meta.get('res') or default_size or problem.image_size
    if not size:
        raise DataError(
            f'image_size is required for problem={problem.name!r} at {root} (no {_tfr.META_FILE})'
        )
    crop = problem.random_crop or bool(meta.get('random_crop', False))
    lg = _tfr.res_log2(size)
    files, counts, infos = {}, {}, {}
    for split in ('train', 'test'):
        files[split] = _tfr.find_shards(_tfr.find_split_dir(root, split), lg)
        c, infos[split] = _tfr.scan_shards(files[split], req.cache if req.cache else None)
        counts[split] = sum(c)
        shape = infos[split].shape
        where = files[split][0]
        if crop and min(shape[:2]) < size:
            raise describe(
                where, f'stores {shape[0]}x{shape[1]} images, too small for {size}x{size} crops'
            )
        if not crop and shape[:2] != (size, size):
            raise describe(
                where,
                f'stores {shape[0]}x{shape[1]} images but image_size={size}; use image_size='
                f'{shape[0]} or convert the data at {size}',
            )
    if infos['train'].attr_len != infos['test'].attr_len:
        raise describe(
            root,
            f'train shards have {infos["train"].attr_len} attributes, validation shards '
            f'{infos["test"].attr_len}',
        )
    attr_len = infos['train'].attr_len
    names = meta.get('attribute_names')
    if attr_len and not names:
        names = (
            list(_celeba.CELEBA_ATTRIBUTE_NAMES)
            if attr_len == 40
            else [f'attr_{i}' for i in range(attr_len)]
        )
    class_names = list(meta.get('class_names') or [])
    n_classes = int(meta.get('n_classes', len(class_names) or problem.n_classes))
    return TFRecordSource(
        problem=problem.name,
        image_shape=(size, size, 3),
        n_train=_limit('n_train', req.n_train, counts['train'], root),
        n_test=_limit('n_test', req.n_test, counts['test'], root),
        n_classes=n_classes,
        attribute_names=names if attr_len else None,
        class_names=class_names,
        split_rule='train/ and validation/ shards',
        location=str(root),
        files=files,
        totals=counts,
        crop=crop,
        has_label=infos['train'].has_label and infos['test'].has_label,
        attr_len=attr_len,
    )
