"""Readers of the raw formats (IDX, CIFAR pickles, CelebA attribute files, image files, folders),
against fixtures written in the real formats, including every bad-input case."""

from __future__ import annotations

import gzip
import pickle
import warnings

import numpy as np
import pytest

from glow_tf.data import (
    CELEBA_ATTRIBUTE_NAMES,
    DataError,
    DataWarning,
    load_image_file,
    load_source,
    read_celeba_attributes,
    read_eval_partition,
    read_idx,
)
from glow_tf.data.celeba import scan_celeba
from glow_tf.data.cifar import load_cifar10_split
from glow_tf.data.folder import scan_folder
from glow_tf.data.images import area_downsample

# -------------------------------------------------------------------------------------------- MNIST


def test_mnist_fixture_padded_and_replicated(tmp_path, fixtures, data_cache):
    arrays = fixtures.make_mnist_dir(tmp_path / 'mnist', n_train=20, n_test=10)
    src = load_source('mnist', tmp_path / 'mnist')
    assert (src.n_train, src.n_test, src.n_classes, src.image_shape) == (20, 10, 10, (32, 32, 3))
    x, y, _ = src.numpy('train')
    assert x.dtype == np.uint8 and x.shape == (20, 32, 32, 3)
    np.testing.assert_array_equal(x[:, 2:30, 2:30, 0], arrays['train'][0])  # centred, unchanged
    assert (
        not x[:, :2].any()
        and not x[:, 30:].any()
        and not x[:, :, :2].any()
        and not x[:, :, 30:].any()
    )
    np.testing.assert_array_equal(x[..., 0], x[..., 2])  # gray replicated
    np.testing.assert_array_equal(y, arrays['train'][1])


def test_mnist_downsample_16_is_block_mean(tmp_path, fixtures, data_cache):
    fixtures.make_mnist_dir(tmp_path / 'm', n_train=4, n_test=2)
    full = load_source('mnist', tmp_path / 'm').numpy('train')[0].astype(np.float64)
    small = load_source('mnist', tmp_path / 'm', image_size=16).numpy('train')[0]
    expect = np.floor(full.reshape(4, 16, 2, 16, 2, 3).mean(axis=(2, 4)))
    np.testing.assert_array_equal(small, expect.astype(np.uint8))
    with pytest.raises(DataError, match='image_size=24'):
        load_source('mnist', tmp_path / 'm', image_size=24)


def test_idx_bad_magic_names_file(tmp_path, fixtures):
    p = fixtures.write_idx(
        tmp_path / 'train-images-idx3-ubyte.gz', np.zeros((2, 28, 28)), magic=2049
    )
    with pytest.raises(
        DataError, match=r'train-images-idx3-ubyte\.gz: bad magic number 2049, expected 2051'
    ):
        read_idx(p, 2051)


def test_idx_truncated_gzip_and_truncated_payload(tmp_path, fixtures):
    p = fixtures.write_idx(tmp_path / 'a.gz', np.ones((5, 28, 28)))
    blob = p.read_bytes()
    p.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match=r'a\.gz: corrupt or truncated gzip'):
        read_idx(p, 2051)
    raw = gzip.decompress(blob)
    q = tmp_path / 'b.gz'
    q.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(DataError, match=r'b\.gz: IDX file truncated'):
        read_idx(q, 2051)


def test_mnist_label_count_mismatch_and_missing_file(tmp_path, fixtures, data_cache):
    fixtures.make_mnist_dir(tmp_path / 'm', n_train=6, n_test=3)
    fixtures.write_idx(tmp_path / 'm' / 'train-labels-idx1-ubyte.gz', np.zeros(5))
    with pytest.raises(DataError, match=r'train-labels-idx1-ubyte\.gz: 5 labels but train-images'):
        load_source('mnist', tmp_path / 'm')
    (tmp_path / 'm' / 't10k-images-idx3-ubyte.gz').unlink()
    fixtures.write_idx(tmp_path / 'm' / 'train-labels-idx1-ubyte.gz', np.zeros(6))
    with pytest.raises(DataError, match='missing MNIST file t10k-images-idx3-ubyte'):
        load_source('mnist', tmp_path / 'm')


# -------------------------------------------------------------------------------------------- CIFAR


