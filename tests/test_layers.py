"""Every flow layer: exact inverse, log-det against a brute-force Jacobian, config round trip."""

import numpy as np
import pytest
import tensorflow as tf

import glow_tf
from glow_tf.flows.invertible_conv import lu_factors, random_rotation
from tests.flow_testing import (
    assert_rel_close,
    brute_force_log_det,
    edge_padded_conv_by_hand,
    perturb_weights,
)

SHAPE = (2, 4, 4, 6)  # [B, H, W, C]


def _x(shape=SHAPE, seed=0):
    return tf.random.stateless_normal(shape, seed=[seed, 1])


def _built(layer, shape=SHAPE, seed=1):
    layer.build(shape)
    perturb_weights(layer, seed=seed)
    return layer


FLOW_LAYERS = {
    'actnorm': lambda: glow_tf.ActNorm(),
    'invconv': lambda: glow_tf.InvertibleConv1x1(seed=3),
    'invconv_lu': lambda: glow_tf.InvertibleConv1x1(lu_decomposed=True, seed=3),
    'reverse': lambda: glow_tf.ChannelPermutation('reverse'),
    'shuffle': lambda: glow_tf.ChannelPermutation('shuffle', seed=5),
    'additive': lambda: glow_tf.Coupling('additive', network=glow_tf.CouplingNetworks(8)),
    'affine': lambda: glow_tf.Coupling('affine', network=glow_tf.CouplingNetworks(8)),
    'step_affine_lu': lambda: glow_tf.FlowStep(
        glow_tf.CouplingNetworks(8), permutation='1x1', coupling='affine', lu_decomposed=True
    ),
    'step_additive_shuffle': lambda: glow_tf.FlowStep(
        glow_tf.CouplingNetworks(8), permutation='shuffle', coupling='additive'
    ),
}


@pytest.mark.parametrize('name', sorted(FLOW_LAYERS))
def test_flow_layer_round_trip_and_log_dets(name):
    layer = _built(FLOW_LAYERS[name]())
    x = _x()
    y, fldj = layer.forward(x)
    x_back, ildj = layer.inverse(y)
    assert y.shape == x.shape and fldj.shape == (SHAPE[0],) and ildj.shape == (SHAPE[0],)
    np.testing.assert_allclose(x_back.numpy(), x.numpy(), atol=2e-5)
    np.testing.assert_allclose(ildj.numpy(), -fldj.numpy(), rtol=1e-5, atol=1e-5)
    if name not in ('reverse', 'shuffle'):
        assert not np.allclose(y.numpy(), x.numpy()), "random weights should move the input"
    for i in range(SHAPE[0]):
        expected = brute_force_log_det(lambda t: layer.forward(t)[0], x[i : i + 1])
        assert_rel_close(fldj[i], expected)


@pytest.mark.parametrize('name', sorted(FLOW_LAYERS))
def test_flow_layer_config_round_trip(name):
    layer = _built(FLOW_LAYERS[name]())
    clone = type(layer).from_config(layer.get_config())
    clone.build(SHAPE)
    clone.set_weights(layer.get_weights())
    x = _x(seed=4)
    np.testing.assert_allclose(clone.forward(x)[0].numpy(), layer.forward(x)[0].numpy(), atol=1e-6)


def test_lu_factors_reconstruct_the_matrix():
    w = random_rotation(7, seed=11)
    p, lower, upper = lu_factors(w)
    np.testing.assert_allclose(p @ lower @ upper, w, atol=1e-12)
    np.testing.assert_allclose(np.diag(lower), 1.0)
    assert np.allclose(np.triu(lower, 1), 0) and np.allclose(np.tril(upper, -1), 0)


