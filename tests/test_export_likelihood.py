"""The SavedModel export's log_likelihood signature: bits/dim per image, deterministic (bin
centres), equal to the model's own objective at dequantisation u = 1/2, usable without glow_tf."""

import textwrap

import numpy as np

from tests import tiny_model as fx

SCORER = textwrap.dedent('''
    import sys
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name == 'glow_tf' or name.startswith('glow_tf.'):
                raise ImportError('glow_tf must not be needed to use the export')
    sys.meta_path.insert(0, Block())
    import numpy as np
    import tensorflow as tf
    m = tf.saved_model.load(sys.argv[1])
    out = m.signatures['log_likelihood'](images=tf.constant(np.load(sys.argv[2])))
    np.savez(sys.argv[3], bits=out['bits_per_dim'].numpy(), log_prob=out['log_prob'].numpy())
''')


def test_exported_log_likelihood_scores_images_without_glow_tf(flow, tmp_path, tmp_path_factory):
    import tensorflow as tf

    from glow_tf.tools.images import load_images

    exported = fx.tiny_export(tmp_path_factory)  # export_saved_model(flow.model, ...)
    x = load_images(fx.celeba_files(5, start=700), flow.image_shape)
    got = fx.run_on_export(SCORER, exported, x, tmp_path)
    assert got['bits'].shape == (5,) and np.isfinite(got['bits']).all()
    # the model's own objective with the dequantisation draw fixed at the bin centre
    bits, _ = flow.model.objective(
        tf.constant(x), n_bits_x=flow.n_bits_x, noise=tf.fill(x.shape, 0.5)
    )
    np.testing.assert_allclose(got['bits'], bits.numpy(), rtol=1e-5, atol=1e-5)
    # log_prob (nats) and bits/dim are the same number in two units
    d = np.prod(flow.image_shape)
    np.testing.assert_allclose(
        got['bits'], -(got['log_prob'] - d * np.log(256)) / (d * np.log(2)), rtol=1e-5
    )
    # a real face scores far better than noise
    noise = np.random.RandomState(0).randint(0, 256, x.shape).astype(np.uint8)
    m = tf.saved_model.load(str(exported))
    assert (
        m.log_likelihood(images=tf.constant(noise))['bits_per_dim'].numpy().min()
        > got['bits'].max()
    )
