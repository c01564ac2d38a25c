"""CelebA: aligned images (``img_align_celeba/``) with the 40 binary attributes.

Attribute file format (``list_attr_celeba.txt``, official): line 1 the image count, line 2 the 40
attribute names, then one row per image: ``000001.jpg -1  1  1 -1 ...`` with values ``1`` or ``-1``
separated by one or more spaces. CRLF and LF line endings are both accepted, blank lines are
ignored. Values are returned as int8 in +1/-1 (the official encoding);
``DataSource.attributes(encoding='01')`` converts to 0/1.

Which rows are used: the rows whose image exists in the image directory (images are matched by file
stem, so a PNG re-encode of the JPEGs works). Rows without an image are ignored (the shared subset
has 20,000 rows but 9,000 images); an image without a row is an error (or skipped with skip_bad).
A count line that disagrees with the rows present only gives a DataWarning.

Train/test split: with ``list_eval_partition.txt`` next to the attribute file (or in ``Eval/``), the
official partition is used: train = partition 0, test = partition 2; the official validation
partition (1) is not used. Without it, the rows are sorted by file name and the last 10% (rounded
up) are the test set -- this mirrors the official partition, which is also contiguous by file name.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from glow_tf.data.errors import describe, warn
from glow_tf.data.images import is_image_file

log = logging.getLogger('glow_tf.data')

ATTR_FILE = 'list_attr_celeba.txt'
PARTITION_FILE = 'list_eval_partition.txt'
IMAGE_DIRS = ('img_align_celeba', 'img_align_celeba_89x109', 'img_align_celeba_png')
TEST_FRACTION = 0.1

CELEBA_ATTRIBUTE_NAMES = (
    '5_o_Clock_Shadow',
    'Arched_Eyebrows',
    'Attractive',
    'Bags_Under_Eyes',
    'Bald',
    'Bangs',
    'Big_Lips',
    'Big_Nose',
    'Black_Hair',
    'Blond_Hair',
    'Blurry',
    'Brown_Hair',
    'Bushy_Eyebrows',
    'Chubby',
    'Double_Chin',
    'Eyeglasses',
    'Goatee',
    'Gray_Hair',
    'Heavy_Makeup',
    'High_Cheekbones',
    'Male',
    'Mouth_Slightly_Open',
    'Mustache',
    'Narrow_Eyes',
    'No_Beard',
    'Oval_Face',
    'Pale_Skin',
    'Pointy_Nose',
    'Receding_Hairline',
    'Rosy_Cheeks',
    'Sideburns',
    'Smiling',
    'Straight_Hair',
    'Wavy_Hair',
    'Wearing_Earrings',
    'Wearing_Hat',
    'Wearing_Lipstick',
    'Wearing_Necklace',
    'Wearing_Necktie',
    'Young',
)


def _lines(path: Path) -> list[str]:
    try:
        text = path.read_bytes().decode('utf-8')
    except FileNotFoundError:
        raise describe(path, 'file not found') from None
    except UnicodeDecodeError as e:
        raise describe(path, f'not a text file ({e})') from None
    return text.splitlines()  # handles \r\n, \n and \r


def read_celeba_attributes(path: str | os.PathLike) -> tuple[list[str], list[str], np.ndarray]:
    """Parse a CelebA attribute file.

    Returns ``(names [K], filenames [n], values int8 [n, K])`` with values in {+1, -1} (K = 40 for
    the official file). Raises DataError naming the file and the 1-based line number for a bad count
    line, an empty name line, a row with the wrong number of columns, a value other than 1/-1, or a
    duplicated file name. If the count line disagrees with the number of rows, warns (DataWarning)
    and uses the rows present.
    """
    path = Path(path)
    lines = _lines(path)
    if len(lines) < 2:
        raise describe(
            path,
            f'has {len(lines)} line(s); expected a count line, a line of attribute names and rows',
        )
    try:
        declared = int(lines[0].strip())
    except ValueError:
        raise describe(
            path, f'line 1: expected the number of images, found {lines[0].strip()[:40]!r}'
        ) from None
    names = lines[1].split()
    if not names:
        raise describe(path, 'line 2: expected the attribute names, found an empty line')
    k = len(names)
    filenames: list[str] = []
    rows: list[list[str]] = []
    linenos: list[int] = []
    for i, line in enumerate(lines[2:], start=3):
        tok = line.split()
        if not tok:
            continue
        if len(tok) != k + 1:
            raise describe(
                path, f'line {i}: {len(tok) - 1} attribute values for {tok[0]!r}, expected {k}'
            )
        filenames.append(tok[0])
        rows.append(tok[1:])
        linenos.append(i)
    if not rows:
        raise describe(path, 'no attribute rows after the header')
    arr = np.array(rows)
    pos, neg = arr == '1', arr == '-1'
    bad = ~(pos | neg)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise describe(
            path,
            f'line {linenos[r]}: value {str(arr[r, c])!r} for attribute {names[c]} of '
            f'{filenames[r]!r} is not 1 or -1',
        )
    if len(set(filenames)) != len(filenames):
        seen: dict[str, int] = {}
        for fn, ln in zip(filenames, linenos):
            if fn in seen:
                raise describe(path, f'line {ln}: {fn!r} already listed on line {seen[fn]}')
            seen[fn] = ln
    if declared != len(rows):
        warn(
            f'{path}: the count line says {declared} images but {len(rows)} rows are present; '
            'using the rows present'
        )
    values = np.where(pos, 1, -1).astype(np.int8)
    return names, filenames, values


def read_eval_partition(path: str | os.PathLike) -> dict[str, int]:
    """Parse ``list_eval_partition.txt`` (``000001.jpg 0`` rows) to {file stem: 0|1|2}."""
    path = Path(path)
    out: dict[str, int] = {}
    for i, line in enumerate(_lines(path), start=1):
        tok = line.split()
        if not tok:
            continue
        if len(tok) != 2 or tok[1] not in ('0', '1', '2'):
            raise describe(
                path, f'line {i}: expected "<file> <0|1|2>", found {line.strip()[:60]!r}'
            )
        out[Path(tok[0]).stem] = int(tok[1])
    if not out:
        raise describe(path, 'empty partition file')
    return out


@dataclass
class CelebAIndex:
    """Which files make up each split, with their attributes (int8 [n, K], +1/-1)."""

    image_dir: Path
    attr_file: Path
    names: list[str]
    train_files: list[str]
    test_files: list[str]
    train_attr: np.ndarray
    test_attr: np.ndarray
    skipped: list[tuple[str, str]] = field(default_factory=list)
    split_rule: str = ''


def _find(root: Path, name: str, subdirs: tuple[str, ...]) -> Path | None:
    for d in ('',) + subdirs:
        p = root / d / name if d else root / name
        if p.exists():
            return p
    return None


def scan_celeba(
    root: str | os.PathLike, image_dir: str | os.PathLike | None = None, skip_bad: bool = False
) -> CelebAIndex:
    """Match the attribute rows to the images present and split them (see the module docstring).

    ``root`` holds ``list_attr_celeba.txt`` (or ``Anno/list_attr_celeba.txt``) and one of
    ``img_align_celeba/``, ``img_align_celeba_89x109/``, ``img_align_celeba_png/`` (the one holding
    the most listed images wins; ``image_dir`` forces a choice).
    """
    root = Path(root)
    if not root.is_dir():
        raise describe(root, 'CelebA directory not found')
    attr_file = _find(root, ATTR_FILE, ('Anno',))
    if attr_file is None and image_dir is None and (root.parent / ATTR_FILE).is_file():
        root, image_dir = root.parent, root  # data_dir pointed at the image directory itself
        attr_file = root / ATTR_FILE
    if attr_file is None:
        raise describe(
            root, f'no {ATTR_FILE} here (or in Anno/); expected the official CelebA attribute file'
        )
    names, filenames, values = read_celeba_attributes(attr_file)
    stems = [Path(f).stem for f in filenames]
    row_of = {s: i for i, s in enumerate(stems)}

    if image_dir is not None:
        candidates = [Path(image_dir)]
    else:
        candidates = [p for d in IMAGE_DIRS for p in (root / d, root / 'Img' / d) if p.is_dir()]
    if not candidates:
        raise describe(root, f'no image directory; expected one of {", ".join(IMAGE_DIRS)}')
    listings = {}
    for c in candidates:
        try:
            listings[c] = sorted(f for f in os.listdir(c) if is_image_file(f))
        except OSError as e:
            raise describe(c, f'cannot list image directory ({e})') from None
    best = max(candidates, key=lambda c: sum(Path(f).stem in row_of for f in listings[c]))
    files = listings[best]
    if not files:
        raise describe(best, 'empty image directory: no image files found')

    skipped: list[tuple[str, str]] = []
    used: list[tuple[str, int]] = []  # (file name, attribute row)
    for f in files:
        r = row_of.get(Path(f).stem)
        if r is None:
            if not skip_bad:
                raise describe(best / f, f'image has no attribute row in {attr_file}')
            skipped.append((str(best / f), f'no attribute row in {attr_file.name}'))
            continue
        used.append((f, r))
    if not used:
        raise describe(best, f'none of the images has a row in {attr_file}')
    n_rows_without_image = len(filenames) - len(used)
    if n_rows_without_image:
        log.info(
            '%s: %d attribute rows have no image in %s and are ignored',
            attr_file,
            n_rows_without_image,
            best,
        )

    part_file = _find(root, PARTITION_FILE, ('Eval',))
    if part_file is not None:
        part = read_eval_partition(part_file)
        train, test = [], []
        for f, r in used:
            p = part.get(Path(f).stem)
            if p is None:
                if not skip_bad:
                    raise describe(part_file, f'no partition row for image {f}')
                skipped.append((str(best / f), f'no row in {part_file.name}'))
                continue
            if p == 0:
                train.append((f, r))
            elif p == 2:
                test.append((f, r))
        rule = f'official partition from {part_file} (train=0, test=2; validation=1 unused)'
    else:
        n_test = math.ceil(len(used) * TEST_FRACTION) if len(used) > 1 else 0
        train, test = used[: len(used) - n_test], used[len(used) - n_test :]
        rule = (
            f'no {PARTITION_FILE}: last {n_test} of {len(used)} images by file name '
            'are the test set'
        )
    return CelebAIndex(
        image_dir=best,
        attr_file=attr_file,
        names=list(names),
        train_files=[str(best / f) for f, _ in train],
        test_files=[str(best / f) for f, _ in test],
        train_attr=values[[r for _, r in train]].reshape(-1, len(names)),
        test_attr=values[[r for _, r in test]].reshape(-1, len(names)),
        skipped=skipped,
        split_rule=rule,
    )


def looks_like_celeba(d: Path) -> bool:
    """True if ``d`` holds a CelebA attribute file."""
    return _find(d, ATTR_FILE, ('Anno',)) is not None
