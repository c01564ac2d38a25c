"""score.py: the OOD statistics against hand computations, the per-level bits/dim sum on real
images, and the command end to end (report shape, bad files) with the tiny CelebA model."""

import json

import numpy as np
import pytest

from glow_tf.tools import ood_stats


def test_auroc_matches_hand_count():
    # pairs (out > in) + ties/2: 2.5 beats 1, 2 -> 2; 3 beats 1, 2, ties 3 -> 2.5; 4 beats all -> 3
    assert ood_stats.auroc([1, 2, 3], [2.5, 3, 4]) == pytest.approx(7.5 / 9)
    assert ood_stats.auroc([1, 2], [3, 4]) == 1.0
    assert ood_stats.auroc([3, 4], [1, 2]) == 0.0
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(0.5, size=40)
    brute = np.mean([(y > x) + 0.5 * (y == x) for x in a for y in b])
    assert ood_stats.auroc(a, b) == pytest.approx(brute)


def test_fpr95_counts_accepted_foreign_images():
    ref = np.arange(100.0)  # the 95th percentile is 94.05
    assert ood_stats.fpr_at_tpr(ref, [10.0, 94.0, 95.0, 200.0]) == 0.5


def test_typicality_known_answers():
    ref = np.full(100, 2.0)
    far = ood_stats.typicality(ref, np.full(30, 3.0), batch_size=4)
    assert far['statistic'] == pytest.approx(1.0)
    assert far['threshold'] == 0.0 and far['detection_rate'] == 1.0
    assert far['false_alarm_rate'] == 0.0 and far['auroc'] == 1.0
    # the same distribution: batch means match the reference's entropy estimate
    rng = np.random.default_rng(1)
    ref = rng.normal(3.0, 0.1, 5000)
    same = ood_stats.typicality(ref, rng.normal(3.0, 0.1, 5000), batch_size=16)
    assert same['statistic'] < 0.01
    assert same['detection_rate'] < 0.05
    # a set *more* likely than the reference (lower bits/dim) is atypical too
    low = ood_stats.typicality(ref, rng.normal(2.5, 0.1, 500), batch_size=16)
    assert low['detection_rate'] == 1.0