def test_lu_and_plain_1x1_start_from_the_same_rotation():
    x = _x()
    plain, lu = (
        glow_tf.InvertibleConv1x1(seed=9),
        glow_tf.InvertibleConv1x1(lu_decomposed=True, seed=9),
    )
    plain.build(SHAPE), lu.build(SHAPE)
    np.testing.assert_allclose(lu.forward(x)[0].numpy(), plain.forward(x)[0].numpy(), atol=1e-5)
    assert abs(float(plain.log_abs_det())) < 1e-5  # a rotation has |det| = 1


def test_actnorm_data_init_gives_zero_mean_unit_variance():
    x = 3.0 + 2.5 * _x((16, 4, 4, 5), seed=2)
    layer = glow_tf.ActNorm()
    layer.build(x.shape)
    layer.begin_data_init()
    y, _ = layer.forward(x)
    np.testing.assert_allclose(tf.reduce_mean(y, [0, 1, 2]).numpy(), 0.0, atol=1e-4)
    np.testing.assert_allclose(tf.math.reduce_std(y, [0, 1, 2]).numpy(), 1.0, atol=1e-3)
    assert float(layer.initialized) == 1.0
    y_again, _ = layer.forward(x * 2.0)  # init happens once only
    np.testing.assert_allclose(
        y_again.numpy(), (2.0 * x + layer.bias) * tf.exp(3.0 * layer.logs), rtol=1e-5, atol=1e-5
    )


def test_actnorm_init_averaged_across_workers_equals_init_on_the_union():
    """The Horovod path: each worker's mean and E[x^2] are averaged, not its variance."""
    x1 = _x((8, 4, 4, 3), seed=5)
    x2 = 4.0 + 3.0 * _x((8, 4, 4, 3), seed=6)
    other = {'calls': []}

    def average_with_worker2(t):  # the statistics worker 2 would contribute, in call order
        stats = [tf.reduce_mean(x2, [0, 1, 2]), tf.reduce_mean(tf.square(x2), [0, 1, 2])]
        mine = stats[len(other['calls'])]
        other['calls'].append(t)
        return (t + mine) / 2.0

    a, union = glow_tf.ActNorm(), glow_tf.ActNorm()
    a.build(x1.shape), union.build(x1.shape)
    a.begin_data_init(average_with_worker2)
    a.forward(x1)
    union.begin_data_init()
    union.forward(tf.concat([x1, x2], axis=0))
    assert len(other['calls']) == 2
    np.testing.assert_allclose(a.bias.numpy(), union.bias.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(a.logs.numpy(), union.logs.numpy(), rtol=1e-4, atol=1e-5)


def test_coupling_network_with_folded_actnorm_equals_the_unfolded_network():
    """NN() runs conv -> ActNorm -> ReLU as one fused conv(x, K·s) + b·s -> ReLU: same values and
    same gradients for every parameter (ActNorm and zero-conv scales included)."""
    x = _x((3, 4, 4, 5), seed=7)
    nn = glow_tf.CouplingNetwork(width=16, out_channels=6, seed=2)
    nn.build(x.shape)
    perturb_weights(nn, seed=4)
    assert all(float(tf.reduce_max(tf.abs(v))) > 0 for v in nn.trainable_weights)

    def value_and_grads(fn):
        with tf.GradientTape() as tape:
            out = fn(x)
            loss = tf.reduce_sum(tf.sin(out))
        return out, tape.gradient(loss, nn.trainable_weights)

    folded, g_folded = value_and_grads(nn)
    unfolded, g_unfolded = value_and_grads(nn._call_unfolded)
    assert float(tf.reduce_max(tf.abs(unfolded))) > 0.1
    np.testing.assert_allclose(folded.numpy(), unfolded.numpy(), rtol=1e-5, atol=1e-5)
    for v, a, b in zip(nn.trainable_weights, g_folded, g_unfolded):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5, err_msg=v.path)


