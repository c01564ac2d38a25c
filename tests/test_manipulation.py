"""manipulate.py and glow_tf.tools.manipulation on real CelebA images with a tiny trained model."""

import shutil

import numpy as np
import pytest

from tests import tiny_model as fx


@pytest.fixture
def cli(monkeypatch):
    fx.patch_load_trained_model(monkeypatch)
    from glow_tf.cli.manipulate import main

    return main


@pytest.fixture
def faces(flow):
    from glow_tf.tools.images import load_images

    files = fx.celeba_files(6, start=100)
    return files, load_images(files, flow.image_shape)


def hand_latents(logdir, files):
    """Packed latents straight from the model (independent of glow_tf.tools.manipulation)."""
    import tensorflow as tf

    import glow_tf
    from glow_tf.data import load_image_file
    from glow_tf.runs.load import load_model

    model, cfg = load_model(str(logdir))
    x = np.stack([load_image_file(f, model.image_shape[0]) for f in files])
    eps = model.encode(glow_tf.preprocess(x, cfg.n_bits_x, noise=False) + 0.5 / 2**cfg.n_bits_x)
    return np.concatenate([tf.reshape(e, [len(files), -1]).numpy() for e in eps], 1)


def test_round_trip_is_exact_on_real_images(flow, faces, tmp_path):
    from glow_tf.tools.images import load_images

    _, x = faces
    z = flow.encode(x)
    assert z.shape == x.shape and z.dtype == np.float32
    np.testing.assert_array_equal(flow.decode(z), x)
    # full-resolution 178x218 originals (non-square, centre-cropped and area-downsampled)
    big = load_images([str(fx.CELEBA / 'img_align_celeba' / '000003.jpg')], flow.image_shape)
    np.testing.assert_array_equal(flow.decode(flow.encode(big)), big)


def test_strength_zero_reproduces_input(flow, faces):
    from glow_tf.tools.manipulation import edit

    _, x = faces
    d = np.random.RandomState(0).normal(size=flow.image_shape).astype(np.float32)
    rows = edit(flow, x[:3], d, [-1.0, 0.0, 1.5])
    assert rows.shape == (3, 3, 16, 16, 3)
    np.testing.assert_array_equal(rows[:, 1], x[:3])
    assert (rows[:, 0] != x[:3]).mean() > 0.5


def test_interpolation_endpoints_are_the_inputs(flow, faces):
    from glow_tf.tools.manipulation import interpolate

    _, x = faces
    frames = interpolate(flow, x[0], x[1], 5)
    assert frames.shape == (5, 16, 16, 3)
    np.testing.assert_array_equal(frames[0], x[0])
    np.testing.assert_array_equal(frames[-1], x[1])
    assert (frames[2] != x[0]).any() and (frames[2] != x[1]).any()


def test_cli_directions_celeba_equal_hand_computed_mean_difference(cli, logdir, tmp_path, capsys):
    from glow_tf.data import read_celeba_attributes

    out = tmp_path / 'dirs.npz'
    assert (
        cli(
            [
                'directions',
                '--model',
                str(logdir),
                '--attr_file',
                str(fx.CELEBA_ATTR),
                '--image_dir',
                str(fx.CELEBA_IMAGES),
                '--n_images',
                '24',
                '--batch',
                '7',
                '--out',
                str(out),
            ]
        )
        == 0
    )
    assert 'Smiling' in capsys.readouterr().out
    d = np.load(out)
    names, files, values = read_celeba_attributes(fx.CELEBA_ATTR)
    assert list(d['names']) == list(names) and len(names) == 40
    assert d['directions'].shape == (40, 16, 16, 3)
    z = hand_latents(logdir, fx.celeba_files(24)).astype(np.float64)
    vals = values[:24]  # rows 000001..000024 exist as images
    for name in ('Smiling', 'Male', 'Eyeglasses'):
        k = names.index(name)
        pos, neg = vals[:, k] > 0, vals[:, k] < 0
        assert d['n_pos'][k] == pos.sum() and d['n_neg'][k] == neg.sum()
        if pos.any() and neg.any():
            want = z[pos].mean(0) - z[neg].mean(0)
            np.testing.assert_allclose(d['directions'][k].reshape(-1), want, rtol=1e-4, atol=1e-5)
    for k in np.where((d['n_pos'] == 0) | (d['n_neg'] == 0))[0]:
        assert (d['directions'][k] == 0).all()


def test_cli_directions_from_folders(cli, logdir, tmp_path):
    pos_files, neg_files = fx.celeba_files(3, start=40), fx.celeba_files(4, start=50)
    for sub, files in (('pos', pos_files), ('neg', neg_files)):
        (tmp_path / 'smile' / sub).mkdir(parents=True)
        for f in files:
            shutil.copy(f, tmp_path / 'smile' / sub)
    out = tmp_path / 'd.npz'
    assert (
        cli(
            [
                'directions',
                '--model',
                str(logdir),
                '--folder',
                str(tmp_path / 'smile'),
                '--out',
                str(out),
            ]
        )
        == 0
    )
    d = np.load(out)
    assert list(d['names']) == ['smile'] and list(d['n_pos']) == [3] and list(d['n_neg']) == [4]
    z = hand_latents(logdir, pos_files + neg_files).astype(np.float64)
    np.testing.assert_allclose(
        d['directions'][0].reshape(-1), z[:3].mean(0) - z[3:].mean(0), rtol=1e-4, atol=1e-5
    )


