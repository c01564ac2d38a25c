"""The multi-scale Glow: exact encode/decode, log-det of the whole model, densities, sampling."""

import math

import numpy as np
import pytest
import tensorflow as tf

import glow_tf
from tests.flow_testing import assert_rel_close, brute_force_log_det, perturb_weights

SMALL = dict(image_shape=(8, 8, 3), n_levels=2, depth=2, width=8)


def _images(n=4, shape=(8, 8, 3), seed=0):
    rng = np.random.default_rng(seed)
    return tf.constant(rng.integers(0, 256, (n,) + shape), tf.uint8)


def _model(seed=0, **overrides):
    model = glow_tf.Glow(**{**SMALL, **overrides})
    x = glow_tf.preprocess(_images(8, model.image_shape, seed=seed))
    y = tf.range(8) % model.n_classes if model.n_classes else None
    model.initialize(x, y)
    perturb_weights(model, scale=0.05, seed=seed)
    return model


VARIANTS = {
    'affine_1x1': dict(flow_coupling='affine', flow_permutation='1x1'),
    'affine_lu_learntop': dict(flow_coupling='affine', lu_decomposed=True, learntop=True),
    'additive_reverse': dict(flow_coupling='additive', flow_permutation='reverse'),
    'additive_shuffle_ycond': dict(
        flow_coupling='additive', flow_permutation='shuffle', learntop=True, n_classes=3
    ),
    'three_levels': dict(image_shape=(16, 8, 3), n_levels=3, depth=1),
}


@pytest.mark.parametrize('variant', sorted(VARIANTS))
def test_encode_decode_are_exact_inverses_at_every_level(variant):
    model = _model(**VARIANTS[variant])
    x = glow_tf.preprocess(_images(3, model.image_shape, seed=1))
    y = tf.constant([0, 1, 2]) if model.n_classes else None
    eps = model.encode(x, y)
    assert [tuple(e.shape[1:]) for e in eps] == list(model.latent_shapes)
    assert sum(int(np.prod(s)) for s in model.latent_shapes) == model.n_dims
    np.testing.assert_allclose(model.decode(eps, y).numpy(), x.numpy(), atol=1e-4)
    # and the other way round, from arbitrary latents
    eps2 = model.sample_latents(3, temperature=0.7, seed=3)
    again = model.encode(model.decode(eps2, y), y)
    for a, b in zip(again, eps2):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=2e-3)


@pytest.mark.parametrize('variant', ['affine_lu_learntop', 'additive_shuffle_ycond'])
def test_two_level_model_log_det_matches_brute_force_jacobian(variant):
    model = _model(**VARIANTS[variant])
    x = glow_tf.preprocess(_images(2, model.image_shape, seed=2))
    y = tf.constant([2, 0]) if model.n_classes else None
    _, log_det, _ = model.encode_with_log_det(x, y)
    for i in range(2):
        yi = y[i : i + 1] if y is not None else None
        expected = brute_force_log_det(lambda t: model.encode(t, yi), x[i : i + 1])
        assert_rel_close(log_det[i], expected)
    # the decoder's log-det is the negative at the corresponding point
    _, decode_log_det = model.decode_with_log_det(model.encode(x, y), y)
    np.testing.assert_allclose(decode_log_det.numpy(), -log_det.numpy(), rtol=1e-4)


def test_log_prob_is_change_of_variables():
    model = _model(learntop=True)
    x = glow_tf.preprocess(_images(3, seed=4))
    eps, log_det, _ = model.encode_with_log_det(x)
    normal = sum(np.sum(-0.5 * (np.log(2 * np.pi) + e.numpy() ** 2), axis=(1, 2, 3)) for e in eps)
    np.testing.assert_allclose(model.log_prob(x).numpy(), normal + log_det.numpy(), rtol=1e-5)


