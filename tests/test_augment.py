"""--dal augmentation (glow_tf.data.augment): the original's levels per problem, shifts within 10%
of the size, deterministic per seed pair, labels kept by the trainer."""

import numpy as np
import pytest
import tensorflow as tf

from glow_tf.data.augment import CIFAR_FULL, NONE, SHIFTS, augment
from glow_tf.data.errors import DataError
from glow_tf.data.problems import augmentation_for


def test_levels_follow_the_original_per_problem():
    assert augmentation_for('mnist', 0) is NONE
    assert augmentation_for('mnist', 1) == SHIFTS and augmentation_for('mnist', 2) == SHIFTS
    assert augmentation_for('cifar10', 1) == SHIFTS and augmentation_for('cifar10', 2) == CIFAR_FULL
    assert not augmentation_for('celeba', 2).active and not augmentation_for('folder', 1).active
    with pytest.raises(DataError, match='--dal 3'):
        augmentation_for('cifar10', 3)


def _blob_batch(n=64, size=40):
    """A bright 6x6 square (value 200) in the centre of a dark image; uint8 [n, size, size, 3]."""
    x = np.full((n, size, size, 3), 10, np.uint8)
    c = size // 2
    x[:, c - 3 : c + 3, c - 3 : c + 3] = 200
    return x


def _centre_of_mass(x):
    w = x[..., 0].astype(np.float64) - 10.0
    rows, cols = np.mgrid[: x.shape[1], : x.shape[2]]
    total = w.sum((1, 2))
    return (w * rows).sum((1, 2)) / total, (w * cols).sum((1, 2)) / total


def test_shifts_stay_within_ten_percent_and_are_deterministic():
    x = _blob_batch()
    seed = tf.constant([7, 3], tf.int64)
    out = augment(tf.constant(x), SHIFTS, seed).numpy()
    assert out.dtype == np.uint8 and out.shape == x.shape
    r0, c0 = _centre_of_mass(x)
    r1, c1 = _centre_of_mass(out)
    dr, dc = r1 - r0, c1 - c0
    limit = 0.1 * 40
    assert np.abs(dr).max() <= limit + 0.5 and np.abs(dc).max() <= limit + 0.5
    assert np.abs(dr).max() > 0.5 * limit and np.abs(dc).max() > 0.5 * limit  # really shifted
    # the content is moved, not altered: the blob's total brightness is kept (bilinear mass)
    np.testing.assert_allclose(
        (out[..., 0] - 10.0).sum((1, 2)), (x[..., 0] - 10.0).sum((1, 2)), rtol=0.05
    )
    np.testing.assert_array_equal(augment(tf.constant(x), SHIFTS, seed).numpy(), out)
    other = augment(tf.constant(x), SHIFTS, tf.constant([7, 4], tf.int64)).numpy()
    assert not np.array_equal(other, out)
    np.testing.assert_array_equal(augment(tf.constant(x), NONE, seed).numpy(), x)


def test_cifar_level_two_flips_some_images():
    x = np.zeros((64, 32, 32, 3), np.uint8)
    x[:, 8:24, 2:10] = 255  # a bar on the left: flipped images have it on the right
    out = augment(tf.constant(x), CIFAR_FULL, tf.constant([1, 2], tf.int64)).numpy()
    left = out[:, :, :16, 0].astype(float).sum((1, 2))
    right = out[:, :, 16:, 0].astype(float).sum((1, 2))
    flipped = right > left
    assert 10 < flipped.sum() < 54


def test_trainer_augments_images_and_keeps_labels(tmp_path, shared_data):
    """The trainer's batches under --dal 1 are the unaugmented batches moved (same labels), and
    the same (seed, epoch, step) gives the same batch (what exact resume relies on)."""
    from glow_tf.cli.train import build_parser, config_from_args
    from glow_tf.training.trainer import Trainer

    def trainer(dal):
        cfg = config_from_args(
            build_parser().parse_args(
                [
                    '--problem',
                    'cifar10',
                    '--image_size',
                    '8',
                    '--n_levels',
                    '1',
                    '--depth',
                    '1',
                    '--width',
                    '4',
                    '--n_batch_train',
                    '16',
                    '--anchor_size',
                    '0',
                    '--n_test',
                    '200',
                    '--dal',
                    str(dal),
                    '--data_dir',
                    str(shared_data / 'cifar10-subset'),
                    '--logdir',
                    str(tmp_path / f'dal{dal}'),
                ]
            )
        )
        t = Trainer(cfg)
        t.setup()
        return t

    plain, shifted = trainer(0), trainer(1)
    (x0, y0), (x1, y1) = next(plain.train_iterator(3)), next(shifted.train_iterator(3))
    np.testing.assert_array_equal(y0.numpy(), y1.numpy())
    assert not np.array_equal(x0.numpy(), x1.numpy())
    np.testing.assert_array_equal(x1.numpy(), next(shifted.train_iterator(3))[0].numpy())
    # skip=1 gives the second batch of the same stream
    it = shifted.train_iterator(3)
    next(it)
    np.testing.assert_array_equal(
        next(it)[0].numpy(), next(shifted.train_iterator(3, skip=1))[0].numpy()
    )