def test_png_bits_per_dim_orders_by_complexity():
    flat = np.zeros((1, 32, 32, 3), np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    flat_bits, noise_bits = ood_stats.png_bits_per_dim(np.concatenate([flat, noise]))
    assert flat_bits < 0.5 < 7.5 < noise_bits


@pytest.mark.parametrize('n_bits_x', [8, 5])
def test_per_level_bits_sum_to_total_on_cifar(shared_data, n_bits_x):
    from glow_tf import Glow
    from glow_tf.data.loaders import load_source
    from glow_tf.model.preprocessing import nats_to_bits_per_dim, preprocess

    x = load_source('cifar10', str(shared_data / 'cifar10-subset'), n_test=8).numpy('test')[0]
    model = Glow((32, 32, 3), n_levels=3, depth=2, width=8, learntop=True)
    model.initialize(preprocess(x, n_bits_x, noise=0.5))
    parts = model.bits_per_dim_per_level(x, n_bits_x=n_bits_x, noise=0.5).numpy()
    assert parts.shape == (8, 3)
    total = nats_to_bits_per_dim(
        model.log_prob(preprocess(x, n_bits_x, noise=0.5)), model.n_dims, n_bits_x
    ).numpy()
    np.testing.assert_allclose(parts.sum(1), total, rtol=1e-5, atol=1e-4)
    assert sum(model.latent_dims_per_level()) == model.n_dims


def _write_png(path, image):
    from PIL import Image

    Image.fromarray(image).save(path)


def test_score_cli_report_and_bad_files(tmp_path, logdir, capsys):
    from glow_tf.cli.score import main

    rng = np.random.default_rng(0)
    folder = tmp_path / 'faces'
    folder.mkdir()
    import shutil

    from tests.tiny_model import celeba_files

    for f in celeba_files(6, start=8990):  # held-out faces (the last 10%)
        shutil.copy(f, folder)
    (folder / 'broken.jpg').write_bytes(b'not a jpeg')
    noise = tmp_path / 'noise.npz'
    np.savez(noise, images=rng.integers(0, 256, (5, 20, 20, 3), dtype=np.uint8))

    with pytest.raises(SystemExit) as e:
        main(['--model', str(logdir), '--data', str(folder), '--no_progress'])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert 'broken.jpg' in err and '--skip_bad' in err and 'Traceback' not in err

    def score(out):
        args = ['--model', str(logdir), '--data', f'faces={folder}', '--data', f'noise={noise}']
        main(args + ['--skip_bad', '--out', str(out), '--no_progress', '--weights', 'raw'])

    out = tmp_path / 'out'
    score(out)
    report = json.loads((out / 'report.json').read_text())
    assert set(report['sets']) == {'faces', 'noise'}
    faces = report['sets']['faces']
    assert faces['n'] == 6 and report['sets']['noise']['n'] == 5
    assert faces['per_level_bits_per_dim'][-1] != 0
    assert sum(faces['per_level_bits_per_dim']) == pytest.approx(
        faces['bits_per_dim_mean'], rel=1e-6
    )
    c = report['comparisons']['noise']
    assert set(c) >= {'auroc_bits_per_dim', 'auroc_complexity', 'fpr95_bits_per_dim', 'typicality'}
    rows = (out / 'scores.csv').read_text().splitlines()
    assert len(rows) == 1 + 11 and 'broken.jpg' not in ''.join(rows)
    assert (out / 'histogram.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert '| faces | 6 | 0 |' in (out / 'summary.md').read_text()
    # deterministic: the same command gives the same numbers
    score(tmp_path / 'again')
    again = json.loads((tmp_path / 'again' / 'report.json').read_text())
    assert again['sets'] == report['sets']


def test_score_cli_rejects_unknown_set(logdir, capsys):
    from glow_tf.cli.score import main

    with pytest.raises(SystemExit) as e:
        main(['--model', str(logdir), '--data', 'cifar10:validation', '--no_progress'])
    assert e.value.code == 2
    assert 'cifar10:validation' in capsys.readouterr().err


def test_saved_model_scores_and_background_likelihood_ratio(
    tmp_path, tmp_path_factory, logdir, capsys
):
    """An exported SavedModel scores a set as its checkpoint does, and as --background_model it
    gives each image's likelihood ratio: model bits/dim minus background bits/dim."""
    import csv
    import shutil

    from glow_tf import Glow
    from glow_tf.cli.score import main
    from glow_tf.tools.export import export_saved_model
    from tests import tiny_model as fx

    saved = fx.tiny_export(tmp_path_factory, use_ema=True)  # export_saved_model of the EMA
    folder = tmp_path / 'faces'
    folder.mkdir()
    for f in fx.celeba_files(8, start=8990):
        shutil.copy(f, folder)
    noise = tmp_path / 'noise.npz'
    rng = np.random.default_rng(1)
    np.savez(noise, images=rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8))

    def score(out, *flags):
        data = ['--data', f'faces={folder}', '--data', f'noise={noise}']
        main([*flags, *data, '--out', str(out), '--no_progress'])
        report = json.loads((out / 'report.json').read_text())
        with open(out / 'scores.csv') as f:
            rows = list(csv.DictReader(f))
        return report, rows

    ckpt, ckpt_rows = score(tmp_path / 'ckpt', '--model', str(logdir), '--weights', 'ema')
    exp, exp_rows = score(tmp_path / 'exp', '--model', str(saved))
    for name in ('faces', 'noise'):
        assert exp['sets'][name]['bits_per_dim_mean'] == pytest.approx(
            ckpt['sets'][name]['bits_per_dim_mean'], rel=1e-5
        )
    assert exp['sets']['faces']['per_level_bits_per_dim'] is None  # the export gives totals only
    np.testing.assert_allclose(
        [float(r['bits_per_dim']) for r in exp_rows],
        [float(r['bits_per_dim']) for r in ckpt_rows],
        rtol=1e-5,
    )

    raw, raw_rows = score(tmp_path / 'raw', '--model', str(logdir), '--weights', 'raw')
    lr, lr_rows = score(
        tmp_path / 'lr',
        '--model',
        str(logdir),
        '--weights',
        'raw',
        '--background_model',
        str(saved),
    )
    assert lr['model']['background_model'] == str(saved)
    llr = np.array([float(r['likelihood_ratio']) for r in lr_rows])
    expected = np.array([float(r['bits_per_dim']) for r in raw_rows]) - np.array(
        [float(r['bits_per_dim']) for r in exp_rows]
    )
    np.testing.assert_allclose(llr, expected, atol=2e-5)
    assert np.abs(llr).max() > 1e-3  # raw and averaged weights differ: the ratio is not trivially 0
    is_face = np.array([r['set'] == 'faces' for r in lr_rows])
    assert lr['comparisons']['noise']['auroc_likelihood_ratio'] == pytest.approx(
        ood_stats.auroc(llr[is_face], llr[~is_face])
    )
    assert 'auroc_likelihood_ratio' not in raw['comparisons']['noise']

    other = tmp_path / 'other_saved'  # a background model of another image size is refused
    small = Glow(image_shape=(8, 8, 3), n_levels=1, depth=1, width=8)
    small.initialize(tf_uniform((4, 8, 8, 3)))
    export_saved_model(small, other)
    with pytest.raises(SystemExit) as e:
        main(['--model', str(logdir), '--data', str(noise), '--background_model', str(other)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and '--background_model' in err and 'Traceback' not in err


def tf_uniform(shape):
    import tensorflow as tf

    return tf.random.uniform(shape, -0.5, 0.5, seed=0)
