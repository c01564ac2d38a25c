"""Checkpoint variable names: stable, independent of list order, and compatible with
checkpoints written by the earlier (index-suffix) naming."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import glow_tf
from glow_tf.runs import checkpoint_format as ckpt_lib
from glow_tf.variables import tf_variables


def _legacy_named_variables(variables, strip_prefix=None):
    """The naming rule checkpoints were written with before: colliding names got `__<index>`."""
    names = []
    for i, v in enumerate(variables):
        path = getattr(v, 'path', None) or getattr(v, 'name', f'var{i}')
        if strip_prefix and path.startswith(strip_prefix + '/'):
            path = path[len(strip_prefix) + 1 :]
        names.append(ckpt_lib._key(path))
    out = {}
    for i, (n, tv) in enumerate(zip(names, tf_variables(variables))):
        if n in out or names.count(n) > 1:
            n = f'{n}__{i}'
        out[n] = tv
    return out


def test_colliding_names_do_not_depend_on_list_order():
    a = tf.Variable(tf.zeros([3]), name='layer/kernel')
    b = tf.Variable(tf.zeros([2, 3]), name='layer/kernel')  # same path, other shape
    c = tf.Variable(tf.zeros([4]), name='other/bias')
    forward = ckpt_lib.named_variables([a, b, c])
    backward = ckpt_lib.named_variables([c, b, a])
    assert {k: id(v) for k, v in forward.items()} == {k: id(v) for k, v in backward.items()}
    assert set(forward) == {
        'layer.kernel_0__3_float32',
        'layer.kernel_0__2x3_float32',
        'other.bias_0',
    }
    assert list(forward.values()) == [a, b, c]  # list order kept (the EMA group zips on it)


def test_indistinguishable_variables_are_refused():
    a = tf.Variable(tf.zeros([3]), name='w')
    b = tf.Variable(tf.ones([3]), name='w')
    with pytest.raises(ValueError, match="share the checkpoint name 'w_0__3_float32'"):
        ckpt_lib.named_variables([a, b])


def test_checkpoint_written_with_the_earlier_naming_still_loads(tmp_path):
    kw = dict(image_shape=(8, 8, 3), n_levels=2, depth=1, width=8, n_classes=3, learntop=True)
    old = glow_tf.Glow(**kw)
    old.initialize(
        tf.random.stateless_uniform([4, 8, 8, 3], seed=[1, 2]) - 0.5, tf.constant([0, 1, 2, 0])
    )
    opt = keras.optimizers.Adamax(1e-3)
    opt.build(old.trainable_variables)
    opt.iterations.assign(7)
    groups = {
        'model': _legacy_named_variables(old.variables, old.name),
        'optimizer': ckpt_lib.optimizer_variable_names(opt, old),
    }
    # A Glow and its optimiser have no colliding names, so both rules agree on every name.
    assert groups['model'].keys() == ckpt_lib.model_variable_names(old).keys()
    assert _legacy_named_variables(opt.variables, opt.name).keys() == {
        k if k == 'iteration' or k == 'learning_rate' else f'{old.name}_{k}'
        for k in groups['optimizer']
    }
    prefix = tf.train.Checkpoint(
        **{k: ckpt_lib.variable_group(v) for k, v in groups.items()}
    ).write(str(tmp_path / 'old'))

    new = glow_tf.Glow(**kw)
    new_opt = keras.optimizers.Adamax(1e-3)
    new_opt.build(new.trainable_variables)
    status = ckpt_lib.make_checkpoint(new, optimizer=new_opt).read(prefix)
    status.assert_existing_objects_matched()
    for v_old, v_new in zip(old.variables, new.variables):
        np.testing.assert_array_equal(v_old.numpy(), v_new.numpy())
    assert int(new_opt.iterations.numpy()) == 7 and new.is_initialized


def test_names_do_not_depend_on_the_model_or_optimizer_name():
    """Keras numbers the names per process (glow, glow_1; adamax, adamax_1) and names an
    optimiser slot after its variable's path, model name included: checkpoint names drop both."""
    kw = dict(image_shape=(8, 8, 3), n_levels=2, depth=1, width=4)
    names = []
    for model_name in ('glow', 'another_glow'):
        model = glow_tf.Glow(**kw, name=model_name)
        opt = keras.optimizers.Adamax(1e-3)
        opt.build(model.trainable_variables)
        assert any(v.path.startswith(f'{opt.name}/{model_name}_level0_') for v in opt.variables)
        names.append(
            (
                ckpt_lib.model_variable_names(model).keys(),
                ckpt_lib.optimizer_variable_names(opt, model).keys(),
            )
        )
    assert names[0] == names[1]
    assert 'level0_level0_step0_actnorm_bias_momentum' in names[0][1]
    assert 'level0.level0_step0.actnorm.bias' in names[0][0]
