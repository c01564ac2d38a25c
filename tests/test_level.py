"""The Level layer (squeeze -> K steps -> split), the FlowLayer methods the memory modes use, and
the compatibility of a model organised in levels with what was saved before: checkpoint keys
(the shipped models/celeba64) and the `.keras` weight layout."""

import io
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import tensorflow as tf

import glow_tf
from glow_tf.flows.base import FlowLayer, chain_forward, chain_inverse
from glow_tf.model.level import Level
from glow_tf.runs import checkpoint_format as ckpt_lib
from glow_tf.runs.config import TrainConfig
from tests.flow_testing import assert_rel_close, brute_force_log_det, perturb_weights

SHIPPED = Path(__file__).resolve().parents[1] / 'models' / 'celeba64'


def _level(split=True, **kw):
    level = Level((4, 4, 3), depth=2, split=split, width=8, name='lvl', **kw)
    level.build((None, 4, 4, 3))
    perturb_weights(level, scale=0.05, seed=1)
    return level


def _x(shape=(2, 4, 4, 3), seed=0):
    return tf.constant(np.random.default_rng(seed).uniform(-0.5, 0.5, shape), tf.float32)


@pytest.mark.parametrize('split', [True, False])
def test_level_is_squeeze_steps_split_and_inverts_exactly(split):
    level = _level(split)
    x = _x()
    z, eps, log_det = level.forward(x)
    # by hand: squeeze, the steps in order, the split
    h, steps_log_det = chain_forward(level.steps, glow_tf.squeeze2d(x))
    if split:
        z_hand, eps_hand, split_log_det = level.split.forward(h)
        np.testing.assert_array_equal(eps.numpy(), eps_hand.numpy())
        assert tuple(z.shape[1:]) == level.output_z_shape == (2, 2, 6)
        assert tuple(eps.shape[1:]) == level.eps_shape == (2, 2, 6)
    else:
        z_hand, split_log_det = h, 0.0
        assert eps is None and level.eps_shape is None and level.output_z_shape == (2, 2, 12)
    np.testing.assert_array_equal(z.numpy(), z_hand.numpy())
    np.testing.assert_allclose(log_det.numpy(), (steps_log_det + split_log_det).numpy(), 1e-6)

    back, inv_log_det = level.inverse(z, eps)
    np.testing.assert_allclose(back.numpy(), x.numpy(), atol=1e-5)
    np.testing.assert_allclose(inv_log_det.numpy(), -log_det.numpy(), rtol=1e-5, atol=1e-4)


def test_level_log_det_matches_brute_force_jacobian():
    level = _level(split=True)
    x = _x((1, 4, 4, 3), seed=3)
    expected = brute_force_log_det(lambda t: level.forward(t)[:2], x)
    assert_rel_close(level.forward(x)[2][0], expected)


def test_level_builds_its_layers_weights_under_its_name():
    level = Level((4, 4, 3), depth=2, width=8, name='lvl')
    assert not level.built and not level.variables  # the constructor creates no weights
    level.build((None, 4, 4, 3))
    paths = [v.path for v in level.variables]
    assert paths and all(
        p.startswith(('lvl/lvl_step0/', 'lvl/lvl_step1/', 'lvl/lvl_split/')) for p in paths
    )
    assert 'lvl/lvl_step0/actnorm/bias' in paths and 'lvl/lvl_split/prior/kernel' in paths
    with pytest.raises(ValueError, match=r'made for inputs \(4, 4, 3\)'):
        Level((4, 4, 3), depth=1, width=4).build((None, 8, 8, 3))


def test_level_builds_on_first_use():
    level = Level((4, 4, 3), depth=1, width=4, name='lazy')
    z, eps, _ = level.forward(_x())
    assert level.built and tuple(z.shape) == (2, 2, 2, 6) and tuple(eps.shape) == (2, 2, 2, 6)


def test_level_memory_modes_give_the_same_values_and_gradients():
    level = _level()
    x = _x(seed=4)
    results = {}
    for mode in ('plain', 'checkpoint', 'reversible'):
        level.memory_mode = mode
        with tf.GradientTape() as tape:
            tape.watch(x)
            z, eps, log_det = level.forward(x)
            loss = tf.reduce_sum(z**2) + tf.reduce_sum(eps) - tf.reduce_sum(log_det)
        results[mode] = [loss] + tape.gradient(loss, [x] + level.trainable_variables)
    for mode in ('checkpoint', 'reversible'):
        for a, b in zip(results['plain'], results[mode]):
            np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-3, atol=1e-4)