def test_coupling_network_data_init_runs_unfolded_and_normalises_the_hidden_layer():
    x = 2.0 + 3.0 * _x((16, 4, 4, 3), seed=8)
    nn = glow_tf.CouplingNetwork(width=8, out_channels=2, seed=1)
    nn.build(x.shape)
    nn.norm1.begin_data_init()
    nn.norm2.begin_data_init()
    nn(x)
    assert not nn.norm1.awaiting_data_init and float(nn.norm1.initialized) == 1.0
    h = tf.constant(edge_padded_conv_by_hand(x, nn.kernel1), tf.float32)
    h = nn.norm1.forward(h)[0]
    np.testing.assert_allclose(tf.reduce_mean(h, [0, 1, 2]).numpy(), 0.0, atol=1e-4)
    np.testing.assert_allclose(tf.math.reduce_std(h, [0, 1, 2]).numpy(), 1.0, atol=1e-3)


def test_squeeze_is_a_permutation_with_the_original_channel_order():
    x = tf.reshape(tf.range(2 * 4 * 6 * 3, dtype=tf.float32), [2, 4, 6, 3])
    z = glow_tf.squeeze2d(x)
    assert z.shape == (2, 2, 3, 12)
    # output channel 4c + 2i + j holds x[2h+i, 2w+j, c]
    assert float(z[1, 1, 2, 4 * 2 + 2 * 1 + 0]) == float(x[1, 3, 4, 2])
    np.testing.assert_array_equal(glow_tf.unsqueeze2d(z).numpy(), x.numpy())
    assert brute_force_log_det(glow_tf.squeeze2d, x[:1]) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match='divisible by 2'):
        glow_tf.squeeze2d(tf.zeros([1, 3, 4, 1]))


def test_split_and_top_prior_share_the_factor_out_contract():
    """forward(z, y) -> (z_kept, ε, fldj) and inverse(z_kept, ε, y) -> (z, ildj) for both."""
    from glow_tf.flows.factor_out import FactorOut

    split = glow_tf.Split(glow_tf.ZeroConvs())
    prior = glow_tf.TopPrior(learntop=True, network=glow_tf.ZeroConvs())
    z = _x(seed=3)
    for layer in (split, prior):
        assert isinstance(layer, FactorOut)
        kept, eps, fldj = layer.forward(z, None)
        back, ildj = layer.inverse(kept, eps, None)
        np.testing.assert_allclose(back.numpy(), z.numpy(), atol=1e-6)
        assert fldj.shape == ildj.shape == (2,)
    assert split.forward(z)[0].shape[-1] + split.forward(z)[1].shape[-1] == z.shape[-1]


def test_split_round_trip_and_log_det():
    split = _built(glow_tf.Split(glow_tf.ZeroConvs()), seed=7)
    x = _x(seed=8)
    z1, eps, fldj = split.forward(x)
    assert z1.shape == (2, 4, 4, 3) and eps.shape == (2, 4, 4, 3)
    x_back, ildj = split.inverse(z1, eps)
    np.testing.assert_allclose(x_back.numpy(), x.numpy(), atol=2e-5)
    np.testing.assert_allclose(ildj.numpy(), -fldj.numpy(), rtol=1e-5)
    for i in range(2):
        expected = brute_force_log_det(lambda t: split.forward(t)[:2], x[i : i + 1])
        assert_rel_close(fldj[i], expected)


@pytest.mark.parametrize('learntop,n_classes', [(False, 0), (True, 0), (True, 4), (False, 3)])
def test_top_prior_round_trip_and_log_det(learntop, n_classes):
    prior = glow_tf.TopPrior(
        learntop, n_classes, network=glow_tf.ZeroConvs(), head=glow_tf.ZeroDenses()
    )
    prior.build(SHAPE)
    perturb_weights(prior, seed=9)
    z = _x(seed=10)
    y = tf.constant([1, 2]) if n_classes else None
    kept, eps, fldj = prior.forward(z, y)
    assert kept is None  # the top prior factors out everything
    z_back, ildj = prior.inverse(None, eps, y)
    np.testing.assert_allclose(z_back.numpy(), z.numpy(), atol=2e-5)
    for i in range(2):
        yi = y[i : i + 1] if n_classes else None
        expected = brute_force_log_det(lambda t: prior.forward(t, yi)[1], z[i : i + 1])
        assert_rel_close(fldj[i], expected)
    if not (learntop or n_classes):
        np.testing.assert_array_equal(eps.numpy(), z.numpy())  # standard normal prior
    if n_classes:
        with pytest.raises(ValueError, match='class-conditional'):
            prior.forward(z)