def test_bits_per_dim_formula_and_dequantisation():
    model = _model()
    x8 = _images(4, seed=5)
    n_bits = 5
    tf.random.set_seed(7)
    bits = model.bits_per_dim(x8, n_bits_x=n_bits)
    tf.random.set_seed(7)
    x = glow_tf.preprocess(x8, n_bits, noise=True)
    d = 8 * 8 * 3
    expected = -(model.log_prob(x).numpy() - d * math.log(2**n_bits)) / (d * math.log(2))
    np.testing.assert_allclose(bits.numpy(), expected, rtol=1e-5)
    # noise stays inside each bin: postprocess recovers the n-bit image exactly
    quantised = (x8.numpy() // 2 ** (8 - n_bits)) * 2 ** (8 - n_bits)
    np.testing.assert_array_equal(glow_tf.postprocess(x, n_bits).numpy(), quantised)
    with pytest.raises(ValueError, match='n_bits_x'):
        glow_tf.preprocess(x8, n_bits_x=9)


def test_class_conditional_objective_starts_at_uniform_classifier():
    model = glow_tf.Glow(**SMALL, n_classes=10)
    x8 = _images(4, seed=6)
    y = tf.constant([0, 3, 9, 1])
    model.initialize(glow_tf.preprocess(x8), y)
    bits_x, bits_y = model.objective(x8, y)
    assert bits_x.shape == (4,) and bool(tf.reduce_all(bits_x > 0))
    np.testing.assert_allclose(bits_y.numpy(), math.log2(10), rtol=1e-6)  # zero-init classifier
    with pytest.raises(ValueError, match='class-conditional'):
        model.objective(x8)


def test_data_dependent_init_normalises_the_first_actnorm():
    model = glow_tf.Glow(**SMALL)
    x = glow_tf.preprocess(_images(16, seed=7))
    model.initialize(x)
    first = model.flow_steps[0].actnorm
    h, _ = first.forward(glow_tf.squeeze2d(x))
    np.testing.assert_allclose(tf.reduce_mean(h, [0, 1, 2]).numpy(), 0.0, atol=1e-4)
    np.testing.assert_allclose(tf.math.reduce_std(h, [0, 1, 2]).numpy(), 1.0, atol=1e-3)
    assert all(float(a.initialized) == 1.0 for a in model.actnorm_layers())


def test_initialize_refuses_a_restored_model_unless_forced(tmp_path):
    trained = glow_tf.Glow(**SMALL)
    trained.initialize(glow_tf.preprocess(_images(8, seed=8)))
    from glow_tf.runs import checkpoint_format as ckpt_lib

    prefix = ckpt_lib.make_checkpoint(trained).write(str(tmp_path / 'ckpt'))
    restored = glow_tf.Glow(**SMALL)
    assert not restored.is_initialized
    ckpt_lib.make_checkpoint(restored).read(prefix).assert_existing_objects_matched()
    assert restored.is_initialized
    before = [v.numpy().copy() for v in restored.weights]
    first = restored.flow_steps[0].actnorm
    first_bias = first.bias.numpy().copy()
    other = glow_tf.preprocess(_images(8, seed=9)) * 3.0  # statistics unlike the first batch
    with pytest.raises(ValueError, match='already initialised.*force=True'):
        restored.initialize(other)
    for v, b in zip(restored.weights, before):
        np.testing.assert_array_equal(v.numpy(), b)  # nothing was overwritten
    restored.initialize(other, force=True)
    assert not np.allclose(first.bias.numpy(), first_bias)


def test_temperature_zero_is_deterministic_and_seeds_repeat():
    model = _model(learntop=True)
    a = model.sample(3, temperature=0.0).numpy()
    b = model.sample(3, temperature=0.0).numpy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a[0], a[2], atol=1e-6)  # every zero-temperature sample is the mode
    s1, s2 = model.sample(2, 0.8, seed=4).numpy(), model.sample(2, 0.8, seed=4).numpy()
    np.testing.assert_array_equal(s1, s2)
    assert not np.allclose(s1, model.sample(2, 0.8, seed=5).numpy())
    assert s1.shape == (2, 8, 8, 3)


def test_temperature_scales_every_level():
    model = _model()
    eps_hot = model.sample_latents(64, temperature=1.0, seed=1)
    eps_cold = model.sample_latents(64, temperature=0.5, seed=1)
    for hot, cold in zip(eps_hot, eps_cold):
        np.testing.assert_allclose(cold.numpy(), 0.5 * hot.numpy(), rtol=1e-6)


def test_config_round_trip_gives_the_same_density():
    model = _model(flow_coupling='affine', lu_decomposed=True, learntop=True)
    clone = glow_tf.Glow.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    x = glow_tf.preprocess(_images(2, seed=8), noise=False)
    np.testing.assert_allclose(clone.log_prob(x).numpy(), model.log_prob(x).numpy(), rtol=1e-6)
    import json

    assert json.loads(json.dumps(model.get_config())) == model.get_config()


