"""Level-wise latents (glow_tf/tools/levels.py): variations that keep chosen levels of a real face
and resample the others, level-restricted edits, the level numbering, and the CLI flags
(`sample.py --variations_of --keep_levels`, `manipulate.py edit --levels`), on the session's tiny
trained Glow (2 levels: level 1 = 8x8x6, level 2 = 4x4x24 for 16x16x3 images)."""

import numpy as np
import pytest

from tests import tiny_model as fx


@pytest.fixture
def faces(flow):
    from glow_tf.tools.images import load_images

    return load_images(fx.celeba_files(3, start=200), flow.image_shape)


def levels_of(packed, flow):
    from glow_tf.model.latents import unpack_latents

    return [e.numpy() for e in unpack_latents(np.asarray(packed), flow.latent_shapes)]


def same_bits(a, b):
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def test_numbering_and_masks(flow):
    from glow_tf.tools.levels import level_mask, level_names

    assert flow.latent_shapes == ((8, 8, 6), (4, 4, 24))
    assert level_names(flow.latent_shapes) == ['level 1 (8x8x6)', 'level 2 (4x4x24)']
    mask = level_mask(flow.latent_shapes, flow.image_shape, [2])
    fine, coarse = levels_of(mask.astype(np.float32)[None], flow)
    assert not fine.any() and coarse.all()
    assert mask.sum() == 4 * 4 * 24
    assert not level_mask(flow.latent_shapes, flow.image_shape, []).any()


def test_variation_keeps_levels_bit_identical_and_resamples_the_rest_with_the_seed(flow, faces):
    """What is exactly true: the latent arrays handed to decode hold the face's own float32 values
    on the kept levels (bit for bit), and on the other levels exactly T times the noise that
    `sample.py --seed s` draws for image i. Decoding them to a float image and encoding that
    image again returns the kept levels only up to float round-off (checked with a tolerance);
    through a uint8 image the quantisation moves every level, so nothing exact is claimed there.
    """
    import tensorflow as tf

    from glow_tf.model.latents import block_latents, unpack_latents
    from glow_tf.tools.levels import variation_latents

    z = flow.encode(faces[:1])[0]
    zs = variation_latents(z, flow.latent_shapes, keep=[2], n=5, temperature=0.6, seed=11)
    fine, coarse = levels_of(zs, flow)
    _, z_coarse = levels_of(z[None], flow)
    for i in range(5):
        assert same_bits(coarse[i], z_coarse[0])
    noise = block_latents(flow.latent_shapes, 11, 0, 5, 0.6)[0].numpy()
    assert same_bits(fine, noise)
    assert not np.allclose(fine[0], fine[1])  # each variation draws its own noise
    assert same_bits(variation_latents(z, flow.latent_shapes, [2], 5, 0.6, 11), zs)
    other_seed = variation_latents(z, flow.latent_shapes, [2], 5, 0.6, 12)
    assert not np.allclose(levels_of(other_seed, flow)[0], fine)

    model = flow.model
    x = model.decode(unpack_latents(tf.constant(zs), flow.latent_shapes))  # float images
    eps = model.encode(x)
    np.testing.assert_allclose(eps[1].numpy(), np.repeat(z_coarse, 5, 0), atol=2e-3)
    np.testing.assert_allclose(eps[0].numpy(), fine, atol=2e-3)


def test_variations_end_to_end(flow, faces):
    from glow_tf.tools.levels import variations

    out = variations(flow, faces, keep=[1, 2], n=3, temperature=0.8, seed=0)
    assert out.shape == (3, 3, 16, 16, 3) and out.dtype == np.uint8
    for i in range(3):  # keeping every level gives the input back exactly
        for k in range(3):
            np.testing.assert_array_equal(out[i, k], faces[i])
    # keeping no level is sampling: the same images as sample.py --seed 5 draws
    none = variations(flow, faces[:1], keep=[], n=4, temperature=0.7, seed=5)[0]
    np.testing.assert_array_equal(none, flow.sample(4, 0.7, 5))
    # keeping the coarse level: the images change, but less than fresh samples do
    coarse = variations(flow, faces[:1], keep=[2], n=4, temperature=0.7, seed=5)[0]
    assert not (coarse == faces[0]).all()
    gap = lambda imgs: np.abs(imgs.astype(float) - faces[0].astype(float)).mean()  # noqa: E731
    assert gap(coarse) < gap(none)


