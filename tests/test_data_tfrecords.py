"""TFRecord shards in the original Glow format: reading, sharding, crops, bad shards, and the
folder/CelebA -> TFRecord converter round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from glow_tf.data import DataError, convert, load_source, scan_tfrecord_file
from glow_tf.data.convert import main as convert_main


def _images(n, h=8, w=8, offset=0):
    out = []
    for i in range(n):
        x = np.zeros((h, w, 3), np.uint8)
        x[..., 0] = i + offset
        x[..., 1] = np.arange(w)[None, :]
        x[..., 2] = np.arange(h)[:, None]
        out.append(x)
    return out


def _dataset(root, fixtures, n_train=10, n_test=4, train_shards=2, **kw):
    fixtures.write_tfrecord_shards(
        root,
        'train',
        _images(n_train),
        labels=[i % 7 for i in range(n_train)],
        n_shards=train_shards,
        **kw,
    )
    fixtures.write_tfrecord_shards(
        root, 'validation', _images(n_test, offset=100), labels=[3] * n_test, n_shards=1, **kw
    )
    return root


def _ids(ds):
    return [int(v) for b in ds for v in b[0].numpy()[:, 0, 0, 0]]


def test_read_original_layout(tmp_path, fixtures, data_cache):
    root = _dataset(tmp_path / 'imagenet-tfr', fixtures)
    src = load_source('imagenet', root, image_size=8)
    assert (src.n_train, src.n_test, src.n_classes, src.image_shape) == (10, 4, 1000, (8, 8, 3))
    x, y = next(iter(src.test(4)))
    assert x.dtype == tf.uint8 and y.dtype == tf.int32
    np.testing.assert_array_equal(x.numpy(), np.stack(_images(4, offset=100)))
    assert list(y.numpy()) == [3, 3, 3, 3]
    ids = sorted(_ids(src.train(2, repeat=False)))
    assert ids == list(range(10))
    for x, y in src.train(5, repeat=False):
        np.testing.assert_array_equal(
            y.numpy(), x.numpy()[:, 0, 0, 0] % 7
        )  # labels stay with images
    cols = np.concatenate(
        [x.numpy()[:, 0, :, 1] for x, _ in src.train(5, flip=True, seed=1, repeat=False)]
    )
    flipped = (cols == np.arange(8)[::-1]).all(1)
    assert (flipped | (cols == np.arange(8)).all(1)).all() and 0 < flipped.sum() < 10
    # no tf.data autotuning thread for an iterator's destructor to join (source._prefetched)
    for ds in (src.train(2), src.train(2, flip=True), src.ordered('test', 3)):
        assert ds.options().autotune.enabled is False


@pytest.mark.parametrize('train_shards', [1, 4])  # record-level vs file-level sharding
def test_ranks_disjoint(tmp_path, fixtures, data_cache, train_shards):
    src = load_source(
        'tfr',
        _dataset(tmp_path / 'd', fixtures, n_train=12, train_shards=train_shards),
        image_size=8,
    )
    per_rank = [_ids(src.train(1, rank=r, size=2, seed=3, repeat=False)) for r in range(2)]
    assert not set(per_rank[0]) & set(per_rank[1])
    assert sorted(per_rank[0] + per_rank[1]) == list(range(12))
    tests = [_ids(src.test(3, rank=r, size=3)) for r in range(3)]
    assert sorted(sum(tests, [])) == [100, 101, 102, 103]


def test_limits_take_first_records(tmp_path, fixtures, data_cache):
    src = load_source(
        'tfr', _dataset(tmp_path / 'd', fixtures, train_shards=1), image_size=8, n_train=3, n_test=2
    )
    assert (src.n_train, src.n_test) == (3, 2)
    assert _ids(src.test(10)) == [100, 101]
    assert sorted(_ids(src.train(1, repeat=False))) == [0, 1, 2]


def test_truncated_and_garbage_shards_name_file(tmp_path, fixtures, data_cache):
    root = _dataset(tmp_path / 'd', fixtures)
    shard = root / 'train' / 'train-r03-s-00001-of-00002.tfrecords'
    assert scan_tfrecord_file(shard)[0] == 5
    shard.write_bytes(shard.read_bytes()[:-30])
    with pytest.raises(
        DataError, match=r'train-r03-s-00001-of-00002\.tfrecords: truncated TFRecord file: record 4'
    ):
        load_source('tfr', root, image_size=8, cache_dir=False)
    shard.write_bytes(b'\x89PNG\r\n\x1a\n' + bytes(200))
    with pytest.raises(DataError, match=r'00001-of-00002\.tfrecords: not a TFRecord file'):
        load_source('tfr', root, image_size=8, cache_dir=False)


def test_missing_shard_and_wrong_resolution(tmp_path, fixtures, data_cache):
    root = _dataset(tmp_path / 'd', fixtures, train_shards=3, digits=4)  # original 4-digit names
    assert load_source('tfr', root, image_size=8).n_train == 10
    with pytest.raises(
        DataError, match=r'train: no shards for resolution r04 \(16px\); found r03 \(8px\)'
    ):
        load_source('tfr', root, image_size=16)
    (root / 'train' / 'train-r03-s-0001-of-0003.tfrecords').unlink()
    with pytest.raises(DataError, match=r'train-r03: 2 of 3 shards present, missing shard\(s\) 1'):
        load_source('tfr', root, image_size=8)
    with pytest.raises(DataError, match=r'/nowhere: data_dir for tfr does not exist'):
        load_source('tfr', tmp_path / 'nowhere', image_size=8)


def test_shape_mismatch_and_missing_feature(tmp_path, fixtures, data_cache):
    root = tmp_path / 'd'
    fixtures.write_tfrecord_shards(root, 'train', _images(3, 16, 16), n_shards=1, res_log2=3)
    fixtures.write_tfrecord_shards(root, 'validation', _images(2, 16, 16), n_shards=1, res_log2=3)
    with pytest.raises(
        DataError,
        match=r'train-r03-s-00000-of-00001\.tfrecords: stores 16x16 images but image_size=8',
    ):
        load_source('tfr', root, image_size=8)
    bad = tmp_path / 'b'
    (bad / 'train').mkdir(parents=True)
    fixtures.write_tfrecord_shards(bad, 'validation', _images(2), n_shards=1)
    ex = tf.train.Example(
        features=tf.train.Features(
            feature={'shape': tf.train.Feature(int64_list=tf.train.Int64List(value=[8, 8, 3]))}
        )
    )
    with tf.io.TFRecordWriter(str(bad / 'train' / 'train-r03-s-00000-of-00001.tfrecords')) as w:
        w.write(ex.SerializeToString())
    with pytest.raises(
        DataError, match=r"00000-of-00001\.tfrecords \(record 0\): example has no 'data' feature"
    ):
        load_source('tfr', bad, image_size=8)


def test_bad_record_inside_shard_stops_pipeline_naming_file(tmp_path, fixtures, data_cache):
    from glow_tf.data import make_example

    root = _dataset(tmp_path / 'd', fixtures, train_shards=1)
    path = root / 'train' / 'train-r03-s-00000-of-00001.tfrecords'
    with tf.io.TFRecordWriter(str(path)) as w:
        w.write(make_example(_images(1)[0]))
        w.write(make_example(np.zeros((8, 9, 3), np.uint8)))  # wrong width, caught at read time
    src = load_source('tfr', root, image_size=8, cache_dir=False)
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=r'bad TFRecord example in.*train-r03-s-00000'
    ):
        _ids(src.train(1, repeat=False, shuffle=False))


def test_lsun_realnvp_random_and_centre_crops(tmp_path, fixtures, data_cache):
    root = tmp_path / 'lsun_realnvp' / 'tower'
    fixtures.write_tfrecord_shards(root, 'train', _images(6, 12, 10), n_shards=2, res_log2=3)
    fixtures.write_tfrecord_shards(
        root, 'validation', _images(2, 12, 10, offset=50), n_shards=1, res_log2=3
    )
    src = load_source('lsun_realnvp', tmp_path / 'lsun_realnvp', image_size=8, category='tower')
    assert src.image_shape == (8, 8, 3) and src.n_classes == 0
    x = next(iter(src.test(2)))[0].numpy()
    assert list(x[0, 0, :, 1]) == list(range(1, 9)) and list(x[0, :, 0, 2]) == list(
        range(2, 10)
    )  # centre
    offsets = set()
    for _ in range(3):
        for xb, _ in src.train(6, repeat=False, seed=_):
            for img in xb.numpy():
                left, top = int(img[0, 0, 1]), int(img[0, 0, 2])
                assert list(img[0, :, 1]) == list(range(left, left + 8))  # a contiguous window
                assert list(img[:, 0, 2]) == list(range(top, top + 8))
                offsets.add((top, left))
    assert len(offsets) > 1  # random crops, not a fixed window
    with pytest.raises(DataError, match='no such LSUN category directory.*tower'):
        load_source('lsun_realnvp', tmp_path / 'lsun_realnvp', image_size=8, category='bedroom')


def _folder(tmp_path, fixtures, n=6):
    rng = np.random.default_rng(0)
    for c in ('a', 'b'):
        for i in range(n):
            fixtures.save_image(
                tmp_path / 'src' / c / f'{i}.png', fixtures.random_image(rng, 20, 24)
            )
    return tmp_path / 'src'


def _sorted_rows(x):
    return sorted(bytes(r) for r in x.reshape(len(x), -1))


def test_convert_folder_round_trip(tmp_path, fixtures, data_cache):
    src_dir = _folder(tmp_path, fixtures)
    out = tmp_path / 'out'
    meta = convert('folder', src_dir, out, res=8, shards=3)
    assert meta['counts'] == {'train': 10, 'validation': 2}
    assert len(list((out / 'train').glob('train-r03-s-*-of-00003.tfrecords'))) == 3
    folder = load_source('folder', src_dir, image_size=8)
    tfr = load_source('tfr', out)  # image size and classes from glow_tf_dataset.json
    assert (tfr.n_train, tfr.n_test, tfr.n_classes, tfr.class_names) == (10, 2, 2, ['a', 'b'])
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in tfr.ordered('train', 4)])
    x, y = np.concatenate(xs), np.concatenate(ys)
    fx, fy, _ = folder.numpy('train')
    assert _sorted_rows(x) == _sorted_rows(fx)  # identical pixels, shuffled into shards
    by_pixels = {bytes(r): int(l) for r, l in zip(fx.reshape(10, -1), fy)}
    assert [by_pixels[bytes(r)] for r in x.reshape(10, -1)] == list(y)
    assert (
        convert_main(['folder', str(src_dir), str(out), '--res', '8']) == 1
    )  # refuses to overwrite


def test_convert_skip_bad_counts(tmp_path, fixtures, data_cache, capsys):
    src_dir = _folder(tmp_path, fixtures)
    (src_dir / 'a' / '1.png').write_bytes(b'broken')
    assert convert_main(['folder', str(src_dir), str(tmp_path / 'o1'), '--res', '8']) == 1
    assert '1.png: cannot decode image' in capsys.readouterr().err
    assert (
        convert_main(['folder', str(src_dir), str(tmp_path / 'o2'), '--res', '8', '--skip_bad'])
        == 0
    )
    meta = json.loads((tmp_path / 'o2' / 'glow_tf_dataset.json').read_text())
    assert meta['skipped'] == 1 and meta['counts']['train'] + meta['counts']['validation'] == 11
    assert not list((tmp_path / 'o1').rglob('*.tmp'))  # failed shard files are cleaned up


def test_convert_celeba_keeps_attributes(tmp_path, fixtures, data_cache):
    fixtures.make_celeba_dir(tmp_path / 'cel', n_images=10, n_rows=12)
    convert('celeba', tmp_path / 'cel', tmp_path / 'tfr', res=8, shards=2)
    raw = load_source('celeba', tmp_path / 'cel', image_size=8)
    tfr = load_source('celeba', tmp_path / 'tfr')  # detected as TFRecords
    assert tfr.attribute_names == raw.attribute_names and (tfr.n_train, tfr.n_test) == (9, 1)
    rx, _, ra = raw.numpy('train')
    want = {bytes(r): a.tolist() for r, a in zip(rx.reshape(9, -1), ra)}
    batches = list(tfr.ordered('train', 4, with_attributes=True))
    got = [
        (bytes(r), a.tolist())
        for b in batches
        for r, a in zip(b[0].numpy().reshape(len(b[0]), -1), b[2].numpy())
    ]
    assert len(got) == 9 and all(want[r] == a for r, a in got)
    np.testing.assert_array_equal(tfr.attributes('train'), np.array([a for _, a in got], np.int8))
