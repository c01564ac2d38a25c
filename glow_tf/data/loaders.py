"""Finding a dataset on disk (:func:`resolve_data_dir`) and loading it (:func:`load_source`).

What each problem is -- its folders, detection, loader and defaults -- is its record in
``glow_tf.data.problems``; this module only applies the search order and the argument checks.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from glow_tf.data.cache import cache_root
from glow_tf.data.download import CHECKSUMS, download
from glow_tf.data.errors import DataError, describe
from glow_tf.data.problems import PROBLEMS, Problem, get_problem
from glow_tf.data.readers import LoadRequest
from glow_tf.data.source import DataSource

__all__ = ['PROBLEMS', 'shared_data_root', 'resolve_data_dir', 'load_source']


def shared_data_root() -> Path:
    """The read-only shared copy beside the project: ``<repo>/../shared/data``."""
    return Path(__file__).resolve().parents[3] / 'shared' / 'data'


def _looks_like(problem: Problem, d: Path) -> bool:
    return d.is_dir() and problem.detect(d)


def resolve_data_dir(
    problem: str, data_dir: str | os.PathLike | None = None, download_missing: bool = True
) -> str:
    """Directory holding ``problem``'s data.

    Order: ``data_dir`` if given (must exist); else ``$GLOW_DATA_DIR`` -- either a root with
    per-problem sub-directories (the problem's ``folders``) or the problem's directory itself;
    else the shared copy ``<repo>/../shared/data`` (the same sub-directories); else, for mnist and
    cifar10, ``$GLOW_CACHE_DIR/<problem>`` (default ``~/.cache/glow_tf/<problem>``), downloading
    with md5 verification if needed. Otherwise DataError saying where to put the data.
    """
    record = get_problem(problem)
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
        for sub in record.folders:
            if _looks_like(record, root / sub):
                return str(root / sub)
        if i == 0 and env and _looks_like(record, root):
            return str(root)
    if problem in CHECKSUMS:
        dest = cache_root() / problem
        if download_missing and not all((dest / n).is_file() for n in CHECKSUMS[problem]):
            download(problem, dest)
        if _looks_like(record, dest):
            return str(dest)
    hint = record.missing_hint or (
        f'pass data_dir, or set GLOW_DATA_DIR to a directory with a sub-directory named '
        f'{" or ".join(record.folders)}'
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

    problem: a name in ``PROBLEMS`` (``glow_tf.data.problems``): 'mnist', 'cifar10' (in memory;
    image_size 32 or a divisor, area-downsampled); 'celeba' (``img_align_celeba*/`` +
    ``list_attr_celeba.txt``; or, if ``data_dir/train`` holds TFRecords, the original release's
    shards); 'folder' (an image folder, labels from class subfolders); 'celeba-tfr',
    'imagenet-oord', 'imagenet', 'lsun_realnvp', 'lsun', 'tfr' (TFRecord shards in the original
    format; 'tfr' = shards written by convert_to_tfrecords.py). ``category`` selects an LSUN
    category sub-directory. ``n_train`` / ``n_test`` keep the first n examples of each split
    (evenly spread for folders, so classes stay balanced). ``skip_bad`` skips undecodable /
    grayscale / transparent images and images without attribute rows instead of raising; they are
    listed in ``source.skipped`` and summarised in a DataWarning. ``cache_dir``: where decoded
    folder/CelebA images and TFRecord counts are cached (None: ``$GLOW_CACHE_DIR`` or
    ``~/.cache/glow_tf``; False: no cache). ``image_dir``: force the CelebA image directory.
    """
    record = get_problem(problem)
    image_size = _positive('image_size', image_size)
    n_train, n_test = _positive('n_train', n_train), _positive('n_test', n_test)
    if category and not record.categories:
        takes = ' and '.join(sorted(p.name for p in PROBLEMS.values() if p.categories))
        raise DataError(f'category={category!r} only applies to {takes}, not {problem}')
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
    request = LoadRequest(image_size, n_train, n_test, skip_bad, cache, image_dir)
    return record.load(record, root, request)
