"""sample.py and glow_tf.tools (flow, latents, images, sampling): grids, reproducible batched
sampling, CLI end to end."""

import io

import numpy as np
import pytest

from tests import tiny_model as fx


@pytest.fixture
def cli(monkeypatch):
    fx.patch_load_trained_model(monkeypatch)
    from glow_tf.cli.sample import main

    return main


def test_tile_and_save_grid(tmp_path):
    from glow_tf.tools.images import save_image_grid, tile_images

    imgs = np.stack([np.full((2, 3, 3), 10 * (i + 1), np.uint8) for i in range(5)])
    grid = tile_images(imgs, n_cols=2)
    assert grid.shape == (6, 6, 3)
    assert (grid[0:2, 3:6] == 20).all() and (grid[4:6, 0:3] == 50).all()
    assert (grid[4:6, 3:6] == 0).all()  # blank tile
    assert tile_images(imgs).shape == (4, 9, 3)  # ceil(sqrt(5)) = 3 columns, 2 rows
    saved = save_image_grid(imgs, tmp_path / 'sub' / 'g.png', n_cols=5)
    np.testing.assert_array_equal(fx.read_png(tmp_path / 'sub' / 'g.png'), saved)


def test_latents_depend_only_on_seed_and_index():
    from glow_tf.model.latents import block_latents

    shapes = ((4, 4, 6), (2, 2, 24))
    full = block_latents(shapes, 7, 0, 40)
    part = block_latents(shapes, 7, 13, 35, temperature=0.5)
    for f, p in zip(full, part):
        np.testing.assert_allclose(0.5 * f.numpy()[13:35], p.numpy(), rtol=0, atol=1e-7)
    other = block_latents(shapes, 8, 0, 40)
    assert not np.allclose(full[0].numpy(), other[0].numpy())


def test_sampling_reproducible_and_batch_independent(flow):
    a = flow.sample(10, 0.7, seed=3)
    flow.batch_size = 4
    b = flow.sample(10, 0.7, seed=3)
    flow.batch_size = 16
    assert a.dtype == np.uint8 and a.shape == (10, 16, 16, 3)
    np.testing.assert_array_equal(a, b)
    assert (flow.sample(10, 0.7, seed=4) != a).mean() > 0.5
    # T = 0 decodes the all-zero latent: every sample is the same mode image
    z = flow.sample(3, 0.0, seed=5)
    assert (z == z[0]).all()


def test_default_weights_are_the_ones_that_scored_better(tmp_path_factory, tmp_path, flow):
    """load_trained_model's default follows the run's weights.json (the better of raw and averaged
    at the last test pass); a run without one (written before it existed) gets the averages."""
    import json
    import shutil

    from glow_tf.tools.trained import load_trained_model

    ema, raw = (fx.tiny_flow(tmp_path_factory, use_ema=u) for u in (True, False))
    a = flow.sample(6, 0.7, seed=1)
    assert not (fx.tiny_logdir(tmp_path_factory) / 'weights.json').exists()
    np.testing.assert_array_equal(a, ema.sample(6, 0.7, seed=1))
    assert (a != raw.sample(6, 0.7, seed=1)).mean() > 0.1  # the two really differ
    run = tmp_path / 'run'
    shutil.copytree(fx.tiny_logdir(tmp_path_factory), run)
    (run / 'weights.json').write_text(json.dumps({'latest': {'step': 5, 'weights': 'raw'}}))
    chosen = load_trained_model(str(run), batch_size=16)
    assert chosen.weights == 'raw' and 'raw weights' in chosen.description
    np.testing.assert_array_equal(chosen.sample(6, 0.7, seed=1), raw.sample(6, 0.7, seed=1))