def test_level_checks_its_own_arguments():
    with pytest.raises(ValueError, match='depth'):
        Level((4, 4, 3), depth=0)
    with pytest.raises(ValueError, match='memory_mode'):
        Level((4, 4, 3), depth=1, memory_mode='cheap')
    with pytest.raises(ValueError, match='even height and width'):
        Level((5, 4, 3), depth=1)
    level = Level((4, 4, 3), depth=1, width=4)
    with pytest.raises(ValueError, match='memory_mode'):
        level.memory_mode = 'cheap'
    with pytest.raises(ValueError, match='needs the latent'):
        level.inverse(tf.zeros([1, 2, 2, 6]))


def test_standalone_layers_reject_the_options_they_own():
    with pytest.raises(ValueError, match='n_classes'):
        glow_tf.TopPrior(n_classes=-1)
    with pytest.raises(ValueError, match='width'):  # checked by the paper's network
        glow_tf.CouplingNetworks(width=0)
    for make in (glow_tf.Coupling, glow_tf.Split):  # flow layers take their network, not make it
        with pytest.raises(ValueError, match='network'):
            make()
    with pytest.raises(ValueError, match='network'):
        glow_tf.TopPrior(learntop=True)
    with pytest.raises(ValueError, match='head'):
        glow_tf.TopPrior(n_classes=3)
    glow_tf.TopPrior(learntop=True, learntop_form='position')  # no network to take


def test_glow_is_its_levels_and_the_top_prior():
    model = glow_tf.Glow(image_shape=(8, 8, 3), n_levels=3, depth=2, width=4)
    assert [level.name for level in model.levels] == ['level0', 'level1', 'level2']
    assert model.flow_steps == [s for level in model.levels for s in level.steps]
    assert model.splits == [level.split for level in model.levels[:-1]]
    assert model.levels[-1].split is None
    assert model.latent_shapes == ((4, 4, 6), (2, 2, 12), (1, 1, 48))
    assert model.actnorm_layers() == [
        a for level in model.levels for step in level.steps for a in step.actnorm_layers()
    ]
    model.memory_mode = 'reversible'
    assert [level.memory_mode for level in model.levels] == ['reversible'] * 3
    assert model.get_config()['memory_mode'] == 'reversible'
    with pytest.raises(ValueError, match='memory_mode'):
        model.memory_mode = 'cheap'


@pytest.mark.parametrize('kind', ['affine', 'additive'])
def test_coupling_reconstruct_and_backprop_equals_the_default(kind):
    """Coupling's one-network-evaluation override gives FlowLayer's default answer."""
    coupling = glow_tf.Coupling(kind, glow_tf.CouplingNetworks(8, seed=2))
    x = _x((2, 4, 4, 6), seed=5)
    coupling.build(tuple(x.shape))
    perturb_weights(coupling, scale=0.1, seed=2)
    y, _ = coupling.forward(x)
    dy = _x((2, 4, 4, 6), seed=6)
    dlog_det = tf.constant([0.5, -2.0])
    x_o, dx_o, grads_o = coupling.reconstruct_and_backprop(y, dy, dlog_det)
    x_d, dx_d, grads_d = FlowLayer.reconstruct_and_backprop(coupling, y, dy, dlog_det)
    np.testing.assert_allclose(x_o.numpy(), x.numpy(), atol=1e-5)
    np.testing.assert_allclose(x_o.numpy(), x_d.numpy(), atol=1e-6)
    np.testing.assert_allclose(dx_o.numpy(), dx_d.numpy(), rtol=1e-4, atol=1e-5)
    assert [v.ref() for v, _ in grads_o] == [v.ref() for v, _ in grads_d]
    for (v, a), (_, b) in zip(grads_o, grads_d):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5, err_msg=v.name)


def test_flow_step_parts_and_chain_inverse():
    step = glow_tf.FlowStep(glow_tf.CouplingNetworks(8, seed=1), seed=1)
    x = _x((2, 4, 4, 6), seed=7)
    step.build(tuple(x.shape))
    perturb_weights(step, scale=0.05, seed=1)
    assert step.invertible_parts() == [step.actnorm, step.mix, step.coupling]
    assert step.actnorm_layers() == [step.actnorm, step.coupling.nn.norm1, step.coupling.nn.norm2]
    y, log_det = step.forward(x)
    y_chain, log_det_chain = chain_forward(step.invertible_parts(), x)
    np.testing.assert_array_equal(y.numpy(), y_chain.numpy())
    back, inv_log_det = chain_inverse(step.invertible_parts(), y)
    np.testing.assert_allclose(back.numpy(), x.numpy(), atol=1e-5)
    np.testing.assert_allclose(inv_log_det.numpy(), -log_det_chain.numpy(), rtol=1e-5)