def test_checkpoint_memory_mode_gives_the_plain_gradients():
    plain = _model(depth=2)
    ckpt = glow_tf.Glow.from_config({**plain.get_config(), 'memory_mode': 'checkpoint'})
    ckpt.set_weights(plain.get_weights())
    x8 = _images(2, seed=9)
    x = glow_tf.preprocess(x8, noise=False)
    grads = []
    for model in (plain, ckpt):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(model.log_prob(x))
        grads.append(tape.gradient(loss, model.trainable_variables))
    for g_plain, g_ckpt in zip(*grads):
        np.testing.assert_allclose(g_ckpt.numpy(), g_plain.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    'kwargs,match',
    [
        (dict(image_shape=(12, 12, 3), n_levels=3), r'divisible by 2\*\*n_levels = 8'),
        (dict(width=0), 'width'),
        (dict(width=-4), 'width'),
        (dict(depth=0), 'depth'),
        (dict(n_levels=0), 'n_levels'),
        (dict(flow_permutation='random'), 'flow_permutation'),
        (dict(flow_coupling='spline'), 'flow_coupling'),
        (dict(memory_mode='cheap'), 'memory_mode'),
        (dict(n_classes=-1), 'n_classes'),
        (dict(image_shape=(8, 8)), 'image_shape'),
    ],
)
def test_invalid_configurations_raise_value_error_naming_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        glow_tf.Glow(**{**SMALL, **kwargs})


def test_wrong_input_shapes_are_named():
    model = glow_tf.Glow(**SMALL)
    with pytest.raises(ValueError, match=r'expected images of shape \[batch, 8, 8, 3\]'):
        model.log_prob(tf.zeros([1, 16, 16, 3]))
    with pytest.raises(ValueError, match='expected latents of shapes'):
        model.decode([tf.zeros([1, 4, 4, 6])])


def test_objective_with_explicit_noise_is_reproducible():
    model = _model()
    x8 = _images(3, seed=10)
    u = tf.random.stateless_uniform([3, 8, 8, 3], seed=[4, 4])
    a, _ = model.objective(x8, noise=u)
    b, _ = model.objective(x8, noise=u)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    x = tf.cast(x8, tf.float32) / 256.0 - 0.5 + u / 256.0
    expected = glow_tf.nats_to_bits_per_dim(model.log_prob(x), 8 * 8 * 3)
    np.testing.assert_allclose(a.numpy(), expected.numpy(), rtol=1e-6)
    c, _ = model.objective(x8, noise=tf.zeros_like(u))
    assert not np.allclose(a.numpy(), c.numpy())


def test_seed_fixes_every_initial_weight():
    a, b = glow_tf.Glow(**SMALL, seed=3), glow_tf.Glow(**SMALL, seed=3)
    c = glow_tf.Glow(**SMALL, seed=4)
    for va, vb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(va, vb)
    assert any(not np.array_equal(va, vc) for va, vc in zip(a.get_weights(), c.get_weights()))


def test_config_written_before_edge_bias_rebuilds_the_old_model(tmp_path):
    """config.json files of runs made before edge bias (no 'edge_bias' key) rebuild the model those
    runs trained: plain zero padding and the per-position learntop, so their checkpoints load."""
    import json

    from glow_tf.runs.config import TrainConfig

    cfg = TrainConfig(problem='mnist', n_levels=2, depth=1, width=4, learntop=True)
    cfg, _ = cfg.resolve((8, 8, 3), 100, 10)
    old = cfg.to_dict()
    del old['edge_bias'], old['learntop_form']
    (tmp_path / 'config.json').write_text(json.dumps(old))
    legacy = TrainConfig.load(str(tmp_path / 'config.json'))
    assert (legacy.edge_bias, legacy.learntop_form) == (0, 'position')
    model = glow_tf.Glow(**legacy.to_model_kwargs())
    assert tuple(model.top_prior.top.shape) == (2, 2, 48)
    assert tuple(model.flow_steps[0].coupling.nn.kernel1.shape) == (3, 3, 6, 4)
    new = glow_tf.Glow(**cfg.to_model_kwargs())
    assert tuple(new.flow_steps[0].coupling.nn.kernel1.shape) == (3, 3, 7, 4)  # + border channel
    assert not hasattr(new.top_prior, 'top')


def test_learntop_as_the_original_learns_a_constant_plus_a_border_pattern():
    """The original's learntop is a zero conv of a zero tensor: inside the border it is one
    constant per channel, whatever its weights."""
    prior = glow_tf.TopPrior(learntop=True, network=glow_tf.ZeroConvs())
    prior.build((None, 4, 4, 2))
    perturb_weights(prior, scale=0.5, seed=2)
    mean, log_scale = prior.mean_log_scale(1)
    inner = mean.numpy()[0, 1:-1, 1:-1]
    np.testing.assert_allclose(inner, np.broadcast_to(inner[:1, :1], inner.shape), rtol=1e-6)
    assert np.ptp(mean.numpy()[0, :, :, 0]) > 1e-3  # the border differs
