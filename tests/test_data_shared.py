"""Against the real data in ../shared/data (skipped when absent): MNIST, the CIFAR-10 subset and the
CelebA subset with its attribute rows."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from glow_tf.data import (
    DataWarning,
    load_image_file,
    load_source,
    md5sum,
    read_celeba_attributes,
    resolve_data_dir,
)
from glow_tf.data.celeba import scan_celeba
from glow_tf.data.download import MNIST_MD5


def test_mnist_counts_shapes_and_checksums(shared_data, data_cache):
    for name, md5 in MNIST_MD5.items():
        assert md5sum(shared_data / 'mnist' / name) == md5
    src = load_source('mnist')  # found through the shared-data fallback
    assert src.location == str(shared_data / 'mnist')
    assert (src.n_train, src.n_test, src.image_shape, src.n_classes) == (
        60000,
        10000,
        (32, 32, 3),
        10,
    )
    x, y, _ = src.numpy('train')
    assert x.dtype == np.uint8 and y.dtype == np.int32
    assert y[0] == 5 and set(np.unique(y)) == set(range(10))
    assert not x[:, :2].any() and not x[:, :, -2:].any()  # the zero padding
    assert 32 < x[:, 2:30, 2:30, 0].mean() < 35  # real digits: MNIST's mean intensity is ~33.3
    np.testing.assert_array_equal(x[..., 0], x[..., 1])
    xb, yb = next(iter(src.test(100, rank=1, size=4)))
    np.testing.assert_array_equal(yb.numpy(), src.numpy('test')[1][1:400:4])


def test_cifar10_subset(shared_data, data_cache):
    src = load_source('cifar10', shared_data / 'cifar10-subset')
    assert (src.n_train, src.n_test, src.image_shape) == (5085, 1017, (32, 32, 3))
    x, y, _ = src.numpy('train')
    xt, yt, _ = src.numpy('test')
    assert y[0] == 6 and yt[0] == 3  # frog first in data_batch_1, cat first in test_batch
    assert set(np.unique(y)) == set(range(10))
    assert 100 < x.mean() < 140
    assert src.class_names[3] == 'cat'
    assert load_source(
        'cifar10', shared_data / 'cifar10-subset', n_train=100, n_test=50, image_size=16
    ).numpy('train')[0].shape == (100, 16, 16, 3)


def test_celeba_subset_rows_and_split(shared_data):
    root = shared_data / 'celeba-subset'
    with pytest.warns(DataWarning, match='count line says 202599 images but 20000 rows'):
        names, files, values = read_celeba_attributes(root / 'list_attr_celeba.txt')
    assert len(names) == 40 and len(files) == 20000 and values.shape == (20000, 40)
    assert set(np.unique(values)) == {-1, 1}
    male = names.index('Male')
    assert 0.35 < (values[:, male] > 0).mean() < 0.5
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DataWarning)
        idx = scan_celeba(root)
        assert idx.image_dir.name == 'img_align_celeba_89x109'  # the larger of the two image dirs
        assert (len(idx.train_files), len(idx.test_files)) == (8100, 900)
        assert idx.test_files[0].endswith('008101.jpg')
        np.testing.assert_array_equal(idx.train_attr, values[:8100])
        np.testing.assert_array_equal(idx.test_attr, values[8100:9000])
        full = scan_celeba(root, image_dir=root / 'img_align_celeba')
        assert (len(full.train_files), len(full.test_files)) == (28, 4)
        same = scan_celeba(root / 'img_align_celeba')  # pointing at the image directory works too
        assert same.image_dir == root / 'img_align_celeba' and same.train_files == full.train_files


def test_celeba_subset_source(shared_data, data_cache):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DataWarning)
        src = load_source('celeba', image_size=32, n_train=64, n_test=16)
        values = read_celeba_attributes(shared_data / 'celeba-subset' / 'list_attr_celeba.txt')[2]
    assert (src.n_train, src.n_test, src.image_shape, src.n_classes) == (64, 16, (32, 32, 3), 0)
    assert len(src.attribute_names) == 40 and src.attribute_names[31] == 'Smiling'
    np.testing.assert_array_equal(src.attributes('train'), values[:64])
    np.testing.assert_array_equal(src.attributes('test'), values[8100:8116])
    x, y, a = next(iter(src.train(8, with_attributes=True)))
    assert x.shape == (8, 32, 32, 3) and not y.numpy().any() and a.shape == (8, 40)
    x0 = src.numpy('train')[0][0]
    np.testing.assert_array_equal(
        x0,
        load_image_file(
            shared_data / 'celeba-subset' / 'img_align_celeba_89x109' / '000001.jpg',
            32,
            strict=True,
        ),
    )
    big = load_image_file(shared_data / 'celeba-subset' / 'img_align_celeba' / '000001.jpg', 64)
    assert big.shape == (64, 64, 3) and 40 < big.mean() < 220


def test_resolve_via_env_and_shared(shared_data, data_cache, monkeypatch):
    assert resolve_data_dir('cifar10', None) == str(shared_data / 'cifar10-subset')
    assert resolve_data_dir('celeba', None) == str(shared_data / 'celeba-subset')
    monkeypatch.setenv('GLOW_DATA_DIR', str(shared_data))  # a root with per-problem sub-directories
    assert resolve_data_dir('mnist', None) == str(shared_data / 'mnist')
    monkeypatch.setenv('GLOW_DATA_DIR', str(shared_data / 'mnist'))  # the problem directory itself
    assert resolve_data_dir('mnist', None) == str(shared_data / 'mnist')
