"""tf.data pipelines of in-memory sources: Horovod sharding, seeded shuffling, flips, eval order."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from glow_tf.data import ArraySource, DataError


def _source(n_train=12, n_test=7, size=4, with_attr=False):
    """Images whose pixel [0, 0, 0] is the example id and channel 1 is the column index (for
    flips)."""

    def make(n, offset):
        x = np.zeros((n, size, size, 3), np.uint8)
        x[:, :, :, 0] = (np.arange(n) + offset)[:, None, None]
        x[:, :, :, 1] = np.arange(size)[None, None, :]
        y = ((np.arange(n) + offset) % 5).astype(np.int32)
        a = (
            np.where(np.arange(n * 2).reshape(n, 2) % 3, 1, -1).astype(np.int8)
            if with_attr
            else None
        )
        return x, y, a

    return ArraySource(
        problem='toy',
        image_shape=(size, size, 3),
        n_train=n_train,
        n_test=n_test,
        n_classes=5,
        attribute_names=['a', 'b'] if with_attr else None,
        location='toy',
        arrays={'train': make(n_train, 0), 'test': make(n_test, 100)},
    )


def _ids(ds, k=None):
    out = []
    for i, (x, y) in enumerate(ds):
        if k is not None and i >= k:
            break
        out.append(x.numpy()[:, 0, 0, 0].astype(int))
    return np.concatenate(out) if out else np.zeros(0, int)


def test_train_ranks_disjoint_and_cover_each_epoch():
    src = _source(n_train=12)
    per_rank = [_ids(src.train(2, rank=r, size=3, seed=5, repeat=False)) for r in range(3)]
    assert [len(p) for p in per_rank] == [4, 4, 4]
    assert sorted(np.concatenate(per_rank)) == list(range(12))
    # across many epochs with repeat, every epoch stays disjoint and complete
    streams = [
        _ids(src.train(4, rank=r, size=3, seed=5), k=3) for r in range(3)
    ]  # 3 epochs of 4 per rank
    epochs = [np.concatenate([s[4 * e : 4 * e + 4] for s in streams]) for e in range(3)]
    for e in epochs:
        assert sorted(e) == list(range(12))
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled each epoch


def test_train_order_ignores_global_tf_seed():
    src = _source(n_train=12)
    tf.random.set_seed(1)
    a = _ids(src.train(3, rank=0, size=2, seed=9, repeat=False))
    tf.random.set_seed(12345)  # e.g. a trainer seeding TF with its rank
    b = _ids(src.train(3, rank=1, size=2, seed=9, repeat=False))
    assert len(set(a) & set(b)) == 0 and sorted(np.concatenate([a, b])) == list(range(12))


def test_seed_controls_order():
    src = _source(n_train=30)
    a = _ids(src.train(5, seed=0), k=6)
    assert np.array_equal(a, _ids(src.train(5, seed=0), k=6))
    assert not np.array_equal(a, _ids(src.train(5, seed=1), k=6))
    assert list(_ids(src.train(5, shuffle=False, repeat=False))) == list(range(30))
    assert list(_ids(src.train(5, rank=1, size=3, shuffle=False, repeat=False))) == list(
        range(1, 30, 3)
    )


def test_flip_reverses_width_only_and_keeps_labels():
    src = _source(n_train=40)
    flipped = plain = 0
    for x, y in src.train(8, seed=3, flip=True, repeat=False, shuffle=False):
        x, y = x.numpy(), y.numpy()
        assert x.shape == (8, 4, 4, 3) and x.dtype == np.uint8 and y.dtype == np.int32
        np.testing.assert_array_equal(y, x[:, 0, 0, 0] % 5)
        cols = x[:, 0, :, 1]
        is_flip = (cols == [3, 2, 1, 0]).all(1)
        assert (is_flip | (cols == [0, 1, 2, 3]).all(1)).all()
        flipped += is_flip.sum()
        plain += (~is_flip).sum()
    assert flipped > 5 and plain > 5
    assert not any(
        ((x.numpy()[:, 0, :, 1] == [3, 2, 1, 0]).all(1)).any()
        for x, _ in src.train(8, seed=3, flip=False, repeat=False)
    )


def test_train_batches_are_full_and_labels_int32():
    src = _source(n_train=10)
    shapes = [tuple(x.shape) for x, _ in src.train(3, repeat=False)]
    assert shapes == [(3, 4, 4, 3)] * 3  # 10 // 3 full batches, remainder dropped
    x, y = next(iter(src.train(4)))
    assert x.dtype == tf.uint8 and y.dtype == tf.int32


def test_test_split_each_example_once_in_fixed_order():
    src = _source(n_test=7)
    per_rank = [_ids(src.test(2, rank=r, size=3)) for r in range(3)]
    assert [list(p) for p in per_rank] == [[100, 103, 106], [101, 104], [102, 105]]
    assert [list(p) for p in per_rank] == [
        list(_ids(src.test(2, rank=r, size=3))) for r in range(3)
    ]
    assert [x.shape[0] for x, _ in src.test(3)] == [3, 3, 1]


def test_attributes_aligned_with_ordered_batches():
    src = _source(n_train=6, with_attr=True)
    a = src.attributes('train')
    got = np.concatenate([b[2].numpy() for b in src.ordered('train', 4, with_attributes=True)])
    np.testing.assert_array_equal(got, a)
    x, y, at = next(iter(src.train(2, with_attributes=True)))
    assert at.dtype == tf.int8 and at.shape == (2, 2)
    with pytest.raises(DataError, match="encoding='bad'"):
        src.attributes('train', encoding='bad')
    assert _source().attributes() is None
    with pytest.raises(DataError, match='with_attributes=True but toy'):
        _source().train(2, with_attributes=True)


@pytest.mark.parametrize(
    'kwargs, match',
    [
        (dict(batch_size=0), 'batch_size=0'),
        (dict(batch_size=2, rank=3, size=3), 'rank=3: expected 0 <= rank < size=3'),
        (dict(batch_size=2, size=0), 'size=0'),
        (
            dict(batch_size=5, rank=0, size=3, repeat=False),
            'batch_size=5 is larger than the 4 training examples',
        ),
    ],
)
def test_bad_pipeline_arguments(kwargs, match):
    with pytest.raises(DataError, match=match):
        _source(n_train=12).train(**kwargs)


def test_split_name_checked():
    with pytest.raises(DataError, match="split='dev'"):
        _source().ordered('dev', 2)


def test_pipelines_run_without_the_autotuning_thread():
    """Every pipeline ends without tf.data's autotuning model, whose thread an iterator's
    destructor joins (the trainer stalled 5-15 s at epoch ends while it slept), and repeated
    pipelines share one copy of the split instead of converting it again per epoch."""
    src = _source(with_attr=True)
    pipelines = [
        src.train(4, seed=1),
        src.train(4, seed=2, with_attributes=True),
        src.ordered('test', 3),
    ]
    for ds in pipelines:
        assert ds.options().autotune.enabled is False
    # an epoch's pipeline, the next epoch's: the same batches as before, from one copy
    assert _ids(src.train(4, seed=1), 3).tolist() == _ids(pipelines[0], 3).tolist()
    assert src._gather('train', False)[0] is src._gather('train', True)[0]