def test_cli_encode_decode_edit_interpolate(cli, logdir, flow, faces, tmp_path, capsys):
    files, x = faces
    lat = tmp_path / 'lat.npz'
    assert (
        cli(
            ['encode', '--model', str(logdir), '--images', *files[:3], '--out', str(lat), '--check']
        )
        == 0
    )
    assert 'reproduces 3/3' in capsys.readouterr().out
    data = np.load(lat)
    assert [data[f'eps_{i}'].shape[1:] for i in range(2)] == [tuple(s) for s in flow.latent_shapes]
    assert list(data['files']) == files[:3]
    assert (
        cli(
            [
                'decode',
                '--model',
                str(logdir),
                '--latents',
                str(lat),
                '--out',
                str(tmp_path / 'rec.png'),
            ]
        )
        == 0
    )
    rec = fx.read_png(tmp_path / 'rec.png')  # 3 images -> 2x2 grid
    np.testing.assert_array_equal(rec[:16, :16], x[0])
    np.testing.assert_array_equal(rec[:16, 16:32], x[1])

    # a direction file with an attribute name, then an edit row per image
    from glow_tf.tools.manipulation import save_directions

    dirs = tmp_path / 'dirs.npz'
    rng = np.random.RandomState(1)
    save_directions(
        dirs, flow, ['Smiling', 'Male'], rng.normal(size=(2, 16, 16, 3)), [5, 5], [5, 5]
    )
    edit_png = tmp_path / 'edit.png'
    assert (
        cli(
            [
                'edit',
                '--model',
                str(logdir),
                '--directions',
                str(dirs),
                '--attribute',
                'smiling',
                '--strengths',
                '-1',
                '0',
                '1',
                '--images',
                *files[:2],
                '--with_input',
                '--out',
                str(edit_png),
                '--out_dir',
                str(tmp_path / 'edits'),
            ]
        )
        == 0
    )
    grid = fx.read_png(edit_png)
    assert grid.shape == (2 * 16, 4 * 16, 3)  # input + 3 strengths per row
    for r in range(2):
        np.testing.assert_array_equal(grid[16 * r : 16 * r + 16, :16], x[r])  # input
        np.testing.assert_array_equal(grid[16 * r : 16 * r + 16, 32:48], x[r])  # strength 0
    assert len(list((tmp_path / 'edits').glob('*.png'))) == 6

    interp = tmp_path / 'interp.png'
    assert (
        cli(
            [
                'interpolate',
                '--model',
                str(logdir),
                '--images',
                files[0],
                files[1],
                '--n',
                '4',
                '--out',
                str(interp),
            ]
        )
        == 0
    )
    row = fx.read_png(interp)
    assert row.shape == (16, 64, 3)
    np.testing.assert_array_equal(row[:, :16], x[0])
    np.testing.assert_array_equal(row[:, 48:], x[1])


def test_cli_errors_name_what_is_wrong(cli, logdir, flow, faces, tmp_path, capsys):
    from glow_tf.tools.manipulation import save_directions

    def fails(argv, *needles):
        fx.assert_usage_error(cli, argv, capsys, *needles)

    files, _ = faces
    m = ['--model', str(logdir)]
    dirs = tmp_path / 'dirs.npz'
    save_directions(dirs, flow, ['Smiling'], np.zeros((1, 16, 16, 3)), [1], [1])
    fails(
        [
            'edit',
            *m,
            '--directions',
            str(dirs),
            '--attribute',
            'Smilling',
            '--images',
            files[0],
            '--out',
            str(tmp_path / 'e.png'),
        ],
        "unknown attribute 'Smilling'",
        'Did you mean Smiling',
    )
    bad = tmp_path / 'broken.jpg'
    bad.write_bytes(b'not an image')
    fails(
        ['encode', *m, '--images', files[0], str(bad), '--out', str(tmp_path / 'l.npz')],
        'broken.jpg',
    )
    fails(
        ['encode', *m, '--images', str(tmp_path / 'missing.png'), '--out', str(tmp_path / 'l.npz')],
        'missing.png',
    )
    # latents of another model shape
    np.savez(tmp_path / 'other.npz', eps_0=np.zeros((1, 16, 16, 6)), eps_1=np.zeros((1, 8, 8, 24)))
    fails(
        ['decode', *m, '--latents', str(tmp_path / 'other.npz'), '--out', str(tmp_path / 'd.png')],
        'other.npz',
        'do not match the model',
        '8x8x6',
    )
    # directions computed for another resolution
    np.savez(tmp_path / 'd32.npz', names=np.array(['Smiling']), directions=np.zeros((1, 32, 32, 3)))
    fails(
        [
            'edit',
            *m,
            '--directions',
            str(tmp_path / 'd32.npz'),
            '--attribute',
            'Smiling',
            '--images',
            files[0],
            '--out',
            str(tmp_path / 'e.png'),
        ],
        '32x32x3',
        '16x16x3',
    )
    fails(['directions', *m, '--out', str(tmp_path / 'x.npz')], 'exactly one label source')