def test_packaged_weights_are_named_by_what_they_are(tmp_path_factory, tmp_path):
    """A packaged editor model keeps the averaged weights as its model/ group (weights.json:
    weights 'raw', packaged_weights 'ema'): sample.py's load_trained_model and the editor both call
    them Polyak-averaged, while the values read are the model/ group's."""
    import json
    import shutil

    from glow_tf.editor.engine import MODEL_MANIFEST, load_editor_flow
    from glow_tf.tools.trained import load_trained_model

    raw = fx.tiny_flow(tmp_path_factory, use_ema=False)
    pkg = tmp_path / 'pkg'
    shutil.copytree(fx.tiny_logdir(tmp_path_factory), pkg)
    record = {'step': 5, 'weights': 'raw', 'packaged_weights': 'ema'}
    (pkg / 'weights.json').write_text(json.dumps({'latest': record}))
    (pkg / MODEL_MANIFEST).write_text(json.dumps({'weights': 'ema'}))
    flow = load_trained_model(str(pkg), batch_size=16)
    editor_flow, _ = load_editor_flow(str(pkg))
    assert flow.weights == 'ema'
    assert flow.description == editor_flow.description == f'{pkg} (Polyak-averaged weights)'
    np.testing.assert_array_equal(flow.sample(4, 0.7, seed=1), raw.sample(4, 0.7, seed=1))
    assert (
        'raw weights'
        in load_trained_model(str(fx.tiny_logdir(tmp_path_factory)), use_ema=False).description
    )


def test_sample_grid_rows_are_temperatures(flow):
    from glow_tf.tools.sampling import sample_grid

    grid = sample_grid(flow, temperatures=(0.0, 1.0), n_per_row=3, seed=2)
    assert grid.shape == (32, 48, 3)
    np.testing.assert_array_equal(grid[16:, 16:32], flow.sample(3, 1.0, seed=2)[1])


def test_class_conditional_sampling_needs_labels():
    import glow_tf
    from glow_tf.errors import InputError
    from glow_tf.tools.sampling import sample_grid
    from glow_tf.tools.trained import InMemoryModel

    model = glow_tf.Glow(image_shape=(8, 8, 3), n_levels=1, depth=1, width=8, n_classes=3)
    model.initialize(
        glow_tf.preprocess(np.random.RandomState(0).randint(0, 256, (6, 8, 8, 3)), noise=True),
        y=np.array([0, 1, 2, 0, 1, 2], np.int32),
    )
    f = InMemoryModel(model)
    with pytest.raises(InputError, match='class-conditional'):
        f.sample(2, 0.7, 0)
    with pytest.raises(InputError, match='out of range'):
        f.sample(2, 0.7, 0, y=[0, 3])
    a = f.sample(4, 0.7, 0, y=[0, 1, 2, 0])
    assert a.shape == (4, 8, 8, 3)
    np.testing.assert_array_equal(a[0], f.sample(1, 0.7, 0, y=0)[0])
    assert sample_grid(f, (0.5,), 2, 0, y=1).shape == (8, 16, 3)


def test_cli_sample_end_to_end(cli, logdir, flow, tmp_path, capsys):
    out, npz, d = tmp_path / 's.png', tmp_path / 's.npz', tmp_path / 'pngs'
    rc = cli(
        [
            '--model',
            str(logdir),
            '--n',
            '5',
            '--temperature',
            '0.5',
            '1.0',
            '--seed',
            '11',
            '--batch',
            '2',
            '--cols',
            '3',
            '--out',
            str(out),
            '--out_dir',
            str(d),
            '--npz',
            str(npz),
            '--precision',
            'fp32',
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert 'ms/image' in text and 'seed 11' in text and '(Polyak-averaged weights)' in text
    assert 'coupling networks in fp32' in text
    data = np.load(npz)
    assert data['images'].shape == (2, 5, 16, 16, 3) and int(data['seed']) == 11
    np.testing.assert_allclose(data['temperatures'], [0.5, 1.0])
    np.testing.assert_array_equal(data['images'][1], flow.sample(5, 1.0, seed=11))
    grid = fx.read_png(out)
    assert grid.shape == (4 * 16, 3 * 16, 3)  # 2 rows per temperature, 3 columns
    np.testing.assert_array_equal(grid[32:48, 0:16], data['images'][1][0])
    assert len(list(d.glob('*.png'))) == 10


def test_cli_sample_errors(cli, tmp_path, logdir, capsys):
    with pytest.raises(SystemExit) as e:
        cli(['--model', str(tmp_path / 'nope'), '--n', '2'])
    assert e.value.code == 2
    assert 'nope' in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli(['--model', str(logdir), '--n', '2', '--y', '1', '--out', str(tmp_path / 'x.png')])
    assert e.value.code == 2 and 'unconditional' in capsys.readouterr().err


def test_glow_sample_with_a_seed_is_the_tools_sample():
    """One latent random scheme: `Glow.sample(n, T, seed=s)` decodes the latents that
    `sample.py --seed s` (a InMemoryModel) decodes, so both give the same images."""
    import glow_tf
    from glow_tf.model.preprocessing import postprocess
    from glow_tf.tools.trained import InMemoryModel

    model = glow_tf.Glow(image_shape=(8, 8, 3), n_levels=2, depth=1, width=4)
    model.initialize(glow_tf.preprocess(np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3))))
    from_model = postprocess(model.sample(5, temperature=0.7, seed=11)).numpy()
    from_tools = InMemoryModel(model, batch_size=2).sample(5, 0.7, 11)
    np.testing.assert_array_equal(from_model, from_tools)
    assert not np.array_equal(from_model, InMemoryModel(model).sample(5, 0.7, 12))