@pytest.mark.parametrize('tarball', [False, True])
def test_cifar_dir_and_tarball(tmp_path, fixtures, data_cache, tarball):
    arrays = fixtures.make_cifar_dir(tmp_path / 'c', per_batch=3, tarball=tarball)
    src = load_source('cifar10', tmp_path / 'c')
    assert (src.n_train, src.n_test, src.image_shape, src.n_classes) == (15, 3, (32, 32, 3), 10)
    x, y, _ = src.numpy('train')
    np.testing.assert_array_equal(x, arrays['train'][0])  # CHW rows -> HWC images, order kept
    np.testing.assert_array_equal(y, arrays['train'][1])
    np.testing.assert_array_equal(src.numpy('test')[0], arrays['test'][0])


def test_cifar_bad_batches_name_file(tmp_path, fixtures):
    fixtures.make_cifar_dir(tmp_path / 'c', per_batch=2)
    d = tmp_path / 'c' / 'cifar-10-batches-py'
    (d / 'data_batch_3').write_bytes(b'\x80\x02garbage')
    with pytest.raises(DataError, match=r'data_batch_3: not a readable CIFAR-10 python batch'):
        load_cifar10_split(tmp_path / 'c', 'train')
    (d / 'data_batch_3').write_bytes(
        pickle.dumps({b'data': np.zeros((2, 100), np.uint8), b'labels': [0, 1]})
    )
    with pytest.raises(
        DataError, match=r"data_batch_3: b'data' is uint8 \(2, 100\), expected uint8 \[n, 3072\]"
    ):
        load_cifar10_split(tmp_path / 'c', 'train')
    (d / 'data_batch_3').unlink()
    with pytest.raises(DataError, match='missing CIFAR-10 batch file.*data_batch_3'):
        load_cifar10_split(tmp_path / 'c', 'train')


def test_cifar_pickle_cannot_run_code(tmp_path, fixtures):
    fixtures.make_cifar_dir(tmp_path / 'c', per_batch=2)

    class Evil:
        def __reduce__(self):
            return (print, ('pwned',))

    (tmp_path / 'c' / 'cifar-10-batches-py' / 'test_batch').write_bytes(
        pickle.dumps({b'data': Evil()})
    )
    with pytest.raises(DataError, match=r'test_batch: .*builtins\.print is not allowed'):
        load_cifar10_split(tmp_path / 'c', 'test')


def test_cifar_truncated_tarball(tmp_path, fixtures):
    fixtures.make_cifar_dir(tmp_path / 'c', per_batch=50, tarball=True)
    t = tmp_path / 'c' / 'cifar-10-python.tar.gz'
    t.write_bytes(t.read_bytes()[:5000])
    with pytest.raises(DataError, match=r'cifar-10-python\.tar\.gz: corrupt or truncated tarball'):
        load_cifar10_split(tmp_path / 'c', 'train')


def test_cifar_empty_dir(tmp_path, data_cache):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(DataError, match=r'empty: no CIFAR-10 data'):
        load_source('cifar10', tmp_path / 'empty')


# -------------------------------------------------------------------------------- CelebA attributes


def test_celeba_attributes_crlf_and_count_warning(tmp_path, fixtures):
    values = fixtures.make_celeba_dir(tmp_path, n_images=0, n_rows=7, count_line=202599)
    assert b'\r\n' in (tmp_path / 'list_attr_celeba.txt').read_bytes()
    with pytest.warns(DataWarning, match='count line says 202599 images but 7 rows'):
        names, files, vals = read_celeba_attributes(tmp_path / 'list_attr_celeba.txt')
    assert names == list(CELEBA_ATTRIBUTE_NAMES) and files[0] == '000001.jpg' and len(files) == 7
    assert vals.dtype == np.int8 and vals.shape == (7, 40)
    np.testing.assert_array_equal(vals, values)


def _attr_file(tmp_path, rows, header=None):
    header = header if header is not None else ['3', ' '.join(CELEBA_ATTRIBUTE_NAMES)]
    p = tmp_path / 'list_attr_celeba.txt'
    p.write_bytes(('\r\n'.join(header + rows) + '\r\n').encode())
    return p


def test_celeba_attributes_malformed_rows(tmp_path):
    good = '000001.jpg ' + ' '.join(['1'] * 40)
    p = _attr_file(tmp_path, [good, '000002.jpg ' + ' '.join(['-1'] * 39)])
    with pytest.raises(
        DataError, match=r'list_attr_celeba\.txt: line 4: 39 attribute values .*expected 40'
    ):
        read_celeba_attributes(p)
    p = _attr_file(tmp_path, [good, '000002.jpg ' + ' '.join(['1'] * 39 + ['0'])])
    with pytest.raises(
        DataError, match=r"line 4: value '0' for attribute Young of '000002.jpg' is not 1 or -1"
    ):
        read_celeba_attributes(p)
    p = _attr_file(tmp_path, [good, good])
    with pytest.raises(DataError, match=r"line 4: '000001.jpg' already listed on line 3"):
        read_celeba_attributes(p)
    p = _attr_file(tmp_path, [good], header=['many', ' '.join(CELEBA_ATTRIBUTE_NAMES)])
    with pytest.raises(DataError, match='line 1: expected the number of images'):
        read_celeba_attributes(p)


