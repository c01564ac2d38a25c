"""The TFP view: GlowBijector and the TransformedDistribution agree with the Keras model."""

import numpy as np
import pytest
import tensorflow as tf

import glow_tf
from glow_tf.model.bijector import GlowBijector, pack_latents, unpack_latents
from tests.flow_testing import perturb_weights

tfd = pytest.importorskip('tensorflow_probability').distributions


@pytest.fixture(scope='module')
def model():
    m = glow_tf.Glow(
        image_shape=(8, 8, 3), n_levels=2, depth=2, width=8, learntop=True, flow_coupling='affine'
    )
    m.initialize(tf.random.stateless_uniform([8, 8, 8, 3], seed=[0, 0]) - 0.5)
    perturb_weights(m, scale=0.05)
    return m


@pytest.fixture
def x():
    return tf.random.stateless_uniform([3, 8, 8, 3], seed=[1, 2]) - 0.5


def test_pack_unpack_round_trip(model):
    eps = model.sample_latents(2, seed=1)
    packed = pack_latents(eps, model.image_shape)
    assert packed.shape == (2, 8, 8, 3)
    for a, b in zip(unpack_latents(packed, model.latent_shapes), eps):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_bijector_agrees_with_the_layers(model, x):
    bij = model.bijector
    assert isinstance(bij, GlowBijector)
    eps = bij.inverse(x)
    np.testing.assert_allclose(
        eps.numpy(), pack_latents(model.encode(x), model.image_shape).numpy()
    )
    np.testing.assert_allclose(bij.forward(eps).numpy(), x.numpy(), atol=1e-4)
    _, log_det, _ = model.encode_with_log_det(x)
    np.testing.assert_allclose(
        bij.inverse_log_det_jacobian(x, event_ndims=3).numpy(), log_det.numpy(), rtol=1e-5
    )
    np.testing.assert_allclose(
        bij.forward_log_det_jacobian(eps, event_ndims=3).numpy(), -log_det.numpy(), rtol=1e-4
    )


def test_transformed_distribution_log_prob_equals_model(model, x):
    dist = model.distribution
    # TFP returns its non-CompositeTensor `_TransformedDistribution` for a plain bijector
    assert isinstance(dist, tfd.Distribution) and type(dist).__name__.endswith(
        'TransformedDistribution'
    )
    np.testing.assert_allclose(dist.log_prob(x).numpy(), model.log_prob(x).numpy(), rtol=1e-5)
    samples = dist.sample(2, seed=(1, 2))
    assert samples.shape == (2, 8, 8, 3)


def test_event_shapes(model):
    bij, dist = model.bijector, model.distribution
    assert tuple(bij.forward_event_shape([8, 8, 3])) == (8, 8, 3)
    assert tuple(bij.inverse_event_shape([8, 8, 3])) == (8, 8, 3)
    assert bij.forward_min_event_ndims == 3 and bij.inverse_min_event_ndims == 3
    assert tuple(dist.event_shape) == (8, 8, 3) and tuple(dist.batch_shape) == ()


def test_class_conditional_bijector_kwargs():
    m = glow_tf.Glow(image_shape=(8, 8, 3), n_levels=1, depth=1, width=4, n_classes=3)
    perturb_weights(m, seed=3)
    x = tf.random.stateless_uniform([2, 8, 8, 3], seed=[3, 3]) - 0.5
    y = tf.constant([0, 2])
    lp = m.distribution.log_prob(x, bijector_kwargs={'conditional_input': y})
    np.testing.assert_allclose(lp.numpy(), m.log_prob(x, y).numpy(), rtol=1e-5)
    other = m.log_prob(x, tf.constant([1, 1])).numpy()
    assert not np.allclose(lp.numpy(), other)  # the label matters
