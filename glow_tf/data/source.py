"""DataSource: one dataset's train/test splits as tf.data pipelines.

Every pipeline yields ``(x, y)`` batches: ``x`` uint8 ``[batch, H, W, 3]``, ``y`` int32 ``[batch]``
(zeros when unlabeled), or ``(x, y, attr)`` with ``attr`` int8 ``[batch, K]`` (+1/-1) when
``with_attributes=True`` on a source with attributes (CelebA).

Sharding and randomness (Horovod: ``rank`` in ``[0, size)``):

* ``train``: every epoch is a fresh permutation computed with stateless ops from ``(seed, epoch)``,
  identical on all ranks whatever their global TF seed; rank ``r`` takes positions
  ``r, r+size, ...`` of it, so within an epoch the ranks see disjoint examples that together cover
  the split. TFRecord sources shard whole files by rank when there are at least ``size`` files
  (files are permuted per epoch the same way), else records. Flips and lsun_realnvp crops are
  stateless per (seed, rank, step). Batches are formed after repetition, so they may straddle
  epochs; ``drop_remainder=True``.
* ``test`` / ``ordered``: fixed file order, no shuffling, example ``i`` goes to rank ``i % size`` so
  every example is seen exactly once across ranks; the last batch may be smaller.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from glow_tf.data.errors import DataError

_SEED_MIX = 1_000_003


def _check_args(batch_size, rank, size):
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise DataError(f'batch_size={batch_size!r}: expected a positive integer')
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise DataError(f'size={size!r}: expected the number of Horovod ranks (>= 1)')
    if not isinstance(rank, (int, np.integer)) or not 0 <= rank < size:
        raise DataError(f'rank={rank!r}: expected 0 <= rank < size={size}')


def _flip(x, seed_pair):
    import tensorflow as tf

    coin = tf.random.stateless_uniform([tf.shape(x)[0]], seed=seed_pair) < 0.5
    return tf.where(coin[:, None, None, None], tf.reverse(x, axis=[2]), x)


def _seed_pair(seed, rank, step):
    import tensorflow as tf

    return tf.stack(
        [tf.constant(int(seed) * _SEED_MIX + int(rank), tf.int64), tf.cast(step, tf.int64)]
    )


def _prefetched(ds):
    """ds.prefetch(AUTOTUNE), the end of every pipeline here, without tf.data's autotuning model.

    The model (`tf.data.Options().autotune`) runs a background thread per iterator, and the
    iterator's destructor joins it: when the thread is asleep in its optimisation period the join
    waits for the rest of it. The trainer drops its iterator at every epoch's end and stalled
    there 5-15 s in 1-3 epochs of 8-10 (the README job, issue 21). These pipelines gather from
    memory or parse records; without the model, `num_parallel_calls=AUTOTUNE` stays at tf.data's
    starting value (its thread pool's size: one call per core, at most 16) and the prefetch
    buffer keeps its own autotuner, which needs no thread.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(tf.data.AUTOTUNE).with_options(options)


def _permutation(n, seed, epoch):
    """Stateless permutation of ``range(n)`` for ``epoch`` (identical on every rank)."""
    import tensorflow as tf

    keys = tf.random.stateless_uniform(
        [n], seed=tf.stack([tf.constant(int(seed), tf.int64), tf.cast(epoch, tf.int64)])
    )
    return tf.argsort(keys, stable=True)


@dataclass
class DataSource:
    """A dataset with a train and a test split (see the module docstring for the pipelines).

    Attributes: ``image_shape`` (H, W, 3); ``n_train`` / ``n_test`` (after the n_train / n_test
    limits and any skipped files); ``n_classes`` (0 when unlabeled); ``attribute_names`` (CelebA:
    the 40 names, else None); ``class_names``; ``skipped`` -- ``(path, reason)`` of every file
    dropped because ``skip_bad=True``; ``split_rule`` -- how train/test were chosen.
    """

    problem: str
    image_shape: tuple[int, int, int]
    n_train: int
    n_test: int
    n_classes: int = 0
    attribute_names: list[str] | None = None
    class_names: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    split_rule: str = ''
    location: str = ''

    # -- to implement ------------------------------------------------------------------------
    def train(
        self,
        batch_size: int,
        rank: int = 0,
        size: int = 1,
        seed: int = 0,
        flip: bool = False,
        repeat: bool = True,
        shuffle: bool = True,
        with_attributes: bool = False,
    ):
        """Training batches ``(uint8 [batch, H, W, 3], int32 [batch])`` for this rank;
        prefetched."""
        raise NotImplementedError

    def ordered(
        self,
        split: str,
        batch_size: int,
        rank: int = 0,
        size: int = 1,
        with_attributes: bool = False,
        drop_remainder: bool = False,
    ):
        """Deterministic, unshuffled batches of ``split`` ('train' or 'test'); example i -> rank
        i % size."""
        raise NotImplementedError

    def _attributes(self, split: str) -> np.ndarray | None:
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------------
    def test(self, batch_size: int, rank: int = 0, size: int = 1, with_attributes: bool = False):
        """Test batches in a fixed order; each test example appears exactly once across ranks."""
        return self.ordered('test', batch_size, rank, size, with_attributes=with_attributes)

    def count(self, split: str) -> int:
        """Number of examples in ``split``."""
        return self.n_train if self._split(split) == 'train' else self.n_test

    def attributes(self, split: str = 'train', encoding: str = 'pm1') -> np.ndarray | None:
        """Attributes of ``split`` in :meth:`ordered` order: int8 ``[n, K]``; None without
        attributes.

        ``encoding='pm1'`` gives +1/-1 (CelebA's own encoding), ``'01'`` gives 1/0.
        """
        if encoding not in ('pm1', '01'):
            raise DataError(f"encoding={encoding!r}: expected 'pm1' (+1/-1) or '01'")
        if not self.attribute_names:
            return None
        a = self._attributes(self._split(split))
        return a if encoding == 'pm1' else (a > 0).astype(np.int8)

    @property
    def image_size(self) -> int:
        return self.image_shape[0]

    @staticmethod
    def _split(split: str) -> str:
        if split in ('train',):
            return 'train'
        if split in ('test', 'validation', 'valid', 'eval'):
            return 'test'
        raise DataError(f"split={split!r}: expected 'train' or 'test'")

    def _need_attributes(self, with_attributes):
        if with_attributes and not self.attribute_names:
            raise DataError(
                f'with_attributes=True but {self.problem} at {self.location} has no attributes'
            )


@dataclass
class ArraySource(DataSource):
    """A source held in memory as numpy arrays (MNIST, CIFAR-10, image folders, CelebA folders).

    ``arrays[split] = (x uint8 [n, H, W, 3], y int32 [n], attr int8 [n, K] or None)``.
    """

    arrays: dict = field(default_factory=dict, repr=False)
    _tensors: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def _attributes(self, split):
        return self.arrays[split][2]

    def numpy(self, split: str = 'train') -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The in-memory ``(x, y, attr)`` of ``split`` in ordered() order (read-only views)."""
        return self.arrays[self._split(split)]

    def _gather(self, split, with_attributes):
        """The split's arrays as tensors [x, y(, attr)], converted once (a pipeline per epoch
        would otherwise copy the whole split every epoch)."""
        import tensorflow as tf

        if split not in self._tensors:
            x, y, a = self.arrays[split]
            self._tensors[split] = [tf.constant(x), tf.constant(y)]
            if a is not None:
                self._tensors[split].append(tf.constant(a))
        return self._tensors[split][: 3 if with_attributes else 2]

    def train(
        self,
        batch_size,
        rank=0,
        size=1,
        seed=0,
        flip=False,
        repeat=True,
        shuffle=True,
        with_attributes=False,
    ):
        import tensorflow as tf

        _check_args(batch_size, rank, size)
        self._need_attributes(with_attributes)
        n = self.n_train
        per_rank = len(range(rank, n, size))
        if per_rank == 0:
            raise DataError(f'n_train={n} is too small for size={size} ranks ({self.location})')
        if not repeat and per_rank < batch_size:
            raise DataError(
                f'batch_size={batch_size} is larger than the {per_rank} training examples of rank '
                f'{rank} (n_train={n}, size={size}) and repeat=False: no full batch'
            )
        tensors = self._gather('train', with_attributes)

        def epoch_indices(epoch):
            idx = _permutation(n, seed, epoch) if shuffle else tf.range(n, dtype=tf.int32)
            return tf.data.Dataset.from_tensor_slices(idx[rank::size])

        epochs = tf.data.Dataset.counter() if repeat else tf.data.Dataset.range(1)
        ds = epochs.flat_map(epoch_indices).batch(batch_size, drop_remainder=True)

        def fetch(step, idx):
            out = [tf.gather(t, idx) for t in tensors]
            if flip:
                out[0] = _flip(out[0], _seed_pair(seed, rank, step))
            return tuple(out)

        ds = ds.enumerate().map(fetch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return _prefetched(ds)

    def ordered(
        self, split, batch_size, rank=0, size=1, with_attributes=False, drop_remainder=False
    ):
        import tensorflow as tf

        _check_args(batch_size, rank, size)
        self._need_attributes(with_attributes)
        split = self._split(split)
        tensors = self._gather(split, with_attributes)
        idx = tf.range(self.count(split), dtype=tf.int32)[rank::size]
        ds = tf.data.Dataset.from_tensor_slices(idx).batch(
            batch_size, drop_remainder=drop_remainder
        )
        ds = ds.map(
            lambda i: tuple(tf.gather(t, i) for t in tensors),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        return _prefetched(ds)


@dataclass
class TFRecordSource(DataSource):
    """A source streamed from TFRecord shards in the original Glow format.

    ``files[split]``: sorted shard paths; ``totals[split]``: records in all shards (before limits);
    ``crop``: True for lsun_realnvp (random ``image_size`` crops of the stored, larger images for
    training, centre crops for evaluation); ``has_label`` / ``attr_len``: features present.
    """

    files: dict = field(default_factory=dict, repr=False)
    totals: dict = field(default_factory=dict)
    crop: bool = False
    has_label: bool = True
    attr_len: int = 0
    shuffle_buffer: int = 4096
    _attr_cache: dict = field(default_factory=dict, repr=False)

    def _with_names(self, files_ds, cycle):
        import tensorflow as tf

        def read(f):
            return tf.data.TFRecordDataset(f).map(lambda r: (r, f))

        if cycle == 1:  # strictly sequential file order
            return files_ds.interleave(read, cycle_length=1, block_length=1)
        return files_ds.interleave(
            read,
            cycle_length=cycle,
            block_length=1,
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )

    def _sequential(self, split):
        """Records of ``split`` in file order, limited to n_train / n_test, as (record, file
        name)."""
        import tensorflow as tf

        ds = self._with_names(
            tf.data.Dataset.from_tensor_slices([str(p) for p in self.files[split]]), 1
        )
        return ds.take(self.count(split))

    def _parser(self, crop_mode, with_attributes, seed=0, rank=0):
        import tensorflow as tf

        s = self.image_size
        spec = {
            'shape': tf.io.FixedLenFeature([3], tf.int64),
            'data': tf.io.FixedLenFeature([], tf.string),
        }
        if self.has_label:
            spec['label'] = tf.io.FixedLenFeature([1], tf.int64)
        if with_attributes:
            spec['attr'] = tf.io.FixedLenFeature([self.attr_len], tf.int64)
        want = f'[{s}, {s}, 3]' if crop_mode == 'none' else f'[>={s}, >={s}, 3]'
        n_classes = self.n_classes

        def parse(step, record, fname):
            f = tf.io.parse_single_example(record, spec)
            shape = f['shape']
            raw = tf.io.decode_raw(f['data'], tf.uint8)
            n_bytes = tf.cast(tf.size(raw), tf.int64)
            ok = tf.logical_and(tf.equal(n_bytes, tf.reduce_prod(shape)), tf.equal(shape[2], 3))
            if crop_mode == 'none':
                ok = tf.logical_and(ok, tf.reduce_all(tf.equal(shape[:2], s)))
            else:
                ok = tf.logical_and(ok, tf.reduce_all(shape[:2] >= s))
            label = tf.cast(f['label'][0], tf.int32) if self.has_label else tf.constant(0, tf.int32)
            checks = [
                tf.debugging.Assert(
                    ok,
                    [
                        'glow_tf.data: bad TFRecord example in',
                        fname,
                        'shape',
                        shape,
                        'data bytes',
                        n_bytes,
                        f'expected shape {want}, raw uint8',
                    ],
                )
            ]
            if n_classes:
                checks.append(
                    tf.debugging.Assert(
                        tf.logical_and(label >= 0, label < n_classes),
                        ['glow_tf.data: label', label, f'outside 0..{n_classes - 1} in', fname],
                    )
                )
            with tf.control_dependencies(checks):
                img = tf.reshape(raw, shape)
            if crop_mode == 'random':
                img = tf.image.stateless_random_crop(
                    img, [s, s, 3], seed=_seed_pair(seed, rank, step)
                )
            elif crop_mode == 'centre':
                top, left = (shape[0] - s) // 2, (shape[1] - s) // 2
                img = tf.slice(img, tf.stack([top, left, tf.constant(0, tf.int64)]), [s, s, 3])
            out = [tf.reshape(img, [s, s, 3]), label]
            if with_attributes:
                out.append(
                    tf.where(f['attr'] > 0, tf.constant(1, tf.int8), tf.constant(-1, tf.int8))
                )
            return tuple(out)

        return parse

    def train(
        self,
        batch_size,
        rank=0,
        size=1,
        seed=0,
        flip=False,
        repeat=True,
        shuffle=True,
        with_attributes=False,
    ):
        import tensorflow as tf

        _check_args(batch_size, rank, size)
        self._need_attributes(with_attributes)
        files = [str(p) for p in self.files['train']]
        limited = self.n_train < self.totals['train']
        if self.n_train < size:
            raise DataError(
                f'n_train={self.n_train} is too small for size={size} ranks ({self.location})'
            )
        if limited or len(files) < size:
            # record-level sharding of a deterministic stream: every rank reads it all, keeps its
            # part
            ds = self._sequential('train').shard(size, rank)
            if repeat:
                ds = ds.repeat()
        else:
            n_files = len(files)
            files_t = tf.constant(files)

            def epoch_files(epoch):
                order = (
                    _permutation(n_files, seed, epoch)
                    if shuffle
                    else tf.range(n_files, dtype=tf.int32)
                )
                mine = tf.gather(files_t, order)[rank::size]
                return self._with_names(tf.data.Dataset.from_tensor_slices(mine), min(4, n_files))

            epochs = tf.data.Dataset.counter() if repeat else tf.data.Dataset.range(1)
            ds = epochs.flat_map(epoch_files)
        if shuffle:
            ds = ds.shuffle(
                min(self.shuffle_buffer, max(self.n_train, 1)),
                seed=int(seed) * _SEED_MIX + int(rank),
                reshuffle_each_iteration=True,
            )
        parse = self._parser('random' if self.crop else 'none', with_attributes, seed, rank)
        ds = ds.enumerate().map(
            lambda i, rf: parse(i, rf[0], rf[1]), num_parallel_calls=tf.data.AUTOTUNE
        )
        ds = ds.batch(batch_size, drop_remainder=True)
        if flip:
            ds = ds.enumerate().map(
                lambda step, b: (_flip(b[0], _seed_pair(seed + 1, rank, step)),) + tuple(b[1:])
            )
        return _prefetched(ds)

    def ordered(
        self, split, batch_size, rank=0, size=1, with_attributes=False, drop_remainder=False
    ):
        import tensorflow as tf

        _check_args(batch_size, rank, size)
        self._need_attributes(with_attributes)
        split = self._split(split)
        parse = self._parser('centre' if self.crop else 'none', with_attributes)
        ds = self._sequential(split).shard(size, rank)
        ds = ds.map(
            lambda r, f: parse(0, r, f), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
        return _prefetched(ds.batch(batch_size, drop_remainder=drop_remainder))

    def _attributes(self, split):
        if split not in self._attr_cache:
            import tensorflow as tf

            spec = {'attr': tf.io.FixedLenFeature([self.attr_len], tf.int64)}
            ds = self._sequential(split).map(
                lambda r, f: tf.io.parse_single_example(r, spec)['attr']
            )
            rows = [a for a in ds.batch(4096).as_numpy_iterator()]
            arr = np.concatenate(rows) if rows else np.zeros((0, self.attr_len), np.int64)
            self._attr_cache[split] = np.where(arr > 0, 1, -1).astype(np.int8)
        return self._attr_cache[split]


def describe_source(src: DataSource) -> str:
    """One-line summary for logs."""
    return (
        f'{src.problem} at {src.location}: {src.n_train} train / {src.n_test} test images of '
        f'{src.image_shape}, {src.n_classes} classes'
        + (f', {len(src.attribute_names)} attributes' if src.attribute_names else '')
        + (f', {len(src.skipped)} bad files skipped' if src.skipped else '')
    )
