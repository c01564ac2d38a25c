"""The sample-quality judges (bench/sample_quality.py): the digit judge's scoring on a tiny CNN
trained here on real MNIST, the 32x32x3 -> 28x28 mapping, and the Frechet distance against its
closed form."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import digit_judge as dj  # noqa: E402
from glow_tf.data import mnist  # noqa: E402


@pytest.fixture(scope='module')
def mnist_dir(shared_data):
    return shared_data / 'mnist'


def test_to_mnist_gray_inverts_the_data_pipeline_padding(mnist_dir):
    padded, _ = mnist.load_mnist_split(mnist_dir, 'test')
    raw = mnist.read_idx(mnist.find_file(mnist_dir, mnist.FILES['test'][0]), mnist.IMAGES_MAGIC)
    assert padded.shape[1:] == (32, 32, 3)
    np.testing.assert_array_equal(dj.to_mnist_gray(padded), raw)


def test_score_probabilities_counts_confident_samples_and_classes():
    p = np.full((4, 10), 0.0)
    p[0, 3] = 0.95  # confident 3
    p[1, 3] = 0.99  # confident 3
    p[2, 7] = 0.91  # confident 7
    p[3, 1], p[3, 2] = 0.5, 0.5  # not confident
    s = dj.score_probabilities(p)
    assert s['confident_share'] == 0.75
    assert s['classes_present'] == 2
    assert s['class_counts'][3] == 2 and s['class_counts'][7] == 1 and sum(s['class_counts']) == 3


def test_tiny_judge_scores_real_digits_above_noise(mnist_dir):
    import keras

    x, y = mnist.load_mnist_split(mnist_dir, 'train')
    keras.utils.set_random_seed(0)
    judge = dj.train_digit_cnn(dj.build_digit_cnn(), x[:3000], y[:3000], epochs=2, batch=64)
    test, _ = mnist.load_mnist_split(mnist_dir, 'test')
    real = dj.score_digits(test[:300], judge)
    noise = np.random.default_rng(0).integers(0, 256, (300, 32, 32, 3), dtype=np.uint8)
    noisy = dj.score_digits(noise, judge)
    assert real['confident_share'] > 0.6
    assert real['classes_present'] == 10
    assert real['confident_share'] > noisy['confident_share'] + 0.4


def test_cli_names_a_bad_model_flag(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / 'bench' / 'sample_quality.py'),
            'digits',
            '--model',
            str(tmp_path / 'missing'),
            '--out',
            str(tmp_path / 'out'),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert '--model' in proc.stderr and 'missing' in proc.stderr
    assert 'Traceback' not in proc.stderr
