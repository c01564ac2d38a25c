"""Convert an image folder or CelebA to TFRecord shards in the original Glow format.

Logic behind ``data/convert_to_tfrecords.py``. Output (``LL = int(log2(res))``)::

    OUT/train/train-rLL-s-00000-of-NNNNN.tfrecords ...
    OUT/validation/validation-rLL-s-00000-of-MMMMM.tfrecords ...
    OUT/glow_tf_dataset.json      # res, n_classes, class_names, attribute_names, counts

Images go through exactly the same decoding as ``load_source('folder' | 'celeba')`` (centre crop,
area downsample, strict colour rules), are assigned to shards by a seeded random partition (like the
original exporter) and keep their order inside a shard. Read the result back with
``load_source('tfr', OUT)`` (or 'celeba' / 'celeba-tfr' for CelebA, which also yields attributes).
Each shard is written to a temporary name and renamed when complete.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from glow_tf.data.celeba import scan_celeba
from glow_tf.data.errors import DataError, describe, summarise_skipped
from glow_tf.data.folder import check_nonempty, scan_folder
from glow_tf.data.images import load_image_file
from glow_tf.data.tfrecords import META_FILE, assign_shards, make_example, res_log2, shard_path
from glow_tf.fileio import atomic_path
from glow_tf.progress import progress_bar


def convert(
    kind: str,
    src: str | os.PathLike,
    out: str | os.PathLike,
    res: int,
    shards: int,
    test_shards: int = 1,
    skip_bad: bool = False,
    seed: int = 0,
    image_dir: str | None = None,
    overwrite: bool = False,
    quiet: bool = True,
    progress: bool = False,
) -> dict:
    """Write ``kind`` ('folder' or 'celeba') from ``src`` as shards under ``out``; returns the
    metadata.

    ``progress``: a progress bar per split on stderr (images decoded and written).

    Raises DataError for bad arguments, an output that already has shards at this resolution (unless
    ``overwrite``), or a bad image (unless ``skip_bad``, which skips and counts it in the metadata).
    """
    import tensorflow as tf

    if kind not in ('folder', 'celeba'):
        raise DataError(f'kind={kind!r}: expected folder or celeba')
    for name, v in (('res', res), ('shards', shards), ('test_shards', test_shards)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise DataError(f'--{name}={v!r}: expected a positive integer')
    if res != 2 ** res_log2(res):
        print(
            f'note: res={res} is not a power of two; files are named r{res_log2(res):02d}',
            file=sys.stderr,
        )
    src, out = Path(src), Path(out)
    meta: dict = {'format': 'glow-tfrecords', 'res': int(res), 'source': str(src), 'kind': kind}
    if kind == 'folder':
        idx = scan_folder(src)
        check_nonempty(idx)
        splits = {
            'train': (idx.train_files, idx.train_labels, None),
            'validation': (idx.test_files, idx.test_labels, None),
        }
        meta.update(
            n_classes=len(idx.class_names),
            class_names=idx.class_names,
            attribute_names=None,
            split_rule=idx.split_rule,
        )
        skipped = []
    else:
        idx = scan_celeba(src, image_dir=image_dir, skip_bad=skip_bad)
        splits = {
            'train': (idx.train_files, [0] * len(idx.train_files), idx.train_attr),
            'validation': (idx.test_files, [0] * len(idx.test_files), idx.test_attr),
        }
        meta.update(
            n_classes=0, class_names=[], attribute_names=idx.names, split_rule=idx.split_rule
        )
        skipped = list(idx.skipped)
    if not splits['validation'][0]:
        raise describe(src, 'no images for the validation split; add a test/ folder or more images')
    lg = res_log2(res)
    for split in splits:
        d = out / split
        if (
            d.is_dir()
            and any(p.name.startswith(f'{split}-r{lg:02d}-') for p in d.iterdir())
            and not overwrite
        ):
            raise describe(
                d, f'already holds r{lg:02d} shards; pass --overwrite or choose another output'
            )

    counts = {}
    done: list[Path] = []  # shards completed by this call: removed again if a later one fails
    try:
        for split, (files, labels, attrs) in splits.items():
            n_sh = shards if split == 'train' else test_shards
            (out / split).mkdir(parents=True, exist_ok=True)
            for p in (out / split).glob(f'{split}-r{lg:02d}-s-*.tfrecords'):
                p.unlink()  # only reached with overwrite=True
            written = 0
            bar = progress_bar(total=len(files), desc=split, enabled=progress, unit='img')
            for s, ids in enumerate(assign_shards(len(files), n_sh, seed)):
                path = shard_path(out, split, res, s, n_sh)
                with atomic_path(path) as tmp:
                    with tf.io.TFRecordWriter(str(tmp)) as w:
                        for i in ids:
                            try:
                                img = load_image_file(files[i], res, strict=True)
                            except DataError as e:
                                if not skip_bad:
                                    raise
                                skipped.append((str(files[i]), str(e).split(': ', 1)[-1]))
                                continue
                            w.write(
                                make_example(img, labels[i], None if attrs is None else attrs[i])
                            )
                            written += 1
                            bar.update(1)
                done.append(path)
                if not quiet:
                    bar.write(f'{path}: {len(ids)} images', file=sys.stderr)
            bar.close()
            counts[split] = written
    except BaseException:
        for p in done:
            p.unlink(missing_ok=True)
        raise
    meta['counts'] = counts
    meta['skipped'] = len(skipped)
    if skipped:
        print(
            'warning: ' + summarise_skipped(skipped, sum(len(v[0]) for v in splits.values()), src),
            file=sys.stderr,
        )
    (out / META_FILE).write_text(json.dumps(meta, indent=1))
    return meta


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python data/convert_to_tfrecords.py {folder,celeba} SRC OUT --res 64 --shards 8``."""
    p = argparse.ArgumentParser(
        description='Convert an image folder or CelebA to TFRecord shards in the '
        'original Glow format (shape / data / label features).'
    )
    p.add_argument('kind', choices=('folder', 'celeba'))
    p.add_argument(
        'src', help='image folder, or CelebA directory (list_attr_celeba.txt + img_align_celeba/)'
    )
    p.add_argument(
        'out', help='output directory (gets train/, validation/ and glow_tf_dataset.json)'
    )
    p.add_argument('--res', type=int, required=True, help='image size (square), e.g. 64')
    p.add_argument('--shards', type=int, default=8, help='number of train shards (default 8)')
    p.add_argument(
        '--test_shards', type=int, default=1, help='number of validation shards (default 1)'
    )
    p.add_argument('--seed', type=int, default=0, help='seed of the image -> shard assignment')
    p.add_argument(
        '--skip_bad', action='store_true', help='skip (and count) bad images instead of failing'
    )
    p.add_argument('--image_dir', help='CelebA: image directory to use')
    p.add_argument(
        '--overwrite', action='store_true', help='replace existing shards at this resolution'
    )
    p.add_argument(
        '--no_progress', dest='progress', action='store_false', help='no progress bars (on stderr)'
    )
    args = p.parse_args(argv)
    try:
        meta = convert(
            args.kind,
            args.src,
            args.out,
            args.res,
            args.shards,
            args.test_shards,
            args.skip_bad,
            args.seed,
            args.image_dir,
            args.overwrite,
            quiet=False,
            progress=args.progress,
        )
    except DataError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(
        f'wrote {meta["counts"]["train"]} train / '
        f'{meta["counts"]["validation"]} validation images to '
        f'{args.out} (skipped {meta["skipped"]})'
    )
    return 0
