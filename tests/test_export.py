"""SavedModel export: loads without glow_tf, gives the same images as the checkpoint."""

import json
import textwrap

import numpy as np
import pytest

from tests import tiny_model as fx

# Run in a fresh interpreter whose imports of glow_tf fail, from a directory outside the repo.
LOADER = textwrap.dedent('''
    import sys
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name == 'glow_tf' or name.startswith('glow_tf.'):
                raise ImportError('glow_tf must not be needed to use the export')
    sys.meta_path.insert(0, Block())
    import json
    import numpy as np
    import tensorflow as tf
    export_dir, images_npy, out = sys.argv[1:4]
    m = tf.saved_model.load(export_dir)
    meta = json.loads(m.config_json.numpy().decode())
    s = m.sample(n=tf.constant(6), temperature=tf.constant(0.7), seed=tf.constant(5, tf.int64))
    x = np.load(images_npy)
    z = m.signatures['encode'](images=tf.constant(x))['latents']
    rec = m.decode(latents=z)['images']
    np.savez(out, sample=s['images'].numpy(), latents=z.numpy(), rec=rec.numpy(),
             image_shape=np.array(meta['image_shape']),
             glow_loaded=np.array(any(k.startswith('glow_tf') for k in sys.modules)))
''')


@pytest.fixture(scope='session')
def export_dir(tmp_path_factory, logdir):
    from glow_tf.cli.sample import main

    out = tmp_path_factory.mktemp('export') / 'glow_saved'
    assert main(['--model', str(logdir), '--export', str(out)]) == 0
    return out


def test_export_layout(export_dir):
    assert (export_dir / 'saved_model.pb').is_file()
    meta = json.loads((export_dir / 'glow_export.json').read_text())
    assert meta['image_shape'] == [16, 16, 3] and meta['n_bits_x'] == 8
    assert meta['latent_shapes'] == [[8, 8, 6], [4, 4, 24]] and meta['weights'] == 'ema'


def test_export_loads_without_glow_tf_and_gives_the_same_images(
    export_dir, tmp_path, tmp_path_factory
):
    from glow_tf.tools.images import load_images

    flow = fx.tiny_flow(tmp_path_factory)
    x = load_images(fx.celeba_files(4, start=300), flow.image_shape)
    got = fx.run_on_export(LOADER, export_dir, x, tmp_path)
    assert not bool(got['glow_loaded'])
    assert got['sample'].dtype == np.uint8 and got['sample'].shape == (6, 16, 16, 3)
    np.testing.assert_array_equal(got['sample'], flow.sample(6, 0.7, seed=5))  # same seed -> same
    np.testing.assert_allclose(got['latents'], flow.encode(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got['rec'], x)


def test_sample_and_manipulate_accept_the_export(export_dir, tmp_path, tmp_path_factory, capsys):
    from glow_tf.cli.manipulate import main as manipulate
    from glow_tf.cli.sample import main as sample
    from glow_tf.tools.trained import ExportedModel, load_trained_model

    flow = fx.tiny_flow(tmp_path_factory)
    exported = load_trained_model(str(export_dir), batch_size=3)
    assert isinstance(exported, ExportedModel)
    np.testing.assert_array_equal(exported.sample(7, 1.0, seed=2), flow.sample(7, 1.0, seed=2))
    assert (
        sample(
            [
                '--model',
                str(export_dir),
                '--n',
                '4',
                '--seed',
                '9',
                '--temperature',
                '0.7',
                '--npz',
                str(tmp_path / 's.npz'),
                '--out',
                str(tmp_path / 's.png'),
            ]
        )
        == 0
    )
    np.testing.assert_array_equal(
        np.load(tmp_path / 's.npz')['images'][0], flow.sample(4, 0.7, seed=9)
    )
    files = fx.celeba_files(2, start=400)
    assert (
        manipulate(
            [
                'interpolate',
                '--model',
                str(export_dir),
                '--images',
                *files,
                '--n',
                '3',
                '--out',
                str(tmp_path / 'i.png'),
            ]
        )
        == 0
    )
    from glow_tf.tools.images import load_images

    np.testing.assert_array_equal(
        fx.read_png(tmp_path / 'i.png')[:, :16], load_images(files[:1], flow.image_shape)[0]
    )


def test_class_conditional_export_takes_labels(tmp_path):
    import tensorflow as tf

    import glow_tf
    from glow_tf.errors import InputError
    from glow_tf.tools.export import export_saved_model
    from glow_tf.tools.trained import ExportedModel, InMemoryModel

    model = glow_tf.Glow(image_shape=(8, 8, 3), n_levels=1, depth=1, width=8, n_classes=3)
    x = np.random.RandomState(0).randint(0, 256, (6, 8, 8, 3)).astype(np.uint8)
    y = np.array([0, 1, 2, 0, 1, 2], np.int32)
    model.initialize(glow_tf.preprocess(x, noise=True), y=y)
    export_saved_model(model, tmp_path / 'cond', n_bits_x=5)
    m = tf.saved_model.load(str(tmp_path / 'cond'))
    s = m.sample(
        n=tf.constant(3),
        temperature=tf.constant(0.8),
        seed=tf.constant(4, tf.int64),
        y=tf.constant([2, 1, 0]),
    )['images'].numpy()
    np.testing.assert_array_equal(
        s, InMemoryModel(model, n_bits_x=5).sample(3, 0.8, 4, y=[2, 1, 0])
    )
    flow = ExportedModel(str(tmp_path / 'cond'))
    assert flow.n_classes == 3 and flow.n_bits_x == 5
    np.testing.assert_array_equal(flow.decode(flow.encode(x, y), y), x // 8 * 8)  # 5-bit bins
    with pytest.raises(InputError, match='class-conditional'):
        flow.encode(x)