@pytest.mark.parametrize('direction', ['forward', 'inverse', 'class_logits'])
def test_top_prior_builds_on_first_use(direction):
    """An unbuilt TopPrior builds from the first tensor it is given, in either direction, like
    the flow layers; its weights then have the shapes an explicit build() gives."""
    nets = dict(network=glow_tf.ZeroConvs(), head=glow_tf.ZeroDenses())
    prior = glow_tf.TopPrior(learntop=True, n_classes=3, **nets)
    built = glow_tf.TopPrior(learntop=True, n_classes=3, **nets)
    built.build(SHAPE)
    z, y = _x(seed=11), tf.constant([0, 2])
    assert not prior.built
    if direction == 'class_logits':
        assert prior.class_logits(z).shape == (2, 3)
    else:
        args = (z, y) if direction == 'forward' else (None, z, y)
        *_, out, log_det = getattr(prior, direction)(*args)
        assert out.shape == SHAPE and log_det.shape == (2,)
    assert prior.built
    assert [tuple(w.shape) for w in prior.weights] == [tuple(w.shape) for w in built.weights]
    perturb_weights(prior, seed=12)
    kept, eps, fldj = prior.forward(z, y)
    assert kept is None  # the top prior factors out everything
    z_back, ildj = prior.inverse(None, eps, y)
    np.testing.assert_allclose(z_back.numpy(), z.numpy(), atol=2e-5)
    np.testing.assert_allclose(ildj.numpy(), -fldj.numpy(), rtol=1e-5)
    assert np.abs(fldj.numpy()).max() > 0  # the perturbed prior is not the identity


def test_invalid_layer_arguments_name_the_argument():
    with pytest.raises(ValueError, match='flow_coupling'):
        glow_tf.Coupling('multiplicative')
    with pytest.raises(ValueError, match='width'):
        glow_tf.CouplingNetwork(width=0, out_channels=4)
    with pytest.raises(ValueError, match='flow_permutation'):
        glow_tf.FlowStep(permutation='random')


def test_squeeze_is_a_flow_layer_with_zero_log_det():
    """Squeeze: [B, H, W, C] -> [B, H/2, W/2, 4C], exact inverse, log-det 0 (brute force: the
    Jacobian is a permutation), config round trip, and the original's channel order."""
    layer = glow_tf.Squeeze()
    x = _x((2, 4, 6, 3), seed=7)
    y, fldj = layer.forward(x)
    assert y.shape == (2, 2, 3, 12) and layer.compute_output_shape(x.shape)[0] == (2, 2, 3, 12)
    x_back, ildj = layer.inverse(y)
    np.testing.assert_array_equal(x_back.numpy(), x.numpy())
    np.testing.assert_array_equal(fldj.numpy(), [0.0, 0.0])
    np.testing.assert_array_equal(ildj.numpy(), [0.0, 0.0])
    assert abs(brute_force_log_det(lambda t: layer.forward(t)[0], x[:1])) < 1e-6
    # output channel 4c + 2i + j holds x[2h + i, 2w + j, c]
    np.testing.assert_array_equal(y[:, 1, 2, 4 * 2 + 2 * 1 + 0].numpy(), x[:, 3, 4, 2].numpy())
    clone = glow_tf.Squeeze.from_config(layer.get_config())
    np.testing.assert_array_equal(clone.forward(x)[0].numpy(), y.numpy())
    with pytest.raises(ValueError, match='divisible by 2'):
        layer.forward(_x((1, 3, 4, 1)))
