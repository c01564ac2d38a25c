"""Finding a dataset on disk (:func:`resolve_data_dir`) and loading it (:func:`load_source`)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from glow_tf.data import celeba as _celeba
from glow_tf.data import cifar as _cifar
from glow_tf.data import mnist as _mnist
from glow_tf.data import tfrecords as _tfr
from glow_tf.data.cache import cache_root, cached_decode
from glow_tf.data.download import CHECKSUMS, download
from glow_tf.data.errors import DataError, describe, summarise_skipped, warn
from glow_tf.data.folder import check_nonempty, scan_folder
from glow_tf.data.images import area_downsample, is_image_file
from glow_tf.data.source import ArraySource, DataSource, TFRecordSource

PROBLEMS = (
    'mnist',
    'cifar10',
    'celeba',
    'celeba-tfr',
    'imagenet-oord',
    'imagenet',
    'lsun_realnvp',
    'lsun',
    'folder',
    'tfr',
)

# Default image sizes: the original Glow defaults; CelebA from img_align_celeba defaults to 64.
DEFAULT_IMAGE_SIZE = {
    'mnist': 32,
    'cifar10': 32,
    'celeba': 64,
    'celeba-tfr': 256,
    'imagenet-oord': 64,
    'imagenet': 256,
    'lsun_realnvp': 64,
    'lsun': 256,
    'folder': 64,
}
DEFAULT_N_CLASSES = {'mnist': 10, 'cifar10': 10, 'imagenet': 1000}

# Sub-directory names searched under $GLOW_DATA_DIR and the shared data directory, in order.
SUBDIRS = {
    'mnist': ('mnist',),
    'cifar10': ('cifar10', 'cifar10-subset', 'cifar-10-batches-py', 'cifar-10'),
    'celeba': ('celeba', 'celeba-subset', 'celeba-tfr', 'celeba-reshard-tfr'),
    'celeba-tfr': ('celeba-tfr', 'celeba-reshard-tfr', 'celeba'),
    'imagenet-oord': ('imagenet-oord-tfr', 'imagenet-oord'),
    'imagenet': ('imagenet-tfr', 'imagenet'),
    'lsun_realnvp': ('lsun_realnvp-tfr', 'lsun_realnvp'),
    'lsun': ('lsun-tfr', 'lsun'),
    'tfr': ('tfr',),
    'folder': ('folder',),
}


def shared_data_root() -> Path:
    """The read-only shared copy beside the project: ``<repo>/../shared/data``."""
    return Path(__file__).resolve().parents[3] / 'shared' / 'data'


def _check_problem(problem: str) -> None:
    if problem not in PROBLEMS:
        raise DataError(f'problem={problem!r} is unknown; valid names: {", ".join(PROBLEMS)}')


def _looks_like(problem: str, d: Path) -> bool:
    if not d.is_dir():
        return False
    if problem == 'mnist':
        return _mnist.looks_like_mnist(d)
    if problem == 'cifar10':
        return _cifar.looks_like_cifar10(d)
    if problem == 'celeba':
        return _celeba.looks_like_celeba(d) or _tfr.looks_like_tfrecords(d)
    if problem == 'folder':  # images at the top, or in class / split sub-directories
        return any(
            is_image_file(f.name) or (f.is_dir() and any(is_image_file(g) for g in os.listdir(f)))
            for f in d.iterdir()
        )
    if _tfr.looks_like_tfrecords(d):
        return True
    return problem.startswith('lsun') and any(
        _tfr.looks_like_tfrecords(c) for c in d.iterdir() if c.is_dir()
    )


def resolve_data_dir(
    problem: str, data_dir: str | os.PathLike | None = None, download_missing: bool = True
) -> str:
    """Directory holding ``problem``'s data.

    Order: ``data_dir`` if given (must exist); else ``$GLOW_DATA_DIR`` -- either a root with
    per-problem sub-directories (see ``SUBDIRS``) or the problem's directory itself; else the shared
    copy ``<repo>/../shared/data`` (mnist/, cifar10-subset/, celeba-subset/); else, for mnist and
    cifar10, ``$GLOW_CACHE_DIR/<problem>`` (default ``~/.cache/glow_tf/<problem>``), downloading
    with md5 verification if needed. Otherwise DataError saying where to put the data.
    """
    _check_problem(problem)
    if data_dir:
        p = Path(data_dir).expanduser()
        if not p.exists():
            raise describe(p, f'data_dir for {problem} does not exist')
        return str(p)
    roots = []
    env = os.environ.get('GLOW_DATA_DIR')
    if env:
        roots.append(Path(env).expanduser())
    roots.append(shared_data_root())
    for i, root in enumerate(roots):
        for sub in SUBDIRS[problem]:
            if _looks_like(problem, root / sub):
                return str(root / sub)
        if i == 0 and env and _looks_like(problem, root):
            return str(root)
    if problem in CHECKSUMS:
        dest = cache_root() / problem
        if download_missing and not all((dest / n).is_file() for n in CHECKSUMS[problem]):
            download(problem, dest)
        if _looks_like(problem, dest):
            return str(dest)
    hint = {'folder': 'pass data_dir=<directory of images>'}.get(
        problem,
        f'pass data_dir, or set GLOW_DATA_DIR to a directory with a sub-directory named '
        f'{" or ".join(SUBDIRS[problem])}',
    )
    raise DataError(
        f'no data found for problem={problem!r} (searched $GLOW_DATA_DIR={env or "(unset)"}, '
        f'{shared_data_root()}): {hint}'
    )


def _positive(name, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DataError(f'{name}={value!r}: expected a positive integer or None')
    return int(value)


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


def load_source(
    problem: str,
    data_dir: str | os.PathLike | None = None,
    image_size: int | None = None,
    n_train: int | None = None,
    n_test: int | None = None,
    category: str | None = None,
    skip_bad: bool = False,
    *,
    cache_dir: str | os.PathLike | bool | None = None,
    image_dir: str | os.PathLike | None = None,
) -> DataSource:
    """Load a dataset as a :class:`DataSource` of uint8 ``[image_size, image_size, 3]`` images.

    problem: 'mnist', 'cifar10' (in memory; image_size 32 or a divisor, area-downsampled);
    'celeba' (``img_align_celeba*/`` + ``list_attr_celeba.txt``; or, if ``data_dir/train`` holds
    TFRecords, the original release's shards); 'folder' (an image folder, labels from class
    subfolders); 'celeba-tfr', 'imagenet-oord', 'imagenet', 'lsun_realnvp', 'lsun', 'tfr' (TFRecord
    shards in the original format; 'tfr' = shards written by convert_to_tfrecords.py).
    ``category`` selects an LSUN category sub-directory. ``n_train`` / ``n_test`` keep the first n
    examples of each split (evenly spread for folders, so classes stay balanced). ``skip_bad`` skips
    undecodable / grayscale / transparent images and images without attribute rows instead of
    raising; they are listed in ``source.skipped`` and summarised in a DataWarning. ``cache_dir``:
    where decoded folder/CelebA images and TFRecord counts are cached (None: ``$GLOW_CACHE_DIR`` or
    ``~/.cache/glow_tf``; False: no cache). ``image_dir``: force the CelebA image directory.
    """
    _check_problem(problem)
    image_size = _positive('image_size', image_size)
    n_train, n_test = _positive('n_train', n_train), _positive('n_test', n_test)
    if category and not problem.startswith('lsun'):
        raise DataError(
            f'category={category!r} only applies to lsun and lsun_realnvp, not {problem}'
        )
    root = Path(resolve_data_dir(problem, data_dir))
    if category:
        if not (root / category).is_dir():
            have = sorted(c.name for c in root.iterdir() if c.is_dir())
            raise describe(
                root / category, f'no such LSUN category directory (available: {", ".join(have)})'
            )
        root = root / category
    cache = (
        False
        if cache_dir is False
        else (cache_root() if cache_dir in (None, True) else Path(cache_dir))
    )

    if problem in ('mnist', 'cifar10'):
        return _load_arrays(problem, root, image_size or 32, n_train, n_test)
    if problem == 'folder':
        return _load_folder(
            root, image_size or DEFAULT_IMAGE_SIZE['folder'], n_train, n_test, skip_bad, cache
        )
    if problem == 'celeba' and not _tfr.looks_like_tfrecords(root):
        return _load_celeba(
            root,
            image_size or DEFAULT_IMAGE_SIZE['celeba'],
            n_train,
            n_test,
            skip_bad,
            cache,
            image_dir,
        )
    return _load_tfrecords(problem, root, image_size, n_train, n_test, cache)


def _load_arrays(problem, root, size, n_train, n_test) -> ArraySource:
    load = _mnist.load_mnist_split if problem == 'mnist' else _cifar.load_cifar10_split
    arrays = {}
    for split, n in (('train', n_train), ('test', n_test)):
        x, y = load(root, split)
        k = _limit(f'n_{split}', n, len(x), root)
        x, y = x[:k], y[:k]
        arrays[split] = (area_downsample(x, size, f'{problem} at {root}'), y, None)
    names = [str(i) for i in range(10)] if problem == 'mnist' else list(_cifar.CLASS_NAMES)
    return ArraySource(
        problem=problem,
        image_shape=(size, size, 3),
        n_train=len(arrays['train'][0]),
        n_test=len(arrays['test'][0]),
        n_classes=10,
        class_names=names,
        split_rule='official train / test files',
        location=str(root),
        arrays=arrays,
    )


def _load_folder(root, size, n_train, n_test, skip_bad, cache) -> ArraySource:
    index = scan_folder(root)
    check_nonempty(index)
    arrays, skipped, total = {}, [], 0
    for split, files, labels, n in (
        ('train', index.train_files, index.train_labels, n_train),
        ('test', index.test_files, index.test_labels, n_test),
    ):
        k = _limit(f'n_{split}', n, len(files), root)
        sel = _even_subset(len(files), k)
        files = [files[i] for i in sel]
        labels = np.asarray(labels, np.int32)[sel]
        x, ok, bad = cached_decode(files, size, skip_bad, cache)
        arrays[split] = (x, labels[ok], None)
        skipped += bad
        total += len(files)
    if skipped:
        warn(summarise_skipped(skipped, total, root))
    if not len(arrays['train'][0]):
        raise describe(root, 'no usable training images left after skipping bad files')
    return ArraySource(
        problem='folder',
        image_shape=(size, size, 3),
        n_train=len(arrays['train'][0]),
        n_test=len(arrays['test'][0]),
        n_classes=len(index.class_names),
        class_names=list(index.class_names),
        skipped=skipped,
        split_rule=index.split_rule,
        location=str(root),
        arrays=arrays,
    )


def _load_celeba(root, size, n_train, n_test, skip_bad, cache, image_dir) -> ArraySource:
    index = _celeba.scan_celeba(root, image_dir=image_dir, skip_bad=skip_bad)
    arrays, skipped, total = {}, list(index.skipped), len(index.skipped)
    for split, files, attr, n in (
        ('train', index.train_files, index.train_attr, n_train),
        ('test', index.test_files, index.test_attr, n_test),
    ):
        k = _limit(f'n_{split}', n, len(files), root)
        x, ok, bad = cached_decode(list(files[:k]), size, skip_bad, cache)
        arrays[split] = (x, np.zeros(len(x), np.int32), attr[:k][ok])
        skipped += bad
        total += k
    if skipped:
        warn(summarise_skipped(skipped, total, index.image_dir))
    if not len(arrays['train'][0]):
        raise describe(
            index.image_dir, 'no usable training images (after the split and skipping bad files)'
        )
    return ArraySource(
        problem='celeba',
        image_shape=(size, size, 3),
        n_train=len(arrays['train'][0]),
        n_test=len(arrays['test'][0]),
        n_classes=0,
        attribute_names=list(index.names),
        skipped=skipped,
        split_rule=index.split_rule,
        location=str(index.image_dir),
        arrays=arrays,
    )


def _load_tfrecords(problem, root, image_size, n_train, n_test, cache) -> TFRecordSource:
    meta = _tfr.read_meta(root)
    size = (
        image_size
        or meta.get('res')
        or DEFAULT_IMAGE_SIZE.get('celeba-tfr' if problem == 'celeba' else problem)
    )
    if not size:
        raise DataError(
            f'image_size is required for problem={problem!r} at {root} (no {_tfr.META_FILE})'
        )
    crop = problem == 'lsun_realnvp' or bool(meta.get('random_crop', False))
    lg = _tfr.res_log2(size)
    files, counts, infos = {}, {}, {}
    for split in ('train', 'test'):
        files[split] = _tfr.find_shards(_tfr.find_split_dir(root, split), lg)
        c, infos[split] = _tfr.scan_shards(files[split], cache if cache else None)
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
    n_classes = int(meta.get('n_classes', len(class_names) or DEFAULT_N_CLASSES.get(problem, 0)))
    return TFRecordSource(
        problem=problem,
        image_shape=(size, size, 3),
        n_train=_limit('n_train', n_train, counts['train'], root),
        n_test=_limit('n_test', n_test, counts['test'], root),
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