def test_celeba_images_split_and_missing_rows(tmp_path, fixtures, data_cache):
    values = fixtures.make_celeba_dir(tmp_path / 'cel', n_images=10, n_rows=14)
    idx = scan_celeba(tmp_path / 'cel')
    assert (
        len(idx.train_files) == 9
        and len(idx.test_files) == 1
        and idx.test_files[0].endswith('000010.jpg')
    )
    src = load_source('celeba', tmp_path / 'cel', image_size=8)
    assert (src.n_train, src.n_test, src.image_shape) == (9, 1, (8, 8, 3))
    np.testing.assert_array_equal(src.attributes('train'), values[:9])
    np.testing.assert_array_equal(
        src.attributes('test', encoding='01'), (values[9:10] > 0).astype(np.int8)
    )
    # an image with no attribute row: error naming it, or skipped and counted with skip_bad
    fixtures.save_image(
        tmp_path / 'cel' / 'img_align_celeba' / '000099.jpg', np.zeros((24, 20, 3), np.uint8)
    )
    with pytest.raises(DataError, match=r'000099\.jpg: image has no attribute row'):
        load_source('celeba', tmp_path / 'cel', image_size=8)
    with pytest.warns(DataWarning, match=r'skipped 1 of .*000099\.jpg'):
        src = load_source('celeba', tmp_path / 'cel', image_size=8, skip_bad=True)
    assert len(src.skipped) == 1 and src.n_train + src.n_test == 10


def test_celeba_official_partition(tmp_path, fixtures, data_cache):
    fixtures.make_celeba_dir(tmp_path, n_images=6, n_rows=6)
    (tmp_path / 'list_eval_partition.txt').write_text(
        ''.join(f'{i:06d}.jpg {p}\r\n' for i, p in zip(range(1, 7), [0, 0, 0, 1, 2, 2]))
    )
    idx = scan_celeba(tmp_path)
    assert [f[-10:] for f in idx.train_files] == ['000001.jpg', '000002.jpg', '000003.jpg']
    assert [f[-10:] for f in idx.test_files] == ['000005.jpg', '000006.jpg']
    (tmp_path / 'list_eval_partition.txt').write_text('000001.jpg 7\n')
    with pytest.raises(DataError, match=r'list_eval_partition\.txt: line 1'):
        read_eval_partition(tmp_path / 'list_eval_partition.txt')


# ------------------------------------------------------------------------------------------- images


def test_load_image_file_centre_crop_area_downsample(tmp_path, fixtures):
    img = np.zeros((40, 60, 3), np.uint8)
    img[:, 10:50] = 200  # the centred 40x40 square is all 200, the side bands 0
    img[:20, 10:30] = 100
    p = fixtures.save_image(tmp_path / 'a.png', img)
    out = load_image_file(p, 4)
    assert out.shape == (4, 4, 3) and out.dtype == np.uint8
    expect = np.array([[100, 100, 200, 200]] * 2 + [[200] * 4] * 2)
    np.testing.assert_array_equal(out[..., 0], expect)


def test_grayscale_and_rgba_rules(tmp_path, fixtures):
    rng = np.random.default_rng(0)
    gray = fixtures.save_image(tmp_path / 'g.png', fixtures.random_image(rng, 16, 16, 1))
    out = load_image_file(gray, 8)  # lenient: replicated
    np.testing.assert_array_equal(out[..., 0], out[..., 1])
    with pytest.raises(DataError, match=r'g\.png: grayscale image \(PIL mode L\)'):
        load_image_file(gray, 8, strict=True)
    rgba = np.concatenate(
        [fixtures.random_image(rng, 16, 16), np.full((16, 16, 1), 128, np.uint8)], -1
    )
    p = fixtures.save_image(tmp_path / 't.png', rgba, 'RGBA')
    with pytest.raises(DataError, match=r't\.png: RGBA image with transparency'):
        load_image_file(p, 8, strict=True)
    assert load_image_file(p, 8).shape == (8, 8, 3)
    rgba[..., 3] = 255  # fully opaque RGBA is just RGB
    q = fixtures.save_image(tmp_path / 'o.png', rgba, 'RGBA')
    np.testing.assert_array_equal(load_image_file(q, 16, strict=True), rgba[..., :3])