# ---- what was saved before the model had levels -------------------------------------------------
def test_shipped_checkpoint_of_the_last_release_maps_key_for_key_and_loads():
    shipped = SHIPPED  # models/celeba64, packaged by an earlier release
    prefix = ckpt_lib.find_checkpoint(str(shipped))
    model = glow_tf.Glow(**TrainConfig.load(str(shipped / 'config.json')).to_model_kwargs())
    names = ckpt_lib.model_variable_names(model)
    saved = {g: set(names) for g, names in ckpt_lib.stored_names(prefix).items()}
    # written before levels were tracked: every stored key maps onto exactly one variable
    assert ckpt_lib.is_legacy_checkpoint(prefix)
    assert (
        'level0_step0.actnorm.bias' in saved['model']
        and 'level0_split.prior.kernel' in saved['model']
    )
    migrated = {ckpt_lib.migrate_key('model', k) for k in saved['model']}
    assert migrated == set(names) and len(migrated) == len(saved['model'])
    assert (
        'level0.level0_step0.actnorm.bias' in names and 'level0.level0_split.prior.kernel' in names
    )

    loaded, _ = glow_tf.load_model(str(shipped))
    reader = tf.train.load_checkpoint(prefix)
    loaded_names = ckpt_lib.model_variable_names(loaded)
    for old in (
        'level0_step0.actnorm.bias',
        'level2_split.prior.kernel',
        'top_prior.top_conv.kernel',
    ):
        stored = reader.get_tensor(
            f"model/vars/{old.replace('.', '..')}/.ATTRIBUTES/VARIABLE_VALUE"
        )
        np.testing.assert_array_equal(
            loaded_names[ckpt_lib.migrate_key('model', old)].numpy(), stored
        )
    assert loaded.is_initialized


def test_migrate_key_is_the_map_from_the_last_release():
    m = ckpt_lib.migrate_key
    assert (
        m('model', 'level3_step12.coupling.nn.kernel1')
        == 'level3.level3_step12.coupling.nn.kernel1'
    )
    assert m('ema', 'level0_split.prior.bias') == 'level0.level0_split.prior.bias'
    assert (
        m('optimizer', 'level1_step0_actnorm_bias_momentum')
        == 'level1_level1_step0_actnorm_bias_momentum'
    )
    for group, key in [
        ('model', 'top_prior.top_conv.kernel'),
        ('optimizer', 'iteration'),
        ('state', 'step'),
        ('model', 'level0.level0_step0.actnorm.bias'),
        ('optimizer', 'level0_level0_step0_actnorm_bias_momentum'),
    ]:
        assert m(group, key) == key  # today's keys and the rest are unchanged


def _old_keras_weight_layout(n_steps, n_splits, learntop, n_classes):
    """The h5 dataset paths of a `.keras` file written before the model had levels (Keras walks
    the model's attributes: `flow_steps`, then `layers` for the splits and the top prior)."""

    def numbered(name, i):
        return name if i == 0 else f'{name}_{i}'

    def triple(prefix):
        return [f'{prefix}/vars/{k}' for k in range(3)]

    paths = []
    for i in range(n_steps):
        step = f"flow_steps/{numbered('flow_step', i)}"
        paths += triple(f'{step}/actnorm')
        for part in ('norm1', 'norm2', 'out'):
            paths += triple(f'{step}/coupling/nn/{part}')
        paths += [f'{step}/coupling/nn/vars/0', f'{step}/coupling/nn/vars/1']
        paths += [f'{step}/flow_layers/invertible_conv1x1/vars/0']
    for i in range(n_splits):
        paths += triple(f"layers/{numbered('split', i)}/prior")
    if n_classes:
        paths += triple('layers/top_prior/classifier') + triple('layers/top_prior/label_map')
    if learntop:
        paths += triple('layers/top_prior/top_conv')
    return sorted(paths)


def test_keras_file_weight_layout_is_the_one_written_before_levels(tmp_path):
    model = glow_tf.Glow(
        image_shape=(8, 8, 3), n_levels=3, depth=2, width=4, learntop=True, n_classes=3
    )
    path = tmp_path / 'glow.keras'
    model.save(str(path))
    with zipfile.ZipFile(path) as archive:
        weights = h5py.File(io.BytesIO(archive.read('model.weights.h5')), 'r')
        found = []
        weights.visititems(
            lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None
        )
    assert sorted(found) == _old_keras_weight_layout(6, 2, learntop=True, n_classes=3)


def test_level_config_round_trip():
    level = Level((4, 4, 3), depth=2, split=False, width=4, coupling='additive', name='lvl')
    again = Level.from_config(level.get_config())
    assert again.get_config() == level.get_config()
    assert [v.path for v in again.variables] == [v.path for v in level.variables]
    assert again.split is None and again.steps[0].coupling_kind == 'additive'