def test_level_restricted_edit_leaves_other_levels_bit_identical(flow, faces):
    from glow_tf.tools.manipulation import edit, shift_latents

    rng = np.random.default_rng(0)
    direction = rng.normal(size=flow.image_shape).astype(np.float32)
    z = flow.encode(faces)
    z[0, 0, 0, 0] = -0.0  # a signed zero survives too (z + 0.0 would turn it into +0.0)
    moved = shift_latents(z, direction, 1.5, flow, levels=[1])
    fine, coarse = levels_of(moved, flow)
    z_fine, z_coarse = levels_of(z, flow)
    assert same_bits(coarse, z_coarse)
    assert same_bits(fine, levels_of(z + np.float32(1.5) * direction, flow)[0])
    assert not np.allclose(fine, z_fine)

    rows = edit(flow, faces, direction, [0.0, 1.5], levels=[2])
    np.testing.assert_array_equal(rows[:, 0], faces)  # strength 0 is still the input
    want = flow.decode(shift_latents(flow.encode(faces), direction, 1.5, flow, [2]))
    np.testing.assert_array_equal(rows[:, 1], want)
    np.testing.assert_array_equal(
        edit(flow, faces, direction, [1.5], levels=[1, 2]), edit(flow, faces, direction, [1.5])
    )
    assert not (rows[:, 1] == edit(flow, faces, direction, [1.5])[:, 0]).all()


@pytest.mark.parametrize(
    'levels, needle',
    [
        ([0], 'level 0 does not exist'),
        ([3], 'level 3 does not exist; this model has levels 1..2'),
        ([True], 'integers'),
        ([1.5], 'integers'),
        ('12', 'list of level numbers'),
        ([], 'at least one level'),
    ],
)
def test_bad_levels_are_named(levels, needle):
    from glow_tf.errors import InputError
    from glow_tf.tools.levels import check_levels

    with pytest.raises(InputError, match='my levels') as e:
        check_levels(levels, 2, 'my levels')
    assert needle in str(e.value)


def test_cli_variations_and_level_edits(monkeypatch, logdir, flow, faces, tmp_path, capsys):
    from glow_tf.cli.manipulate import main as manipulate
    from glow_tf.cli.sample import main as sample
    from glow_tf.tools.images import save_png
    from glow_tf.tools.levels import variations
    from glow_tf.tools.manipulation import save_directions

    fx.patch_load_trained_model(monkeypatch)
    face = save_png(tmp_path / 'face.png', faces[0])
    m = ['--model', str(logdir), '--no_progress']
    assert (
        sample(
            [*m, '--variations_of', face, '--keep_levels', '2', '--n', '4', '--cols', '4']
            + ['--precision', 'fp32']  # the pixels of the fp32 `flow` below
            + ['--temperature', '0.5', '0.9', '--seed', '3', '--out', str(tmp_path / 'v.png')]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert 'keep level 2 (4x4x24); resample level 1 (8x8x6)' in out
    grid = fx.read_png(tmp_path / 'v.png')
    assert grid.shape == (32, 64, 3)
    for row, t in enumerate((0.5, 0.9)):
        want = variations(flow, faces[:1], [2], 4, t, 3)[0]
        for k in range(4):
            np.testing.assert_array_equal(
                grid[16 * row : 16 * row + 16, 16 * k : 16 * k + 16], want[k]
            )

    dirs = tmp_path / 'dirs.npz'
    d = np.random.default_rng(1).normal(size=(1, 16, 16, 3)).astype(np.float32)
    save_directions(dirs, flow, ['Smiling'], d, [1], [1])
    e = ['edit', *m, '--directions', str(dirs), '--attribute', 'Smiling', '--images', face]
    assert (
        manipulate([*e, '--strengths', '1', '--levels', '1', '--out', str(tmp_path / 'e.png')]) == 0
    )
    assert 'on levels 1' in capsys.readouterr().out
    want = flow.decode(
        np.where(
            np.arange(16 * 16 * 3).reshape(16, 16, 3) < 8 * 8 * 6,
            flow.encode(faces[:1]) + d[0],
            flow.encode(faces[:1]),
        )
    )
    np.testing.assert_array_equal(fx.read_png(tmp_path / 'e.png'), want[0])

    def fails(cli, argv, *needles):
        fx.assert_usage_error(cli, argv, capsys, *needles)

    fails(sample, [*m, '--variations_of', face, '--keep_levels', '3'], '--keep_levels: level 3')
    fails(sample, [*m, '--keep_levels', '1'], '--keep_levels applies to --variations_of')
    fails(sample, [*m, '--variations_of', face, '--keep_levels', 'x'], '--keep_levels', "'x'")
    missing = str(tmp_path / 'nope.jpg')
    fails(sample, [*m, '--variations_of', missing], 'nope.jpg')
    fails(manipulate, [*e, '--levels', '0', '--out', str(tmp_path / 'x.png')], '--levels: level 0')
