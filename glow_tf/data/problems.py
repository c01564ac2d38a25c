"""The datasets (``--problem``): one :class:`Problem` record each, in one registry.

A record says everything the package knows about a dataset: its name, default image size and
classes, the folder names searched for it (under ``$GLOW_DATA_DIR`` and the shared copy
``<repo>/../shared/data``), how a folder holding it is recognised, the loader that turns that
folder into a ``DataSource``, the augmentation the original Glow code used at each ``--dal``
level, and the official split sizes where they are fixed. ``load_source`` / ``resolve_data_dir``
(``glow_tf.data.loaders``), the trainer's augmentation (:func:`augmentation_for`), ``train.py
--help`` and the editor's default gallery read it; nothing else names a dataset.

Adding a dataset is one :func:`register_problem` call (here for a built-in one, or in your own
code)::

    from glow_tf.data.problems import Problem, register_problem
    from glow_tf.data.readers import load_arrays

    register_problem(Problem(
        name='svhn', image_size=32, n_classes=10, folders=('svhn',),
        detect=lambda d: (d / 'train_32x32.mat').is_file(),
        load=lambda problem, root, req: load_arrays(problem, root, req, read_svhn_split),
    ))

after which ``load_source('svhn')`` and ``train.py --problem svhn`` find and load it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Callable

from glow_tf.data import celeba as _celeba
from glow_tf.data import cifar as _cifar
from glow_tf.data import mnist as _mnist
from glow_tf.data import tfrecords as _tfr
from glow_tf.data.augment import CIFAR_FULL, NONE, SHIFTS, Augmentation
from glow_tf.data.errors import DataError
from glow_tf.data.images import is_image_file
from glow_tf.data.readers import LoadRequest, load_arrays, load_celeba, load_folder, load_tfrecords
from glow_tf.data.source import DataSource


@dataclass(frozen=True)
class Problem:
    """One dataset, as ``--problem NAME`` / ``load_source(NAME)`` know it.

    Args:
        name: the ``--problem`` name.
        image_size: the default image size (None: the TFRecord metadata's, else required).
        detect: ``detect(directory) -> bool``: does this existing directory hold the data?
        load: ``load(problem, root, request) -> DataSource`` (``glow_tf.data.readers``): the
            source of the data in ``root`` for a :class:`~glow_tf.data.readers.LoadRequest`.
        folders: sub-directory names tried, in order, under ``$GLOW_DATA_DIR`` and
            ``<repo>/../shared/data`` (docs/data.md).
        n_classes: the number of classes (0: unlabeled; TFRecord metadata may say otherwise).
        class_names: the classes' names, when fixed.
        augmentation: the augmentation at ``--dal`` 0, 1 and 2 (the original's; none for most).
        categories: the data sits in per-category sub-directories (``category=``, LSUN).
        random_crop: train on random crops of larger stored images, test on the centre crop.
        sizes: the official (train, test) sizes, where fixed; None otherwise.
        missing_hint: what the "no data found" error suggests (default: the folder names).
    """

    name: str
    image_size: int | None
    detect: Callable[[Path], bool]
    load: Callable[['Problem', Path, LoadRequest], DataSource]
    folders: tuple[str, ...] = ()
    n_classes: int = 0
    class_names: tuple[str, ...] = ()
    augmentation: tuple[Augmentation, Augmentation, Augmentation] = (NONE, NONE, NONE)
    categories: bool = False
    random_crop: bool = False
    sizes: tuple[int, int] | None = None
    missing_hint: str = ''


_REGISTRY: dict[str, Problem] = {}
PROBLEMS = MappingProxyType(_REGISTRY)
"""The registered problems by name, in registration order (read-only; see register_problem)."""


def register_problem(problem: Problem, replace: bool = False) -> Problem:
    """Add ``problem`` to the registry (``replace=True`` to redefine a name); returns it."""
    if not isinstance(problem, Problem):
        raise TypeError(f'expected a Problem, got {type(problem).__name__}')
    if problem.name in _REGISTRY and not replace:
        raise ValueError(
            f'problem {problem.name!r} is already registered (replace=True to redefine)'
        )
    if len(problem.augmentation) != 3:
        raise ValueError(
            f'problem {problem.name!r}: augmentation needs one entry per --dal 0, 1, 2'
        )
    _REGISTRY[problem.name] = problem
    return problem


def unregister_problem(name: str) -> Problem:
    """Remove a registered problem (e.g. one a test added); returns its record."""
    return _REGISTRY.pop(get_problem(name).name)


def get_problem(name: str) -> Problem:
    """The record of ``name``; DataError listing the valid names if there is none."""
    if name not in _REGISTRY:
        raise DataError(f'problem={name!r} is unknown; valid names: {", ".join(_REGISTRY)}')
    return _REGISTRY[name]


def augmentation_for(problem: str, level: int) -> Augmentation:
    """The original's augmentation for ``--problem`` at ``--dal`` (the problem's record; none for
    a name not registered, e.g. a source passed to the trainer directly)."""
    if level not in (0, 1, 2):
        raise DataError(f'--dal {level}: expected 0, 1 or 2')
    return _REGISTRY[problem].augmentation[level] if problem in _REGISTRY else NONE


# ------------------------------------------------------------------ detection
def looks_like_image_folder(d: Path) -> bool:
    """Images at the top of ``d``, or in its class / split sub-directories."""
    return any(
        is_image_file(f.name) or (f.is_dir() and any(is_image_file(g) for g in os.listdir(f)))
        for f in d.iterdir()
    )


def looks_like_category_shards(d: Path) -> bool:
    """Shards in ``d``, or in one of its (category) sub-directories."""
    return _tfr.looks_like_tfrecords(d) or any(
        _tfr.looks_like_tfrecords(c) for c in d.iterdir() if c.is_dir()
    )


# ------------------------------------------------------------------ the built-in problems
CELEBA_HQ_SIZE = 256  # the original release's CelebA-HQ shards


def _load_mnist(problem, root, req):
    return load_arrays(problem, root, req, _mnist.load_mnist_split)


def _load_cifar10(problem, root, req):
    return load_arrays(problem, root, req, _cifar.load_cifar10_split)


def _load_celeba(problem, root, req):
    """img_align_celeba*/ + attributes; the original release's shards if root/train has them."""
    if _tfr.looks_like_tfrecords(root):
        return load_tfrecords(problem, root, req, default_size=CELEBA_HQ_SIZE)
    return load_celeba(problem, root, req)


def _celeba_or_shards(d: Path) -> bool:
    return _celeba.looks_like_celeba(d) or _tfr.looks_like_tfrecords(d)


def _shards(name, image_size, folders, **kw):
    """A problem stored as TFRecord shards in the original format."""
    return Problem(name, image_size, _tfr.looks_like_tfrecords, load_tfrecords, folders, **kw)


# In this order `--problem` lists them. Folder names: the original release's data directories
# and the names of the documented shared copy (docs/data.md).
register_problem(
    Problem(
        'mnist',
        32,
        _mnist.looks_like_mnist,
        _load_mnist,
        ('mnist',),
        n_classes=10,
        class_names=tuple(str(i) for i in range(10)),
        augmentation=(NONE, SHIFTS, SHIFTS),
        sizes=(60000, 10000),
    )
)
register_problem(
    Problem(
        'cifar10',
        32,
        _cifar.looks_like_cifar10,
        _load_cifar10,
        ('cifar10', 'cifar10-subset', 'cifar-10-batches-py', 'cifar-10'),
        n_classes=10,
        class_names=tuple(_cifar.CLASS_NAMES),
        augmentation=(NONE, SHIFTS, CIFAR_FULL),
        sizes=(50000, 10000),
    )
)
register_problem(
    Problem(
        'celeba',
        64,
        _celeba_or_shards,
        _load_celeba,
        ('celeba', 'celeba-subset', 'celeba-tfr', 'celeba-reshard-tfr'),
    )
)
register_problem(
    _shards('celeba-tfr', CELEBA_HQ_SIZE, ('celeba-tfr', 'celeba-reshard-tfr', 'celeba'))
)
register_problem(_shards('imagenet-oord', 64, ('imagenet-oord-tfr', 'imagenet-oord')))
register_problem(_shards('imagenet', 256, ('imagenet-tfr', 'imagenet'), n_classes=1000))
register_problem(
    Problem(
        'lsun_realnvp',
        64,
        looks_like_category_shards,
        load_tfrecords,
        ('lsun_realnvp-tfr', 'lsun_realnvp'),
        categories=True,
        random_crop=True,
    )
)
register_problem(
    Problem(
        'lsun',
        256,
        looks_like_category_shards,
        load_tfrecords,
        ('lsun-tfr', 'lsun'),
        categories=True,
    )
)
register_problem(
    Problem(
        'folder',
        64,
        looks_like_image_folder,
        load_folder,
        ('folder',),
        missing_hint='pass data_dir=<directory of images>',
    )
)
register_problem(_shards('tfr', None, ('tfr',)))
