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


def test_frechet_distance_matches_closed_forms():
    from bench.frechet import frechet_distance

    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 6))
    cov = a @ a.T + 0.1 * np.eye(6)  # a full, non-diagonal covariance
    mu = rng.normal(size=6)
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-8)
    shift = np.arange(6.0)
    assert frechet_distance(mu, cov, mu + shift, cov) == pytest.approx(np.sum(shift**2), rel=1e-8)
    # diagonal covariances: d^2 = sum (sqrt(a_i) - sqrt(b_i))^2
    va, vb = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    d = frechet_distance(np.zeros(3), np.diag(va), np.ones(3), np.diag(vb))
    assert d == pytest.approx(3.0 + np.sum((np.sqrt(va) - np.sqrt(vb)) ** 2), rel=1e-10)


def test_features_frechet_estimates_the_distance_of_the_sampled_gaussians():
    from bench.frechet import features_frechet

    rng = np.random.default_rng(1)
    fa = rng.normal(0.0, 1.0, (20000, 3))
    fb = rng.normal(1.0, 2.0, (20000, 3))  # d^2 = 3 * 1^2 + 3 * (2 - 1)^2 = 6
    assert features_frechet(fa, fb) == pytest.approx(6.0, rel=0.05)


def test_box_blur_keeps_flat_images_and_removes_detail():
    from bench.face_judge import box_blur

    flat = np.full((2, 64, 64, 3), 137, np.uint8)
    np.testing.assert_array_equal(box_blur(flat, 16), flat)
    checker = ((np.indices((64, 64)).sum(axis=0) % 2) * 255).astype(np.uint8)
    checker = np.repeat(checker[None, ..., None], 3, axis=-1)
    blurred = box_blur(checker, 32)
    assert blurred.shape == checker.shape
    assert blurred.std() < 2  # 2x2 blocks of a 1-pixel checkerboard all average to ~127


def test_judge_path_follows_the_cache_variables_and_the_recipe(tmp_path, monkeypatch):
    from bench.judge_cache import judge_path

    monkeypatch.delenv('GLOW_CACHE_DIR', raising=False)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
    recipe = {'judge': 'digits', 'seed': 0}
    assert judge_path('digits', recipe).parent == tmp_path / 'xdg' / 'glow_tf' / 'judges'
    monkeypatch.setenv('GLOW_CACHE_DIR', str(tmp_path / 'glow'))
    assert judge_path('digits', recipe).parent == tmp_path / 'glow' / 'judges'
    assert judge_path('digits', recipe) != judge_path('digits', {**recipe, 'seed': 1})


def test_edit_scores_count_flips_gain_and_drift_by_hand():
    from bench.edit_quality import edit_scores

    before = np.array([[-1.0, 0.5, 2.0], [0.5, -1.0, 0.0], [-2.0, 0.0, 1.0]])
    after = np.array([[1.0, 0.0, 2.0], [1.5, -1.0, 1.0], [-0.5, 0.5, 1.0]])
    add = edit_scores(before, after, 0, +1)  # attribute 0 added
    assert add['n'] == 3 and add['flip'] == pytest.approx(2 / 3)  # rows 0, 1 end > 0
    assert add['already'] == pytest.approx(1 / 3)
    assert add['gain'] == pytest.approx((2.0 + 1.0 + 1.5) / 3)
    assert add['drift'] == pytest.approx((0.5 + 0 + 0 + 1.0 + 0.5 + 0) / 6)
    remove = edit_scores(before, after, 0, -1)  # the same logits read as a removal
    assert remove['flip'] == pytest.approx(1 / 3) and remove['gain'] == pytest.approx(-1.5)


def test_edit_quality_cli_names_missing_directions(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / 'bench' / 'edit_quality.py'),
            '--model',
            str(REPO / 'models' / 'celeba64'),
            '--directions',
            str(tmp_path / 'none.npz'),
            '--out',
            str(tmp_path / 'out'),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert '--directions' in proc.stderr and 'none.npz' in proc.stderr
    assert 'Traceback' not in proc.stderr
