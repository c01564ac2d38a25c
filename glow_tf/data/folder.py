"""A folder of images, with labels from class subfolders when present.

Accepted layouts (image files: .jpg .jpeg .png .bmp .gif .webp .tif .tiff .ppm; hidden files and
other extensions are ignored):

* ``root/*.jpg``                 -- unlabeled
* ``root/<class>/**/*.jpg``      -- labeled; classes are the sorted subfolder names (label = index)
* ``root/train/...`` + ``root/test/...`` (or ``validation/`` or ``val/``), each in one of the
  layouts above -- an explicit split.

Without an explicit split the split is deterministic: files are sorted by path and the last 10%
(rounded up, per class when labeled, only for groups of at least 2 files) form the test set.
Images at the top level next to class subfolders are ambiguous and rejected.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from glow_tf.data.errors import DataError, describe
from glow_tf.data.images import IMAGE_EXTENSIONS, is_image_file

TEST_FRACTION = 0.1
SPLIT_NAMES = ('test', 'validation', 'val')


@dataclass
class FolderIndex:
    """Files and integer labels of each split; ``class_names`` is empty when unlabeled."""

    root: Path
    train_files: list[str]
    train_labels: list[int]
    test_files: list[str]
    test_labels: list[int]
    class_names: list[str]
    split_rule: str

    @classmethod
    def from_pairs(cls, root, train, test, class_names, split_rule):
        """An index from (file, label) pairs of each split."""
        return cls(
            root,
            [f for f, _ in train],
            [y for _, y in train],
            [f for f, _ in test],
            [y for _, y in test],
            class_names,
            split_rule,
        )


def images_under(d: Path) -> list[str]:
    """Every image file under `d` (recursively, hidden folders skipped), sorted by path."""
    out = []
    for dirpath, dirnames, filenames in os.walk(d):
        dirnames[:] = sorted(x for x in dirnames if not x.startswith('.'))
        out.extend(os.path.join(dirpath, f) for f in filenames if is_image_file(f))
    return sorted(out)


def _scan(d: Path) -> tuple[dict[str, list[str]] | None, list[str]]:
    """Return ``(classes -> files, None-if-unlabeled)`` and the top-level image files."""
    try:
        entries = sorted(os.listdir(d))
    except OSError as e:
        raise describe(d, f'cannot list directory ({e})') from None
    top = [str(d / e) for e in entries if is_image_file(e) and (d / e).is_file()]
    classes = {}
    for e in entries:
        if not e.startswith('.') and (d / e).is_dir():
            files = images_under(d / e)
            if files:
                classes[e] = files
    if classes and top:
        raise describe(
            d,
            f'has both {len(top)} image files and class subfolders '
            f'({", ".join(list(classes)[:5])}); '
            'put every image in a class subfolder, or none',
        )
    if not classes and not top:
        raise describe(
            d, f'empty image directory: no image files ({" ".join(IMAGE_EXTENSIONS)}) found'
        )
    return (classes or None), top


def _tail_split(files: list[str]) -> tuple[list[str], list[str]]:
    n_test = math.ceil(len(files) * TEST_FRACTION) if len(files) > 1 else 0
    return files[: len(files) - n_test], files[len(files) - n_test :]


def scan_folder(root: str | os.PathLike) -> FolderIndex:
    """List the images under ``root`` and split them (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise describe(root, 'image folder not found (expected a directory)')
    train_dir = root / 'train'
    test_dir = next((root / s for s in SPLIT_NAMES if (root / s).is_dir()), None)
    if train_dir.is_dir() and test_dir is not None:
        tr_classes, tr_top = _scan(train_dir)
        te_classes, te_top = _scan(test_dir)
        if (tr_classes is None) != (te_classes is None):
            raise describe(
                root,
                f'{train_dir.name}/ and {test_dir.name}/ disagree: one has class subfolders, '
                'the other not',
            )
        if tr_classes is None:
            return FolderIndex(
                root,
                tr_top,
                [0] * len(tr_top),
                te_top,
                [0] * len(te_top),
                [],
                f'explicit split {train_dir.name}/ and {test_dir.name}/',
            )
        names = sorted(tr_classes)
        extra = sorted(set(te_classes) - set(names))
        if extra:
            raise describe(
                test_dir, f'class folder(s) {", ".join(extra)} not present in {train_dir}'
            )
        idx = {c: i for i, c in enumerate(names)}
        trf = [(f, idx[c]) for c in names for f in tr_classes[c]]
        tef = [(f, idx[c]) for c in sorted(te_classes) for f in te_classes[c]]
        return FolderIndex.from_pairs(
            root, trf, tef, names, f'explicit split {train_dir.name}/ and {test_dir.name}/'
        )
    classes, top = _scan(root)
    rule = f'no train/ + test/ subfolders: last {TEST_FRACTION:.0%} of files by path'
    if classes is None:
        tr, te = _tail_split(top)
        return FolderIndex(root, tr, [0] * len(tr), te, [0] * len(te), [], rule)
    names = sorted(classes)
    trf, tef = [], []
    for i, c in enumerate(names):
        tr, te = _tail_split(classes[c])
        trf += [(f, i) for f in tr]
        tef += [(f, i) for f in te]
    return FolderIndex.from_pairs(root, trf, tef, names, rule + ' (per class)')


def check_nonempty(index: FolderIndex) -> None:
    """DataError when the train split ends up empty."""
    if not index.train_files:
        raise DataError(f'{index.root}: no training images after the split ({index.split_rule})')