def test_cli_sample_in_bf16_draws_the_same_pictures_up_to_rounding(logdir, tmp_path, capsys):
    """sample.py --precision bf16 (a fresh, uncached model): the same latents decoded by
    bfloat16 coupling networks give nearly the same images (mean |difference| < 2 of 255)."""
    from glow_tf.cli.sample import main

    images = {}
    for precision in ('fp32', 'bf16'):
        npz = tmp_path / f'{precision}.npz'
        argv = ['--model', str(logdir), '--n', '6', '--temperature', '0.7', '--seed', '3']
        argv += ['--out', str(tmp_path / f'{precision}.png')]  # not samples.png in the cwd
        assert main(argv + ['--npz', str(npz), '--precision', precision]) == 0
        images[precision] = np.load(npz)['images'].astype(np.float64)
    difference = np.abs(images['bf16'] - images['fp32'])
    assert difference.mean() < 2.0 and difference.max() > 0  # computed in bf16, not a no-op
    with pytest.raises(SystemExit):
        main(['--model', str(logdir), '--n', '2', '--precision', 'fp8'])
    assert '--precision' in capsys.readouterr().err


@pytest.mark.parametrize('bf16_units', [True, False])
def test_cli_sample_precision_follows_the_hardware(cli, logdir, tmp_path, monkeypatch, bf16_units):
    """sample.py's default --precision auto decodes in bf16 where the machine has bfloat16 units
    (the same pictures as --precision bf16) and in fp32 elsewhere; --export stays fp32, so the
    SavedModel is right on any machine."""
    import glow_tf.nets.precision as precision
    from glow_tf.cli.sample import build_parser, run

    monkeypatch.setattr(precision, 'native_bf16', lambda: bf16_units)
    base = ['--model', str(logdir), '--n', '4', '--temperature', '0.7', '--seed', '5']
    images, lines = {}, {}
    for name, flags in (('auto', []), ('fp32', ['--precision', 'fp32'])):
        npz = tmp_path / f'{name}.npz'
        out = io.StringIO()
        files = ['--npz', str(npz), '--out', str(tmp_path / f'{name}.png')]
        assert run(build_parser().parse_args(base + flags + files), out) == 0
        images[name], lines[name] = np.load(npz)['images'], out.getvalue()
    expected = 'bf16' if bf16_units else 'fp32'
    assert f'coupling networks in {expected}' in lines['auto']
    same = np.array_equal(images['auto'], images['fp32'])
    assert same != bf16_units  # bf16 rounds differently: some pixel moves
    if bf16_units:
        export_dir = tmp_path / 'export'
        out = io.StringIO()
        assert run(build_parser().parse_args(base + ['--export', str(export_dir)]), out) == 0
        assert 'coupling networks in fp32' in out.getvalue()