def test_corrupt_and_truncated_images(tmp_path, fixtures):
    rng = np.random.default_rng(1)
    p = fixtures.save_image(tmp_path / 'x.jpg', rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    p.write_bytes(p.read_bytes()[:600])
    with pytest.raises(DataError, match=r'x\.jpg: cannot decode image'):
        load_image_file(p, 8)
    (tmp_path / 'y.png').write_bytes(b'not an image at all')
    with pytest.raises(DataError, match=r'y\.png: cannot decode image'):
        load_image_file(tmp_path / 'y.png', 8)
    with pytest.raises(DataError, match=r'nope\.png: file not found'):
        load_image_file(tmp_path / 'nope.png', 8)


# ------------------------------------------------------------------------------------------ folders


def _folder(tmp_path, fixtures, classes=('cat', 'dog'), per_class=10, size=(30, 20)):
    rng = np.random.default_rng(0)
    for c in classes:
        for i in range(per_class):
            fixtures.save_image(
                tmp_path / 'f' / c / f'{i:03d}.png', fixtures.random_image(rng, size[1], size[0])
            )
    (tmp_path / 'f' / 'README.txt').write_text('ignored')
    return tmp_path / 'f'


def test_folder_labels_and_split(tmp_path, fixtures, data_cache):
    root = _folder(tmp_path, fixtures)
    src = load_source('folder', root, image_size=16)
    assert (src.n_train, src.n_test, src.n_classes, src.class_names) == (18, 2, 2, ['cat', 'dog'])
    _, y, _ = src.numpy('train')
    assert list(y) == [0] * 9 + [1] * 9 and list(src.numpy('test')[1]) == [0, 1]
    x = src.numpy('train')[0]
    assert x.shape == (18, 16, 16, 3) and x.dtype == np.uint8
    # evenly spread limit keeps both classes
    assert set(load_source('folder', root, image_size=16, n_train=4).numpy('train')[1]) == {0, 1}


def test_folder_bad_images_error_or_skip(tmp_path, fixtures, data_cache):
    root = _folder(tmp_path, fixtures, classes=('a',), per_class=6)
    fixtures.save_image(root / 'a' / '000.png', np.zeros((20, 30), np.uint8))  # grayscale
    with pytest.raises(DataError, match=r'a/000\.png: grayscale image'):
        load_source('folder', root, image_size=8)
    (root / 'a' / '001.png').write_bytes((root / 'a' / '002.png').read_bytes()[:40])  # truncated
    with pytest.warns(DataWarning, match=r'skipped 2 of 6 files'):
        src = load_source('folder', root, image_size=8, skip_bad=True)
    assert src.n_train + src.n_test == 4
    assert sorted(p.rsplit('/', 1)[1] for p, _ in src.skipped) == ['000.png', '001.png']
    # the cache remembers the skip list: a strict reload still fails on the same file
    with pytest.raises(DataError, match=r'000\.png: grayscale'):
        load_source('folder', root, image_size=8)


def test_folder_empty_and_ambiguous(tmp_path, fixtures, data_cache):
    (tmp_path / 'e').mkdir()
    (tmp_path / 'e' / 'notes.txt').write_text('x')
    with pytest.raises(DataError, match=r'/e: empty image directory'):
        load_source('folder', tmp_path / 'e')
    root = _folder(tmp_path, fixtures, classes=('a',), per_class=2)
    fixtures.save_image(root / 'top.png', np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DataError, match=r'/f: has both 1 image files and class subfolders'):
        scan_folder(root)


def test_folder_explicit_split(tmp_path, fixtures, data_cache):
    rng = np.random.default_rng(0)
    for split, n in (('train', 5), ('test', 2)):
        for i in range(n):
            fixtures.save_image(tmp_path / split / f'{i}.jpg', fixtures.random_image(rng, 12, 12))
    src = load_source('folder', tmp_path, image_size=8)
    assert (src.n_train, src.n_test, src.n_classes) == (5, 2, 0)


def test_area_downsample_rejects_non_divisor():
    with pytest.raises(DataError, match='where: image_size=5'):
        area_downsample(np.zeros((1, 32, 32, 3), np.uint8), 5, 'where')


def test_unknown_problem_lists_valid_names():
    with pytest.raises(
        DataError, match="problem='svhn' is unknown; valid names: mnist, cifar10, celeba"
    ):
        load_source('svhn')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        with pytest.raises(DataError, match='n_train=0'):
            load_source('mnist', n_train=0)
