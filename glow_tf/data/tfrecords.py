"""TFRecord shards in the original Glow release format.

Layout: ``<root>/train/`` and ``<root>/validation/`` (``test/`` is also accepted for the second),
each holding ``<prefix>-r<LL>-s-<SSSSS>-of-<NNNNN>.tfrecords`` where ``LL = int(log2(resolution))``
(two digits), ``SSSSS`` the 0-based shard index and ``NNNNN`` the shard count (the original writers
used 4 digits, this package writes 5; both are read). Every record is a ``tf.train.Example`` with

* ``shape``: int64 list ``[h, w, c]`` (c = 3),
* ``data``:  bytes, the raw uint8 image in HWC order (``h * w * c`` bytes),
* ``label``: int64 list ``[label]`` (0 when unlabeled; optional when reading),
* ``attr``:  int64 list of attributes (optional; CelebA: 40 values, written as +1/-1).

Before any training, every shard's record framing is checked (a truncated file, or one that is not
a TFRecord, raises DataError naming it) and its first example is parsed and checked. Problems deeper
inside a shard (a record of the wrong size, or a payload that fails its checksum inside an intact
frame) stop the tf.data pipeline; the trainer then re-reads the shards once with
`describe_read_error` and reports a DataError naming the shard and the record number.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glow_tf.data.errors import DataError, describe

SHARD_RE = re.compile(r'^(?P<prefix>.+)-r(?P<res>\d{2})-s-(?P<idx>\d+)-of-(?P<n>\d+)\.tfrecords$')
TEST_SPLIT_DIRS = ('validation', 'test', 'valid')
META_FILE = 'glow_tf_dataset.json'


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data`` (pure Python; used only on 8-byte record headers)."""
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    """The masked CRC stored in TFRecord framing."""
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def scan_tfrecord_file(
    path: str | os.PathLike, first_record: bool = False
) -> tuple[int, bytes | None]:
    """Walk the record framing of one TFRecord file without reading the payloads.

    Returns ``(number of records, payload of the first record or None)``. Raises DataError naming
    the file when a length header fails its checksum (not a TFRecord file / corrupt) or a record
    runs past the end of the file (truncated).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        f = open(path, 'rb')
    except OSError as e:
        raise describe(path, f'cannot read TFRecord file ({e})') from None
    n, pos, first = 0, 0, None
    with f:
        while pos < size:
            header = f.read(12)
            if len(header) < 12:
                raise describe(
                    path,
                    f'truncated TFRecord file: {size - pos} stray bytes after record {n} '
                    f'(at byte {pos})',
                )
            length, crc = struct.unpack('<QI', header)
            if masked_crc(header[:8]) != crc:
                raise describe(
                    path, f'not a TFRecord file or corrupt record header at byte {pos} (record {n})'
                )
            end = pos + 12 + length + 4
            if end > size:
                raise describe(
                    path,
                    f'truncated TFRecord file: record {n} at byte {pos} needs {length} bytes, '
                    f'the file ends {end - size} bytes early',
                )
            if first_record and n == 0:
                first = f.read(length)
            f.seek(end)
            pos, n = end, n + 1
    return n, first


@dataclass
class ExampleInfo:
    """What the first example of a shard holds."""

    shape: tuple[int, int, int]
    has_label: bool
    attr_len: int


def inspect_example(blob: bytes, where: str) -> ExampleInfo:
    """Parse one serialized Example and check it has the Glow features; DataError naming
    ``where``."""
    from tensorflow.core.example import example_pb2

    try:
        ex = example_pb2.Example.FromString(blob)
    except Exception as e:
        raise DataError(f'{where}: record is not a tf.train.Example ({e})') from None
    feat = ex.features.feature
    for k in ('shape', 'data'):
        if k not in feat:
            raise DataError(
                f'{where}: example has no {k!r} feature (has {sorted(feat)}); expected the Glow '
                'features shape, data, label'
            )
    shape = tuple(feat['shape'].int64_list.value)
    if len(shape) != 3 or shape[2] != 3 or min(shape) < 1:
        raise DataError(f'{where}: shape feature is {list(shape)}, expected [h, w, 3]')
    data = feat['data'].bytes_list.value
    if len(data) != 1 or len(data[0]) != shape[0] * shape[1] * shape[2]:
        got = len(data[0]) if len(data) == 1 else f'{len(data)} byte strings'
        raise DataError(
            f'{where}: data feature has {got} bytes, expected {shape[0] * shape[1] * shape[2]} '
            f'for shape {list(shape)} (raw uint8)'
        )
    has_label = 'label' in feat and len(feat['label'].int64_list.value) == 1
    attr_len = len(feat['attr'].int64_list.value) if 'attr' in feat else 0
    return ExampleInfo(shape, has_label, attr_len)


def find_split_dir(root: Path, split: str) -> Path:
    """``root/train`` for 'train'; ``root/validation`` (or test/, valid/) for 'test'."""
    names = ('train',) if split == 'train' else TEST_SPLIT_DIRS
    for n in names:
        if (root / n).is_dir():
            return root / n
    raise describe(
        root,
        f'no {" or ".join(n + "/" for n in names)} directory of TFRecord shards; expected the '
        'original Glow layout <root>/train/*.tfrecords and <root>/validation/*.tfrecords',
    )


def find_shards(split_dir: Path, res_log2: int) -> list[Path]:
    """All shards of resolution ``2**res_log2`` in ``split_dir``, sorted; DataError if none or
    some missing."""
    all_files = sorted(p for p in split_dir.iterdir() if p.name.endswith('.tfrecords'))
    if not all_files:
        raise describe(split_dir, 'empty directory: no *.tfrecords files')
    groups: dict[tuple[str, int], dict[int, Path]] = {}
    available = set()
    for p in all_files:
        m = SHARD_RE.match(p.name)
        if not m:
            raise describe(p, 'file name does not follow <prefix>-rLL-s-SSSSS-of-NNNNN.tfrecords')
        available.add(int(m['res']))
        if int(m['res']) == res_log2:
            groups.setdefault((m['prefix'], int(m['n'])), {})[int(m['idx'])] = p
    if not groups:
        have = ', '.join(f'r{r:02d} ({2**r}px)' for r in sorted(available))
        raise describe(
            split_dir, f'no shards for resolution r{res_log2:02d} ({2**res_log2}px); found {have}'
        )
    out = []
    for (prefix, n), shards in sorted(groups.items()):
        missing = sorted(set(range(n)) - set(shards))
        if missing or len(shards) != n:
            shown = ', '.join(str(i) for i in missing[:10]) + (' ...' if len(missing) > 10 else '')
            raise describe(
                split_dir,
                f'{prefix}-r{res_log2:02d}: {len(shards)} of {n} shards present, missing '
                f'shard(s) {shown or "(bad indices)"}',
            )
        out.extend(shards[i] for i in range(n))
    return out


def scan_shards(files: list[Path], cache_dir: Path | None = None) -> tuple[list[int], ExampleInfo]:
    """Check every shard's framing and first example. Returns per-file record counts and the info of
    the first example (all shards must agree on channels / label / attribute presence).

    Counts are cached in ``cache_dir/tfrecord_counts/`` keyed by path, size and mtime, so a large
    dataset is only walked once.
    """
    key_file = None
    if cache_dir is not None:
        h = hashlib.sha1()
        for p in files:
            st = p.stat()
            h.update(f'{p.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\0'.encode())
        key_file = cache_dir / 'tfrecord_counts' / f'{h.hexdigest()}.json'
        if key_file.is_file():
            try:
                meta = json.loads(key_file.read_text())
                return meta['counts'], ExampleInfo(
                    tuple(meta['shape']), meta['has_label'], meta['attr_len']
                )
            except (ValueError, KeyError, OSError):
                pass
    counts, info = [], None
    for p in files:
        n, first = scan_tfrecord_file(p, first_record=True)
        counts.append(n)
        if first is None:
            continue
        this = inspect_example(first, f'{p} (record 0)')
        if info is None:
            info = this
        elif (this.has_label, this.attr_len) != (info.has_label, info.attr_len):
            raise describe(
                p,
                f'features differ from {files[0].name}: label={this.has_label}, '
                f'attr={this.attr_len} values vs label={info.has_label}, attr={info.attr_len}',
            )
    if info is None:
        raise DataError(f'{files[0].parent}: all {len(files)} shards are empty (0 records)')
    if key_file is not None:
        from glow_tf.fileio import atomic_write_bytes

        payload = json.dumps(
            {
                'counts': counts,
                'shape': list(info.shape),
                'has_label': info.has_label,
                'attr_len': info.attr_len,
            }
        ).encode()
        try:
            atomic_write_bytes(key_file, lambda f: f.write(payload))
        except OSError:
            pass
    return counts, info


def read_meta(root: Path) -> dict:
    """The optional ``glow_tf_dataset.json`` written by convert_to_tfrecords.py ({} if absent)."""
    p = root / META_FILE
    if not p.is_file():
        return {}
    try:
        meta = json.loads(p.read_text())
    except ValueError as e:
        raise describe(p, f'invalid JSON ({e})') from None
    if not isinstance(meta, dict):
        raise describe(p, 'expected a JSON object')
    return meta


def looks_like_tfrecords(d: Path) -> bool:
    """True if ``d/train`` holds ``*.tfrecords`` files."""
    t = d / 'train'
    return t.is_dir() and any(p.name.endswith('.tfrecords') for p in t.iterdir())


def res_log2(image_size: int) -> int:
    """The ``LL`` of the file names for a resolution: ``int(log2(image_size))`` like the
    original."""
    return int(math.log2(image_size))


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------


def make_example(image: np.ndarray, label: int = 0, attr: np.ndarray | None = None) -> bytes:
    """Serialize one ``uint8 [h, w, 3]`` image (+ label, optional attributes) as a Glow Example."""
    import tensorflow as tf

    image = np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim != 3 or image.shape[2] != 3:
        raise DataError(f'make_example: image shape {image.shape}, expected [h, w, 3]')
    feature = {
        'shape': tf.train.Feature(int64_list=tf.train.Int64List(value=list(image.shape))),
        'data': tf.train.Feature(bytes_list=tf.train.BytesList(value=[image.tobytes()])),
        'label': tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
    }
    if attr is not None:
        feature['attr'] = tf.train.Feature(
            int64_list=tf.train.Int64List(value=[int(a) for a in attr])
        )
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def shard_path(out_dir: Path, split: str, image_size: int, shard: int, n_shards: int) -> Path:
    """``out_dir/<split>/<split>-rLL-s-SSSSS-of-NNNNN.tfrecords``."""
    return (
        out_dir
        / split
        / f'{split}-r{res_log2(image_size):02d}-s-{shard:05d}-of-{n_shards:05d}.tfrecords'
    )


def assign_shards(n: int, n_shards: int, seed: int) -> list[np.ndarray]:
    """Seeded random partition of ``range(n)`` into ``n_shards`` near-equal sorted index arrays."""
    perm = np.random.default_rng(seed).permutation(n)
    return [np.sort(p) for p in np.array_split(perm, n_shards)]


def find_bad_record(path: str | os.PathLike) -> tuple[int, str] | None:
    """``(record index, reason)`` of the first record of one shard that TensorFlow cannot read
    (payload checksum, framing) or that is not a Glow example; None if the whole shard is fine.
    Reads the shard once: meant for diagnosing an error, not for every run."""
    import tensorflow as tf

    n = 0
    try:
        for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
            inspect_example(record, f'{path} record {n}')
            n += 1
    except DataError as e:
        return n, str(e).split(': ', 1)[-1]
    except tf.errors.OpError as e:
        return n, (e.message or type(e).__name__).strip().splitlines()[0]
    return None


def describe_read_error(files: dict | None, error: Exception) -> DataError:
    """A DataError for a tf.data error met while training: names the shard and record at fault
    (found by re-reading the shards of ``files`` {split: [paths]}), else quotes the error."""
    msg = (getattr(error, 'message', None) or str(error)).strip().splitlines()[0]
    for paths in (files or {}).values():
        for path in paths:
            bad = find_bad_record(path)
            if bad is not None:
                return describe(
                    path,
                    f'record {bad[0]} is corrupt ({bad[1][:200]}); regenerate the '
                    'shard (data/convert_to_tfrecords.py) or remove it',
                )
    return DataError(f'reading the training data failed: {msg[:300]}')
