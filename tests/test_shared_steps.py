"""One traced step function per level (glow_tf.model.shared_steps) and the weight terms it runs
on (glow_tf.flows.terms): the same values and gradients as running the steps one by one, one
trace per level, and the fallbacks (eager, data-dependent init, custom networks, a step function
that would read a variable)."""

import numpy as np
import pytest
import tensorflow as tf

import glow_tf
from glow_tf.flows.actnorm import ActNorm
from glow_tf.model.shared_steps import unstack_terms
from tests.flow_testing import perturb_weights


def _model(**kw):
    options = dict(
        image_shape=(8, 8, 3), n_levels=2, depth=3, width=16, seed=3, flow_coupling='affine'
    )
    model = glow_tf.Glow(**{**options, **kw})
    rng = np.random.default_rng(0)
    x = tf.constant(rng.integers(0, 256, (8, 8, 8, 3)), tf.float32)
    model.initialize(glow_tf.preprocess(x))
    perturb_weights(model, scale=0.05, seed=4)
    return model, x


def _share(model, enabled):
    model.shared_steps = 'always' if enabled else 'never'


def _loss_and_grads(model, x):
    variables = model.trainable_variables
    noise = tf.random.stateless_uniform(x.shape, seed=[5, 6])  # the same draw in every call

    @tf.function(autograph=False)
    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model.objective(x, noise=noise)[0])
        return loss, tape.gradient(loss, variables)

    return step


@pytest.mark.parametrize(
    'options',
    [
        {'flow_coupling': 'affine'},
        {'flow_coupling': 'additive', 'lu_decomposed': True},
        {'flow_permutation': 'shuffle'},
        {'flow_coupling': 'additive', 'edge_bias': False, 'flow_permutation': 'reverse'},
    ],
)
def test_shared_step_function_gives_the_same_loss_and_gradients(options):
    model, x = _model(**options)
    results = {}
    for shared in (True, False):
        _share(model, shared)
        step = _loss_and_grads(model, x)
        loss, grads = step(x)
        ops = step.get_concrete_function(x).graph.get_operations()
        calls = sum(op.type in ('PartitionedCall', 'StatefulPartitionedCall') for op in ops)
        results[shared] = (loss.numpy(), [g.numpy() for g in grads], len(ops), calls)
    (loss_s, grads_s, ops_s, calls_s), (loss_1, grads_1, ops_1, calls_1) = results[1], results[0]
    np.testing.assert_allclose(loss_s, loss_1, rtol=1e-6)
    assert len(grads_s) == len(grads_1) == len(model.trainable_variables)
    for v, a, b in zip(model.trainable_variables, grads_s, grads_1):
        scale = np.abs(b).max() + 1e-6
        np.testing.assert_allclose(a / scale, b / scale, atol=2e-5, err_msg=v.path)
    # shared: each level's 3 steps are 3 calls of one function (and 3 calls of its gradient)
    assert calls_s >= 2 * 3 * 2 and calls_1 == 0
    assert ops_s < ops_1
    for level in model.levels:
        assert len(level.shared_steps._functions['forward']._list_all_concrete_functions()) == 1


@pytest.mark.parametrize('options', [{}, {'lu_decomposed': True, 'flow_coupling': 'additive'}])
def test_shared_decode_and_encode_equal_the_steps_one_by_one_and_invert(options):
    model, x = _model(**options)
    x = glow_tf.preprocess(x)
    encode = tf.function(model.encode_with_log_det, autograph=False)
    decode = tf.function(model.decode_with_log_det, autograph=False)
    eps_s, log_det_s, _ = encode(x)
    x_back, _ = decode(eps_s)
    np.testing.assert_allclose(x_back.numpy(), x.numpy(), atol=1e-4)  # a bin is 3.9e-3
    assert model.levels[0].shared_steps._functions.keys() == {'forward', 'inverse'}
    _share(model, False)
    eps_1, log_det_1, _ = tf.function(model.encode_with_log_det, autograph=False)(x)
    x_1, _ = tf.function(model.decode_with_log_det, autograph=False)(eps_s)
    np.testing.assert_allclose(log_det_s.numpy(), log_det_1.numpy(), rtol=1e-5, atol=1e-4)
    for a, b in zip(eps_s, eps_1):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(x_back.numpy(), x_1.numpy(), atol=1e-4)


def test_steps_run_one_by_one_eagerly_and_in_the_data_dependent_init():
    model, x = _model()
    model.encode(glow_tf.preprocess(x))  # eager
    for level in model.levels:
        assert level.shared_steps._functions == {}
    level = model.levels[0]
    assert tf.function(lambda: tf.constant(level.shared_steps.usable()))().numpy()
    level.steps[1].actnorm.begin_data_init()  # armed: the next forward pass initialises
    assert not tf.function(lambda: tf.constant(level.shared_steps.usable()))().numpy()


def test_a_step_function_that_reads_a_variable_is_detected_and_not_used(monkeypatch):
    """If a layer computed part of its weights inside the step (reading its own variable), one
    shared graph would apply step 1's weights in every step: the level must notice and run its
    steps one by one."""

    def reads_its_bias(self, x):  # ActNorm with b read from the variable, not from the terms
        if self.awaiting_data_init:
            self._data_init(x)
        terms = self.current_terms('forward', x.shape)
        return (x + self.bias) * terms['scale'], tf.fill([x.shape[0]], 0.0)

    monkeypatch.setattr(ActNorm, '_forward', reads_its_bias)
    model, x = _model()
    _share(model, False)
    expected = _loss_and_grads(model, x)(x)[0].numpy()
    _share(model, True)
    loss = _loss_and_grads(model, x)(x)[0].numpy()
    assert all(level.shared_steps._reads_variables for level in model.levels)
    np.testing.assert_allclose(loss, expected, rtol=1e-6)


def test_a_custom_coupling_network_runs_its_steps_one_by_one():
    import keras

    def network(in_channels, out_channels, name):
        return keras.Sequential(
            [
                keras.layers.Conv2D(8, 3, padding='same', activation='relu'),
                keras.layers.Conv2D(out_channels, 3, padding='same', kernel_initializer='zeros'),
            ],
            name=name,
        )

    model = glow_tf.Glow(image_shape=(8, 8, 3), n_levels=2, depth=2, coupling_network=network)
    x = tf.constant(np.random.default_rng(1).integers(0, 256, (4, 8, 8, 3)), tf.float32)
    model.initialize(glow_tf.preprocess(x))
    loss, grads = _loss_and_grads(model, x)(x)
    assert np.isfinite(loss.numpy()) and all(g is not None for g in grads)
    assert all(not level.shared_steps._functions for level in model.levels)


def test_weight_terms_of_stacked_weights_are_the_stacked_terms_of_each_step():
    model, _ = _model(lu_decomposed=True)
    steps = model.levels[0].steps
    for part_index in range(3):  # ActNorm, the 1x1 convolution, the coupling
        parts = [step.invertible_parts()[part_index] for step in steps]
        for direction in ('forward', 'inverse'):
            shape = (4, 4, 4, 12)
            values = [tf.nest.map_structure(tf.convert_to_tensor, p.weight_values()) for p in parts]
            stacked = tf.nest.map_structure(lambda *v: tf.stack(v), *values)
            together = unstack_terms(parts[0].weight_terms(stacked, direction, shape), len(parts))
            for part, terms in zip(parts, together):
                own = tf.nest.map_structure(tf.convert_to_tensor, part.weight_values())
                alone = part.weight_terms(own, direction, shape)
                tf.nest.assert_same_structure(alone, terms)
                for a, b in zip(tf.nest.flatten(alone), tf.nest.flatten(terms)):
                    if isinstance(a, tf.Tensor):
                        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
                    else:
                        assert a == b


def test_by_default_training_steps_run_one_by_one_and_inference_shares():
    """'inference' (the default): a graph traced under a gradient tape runs the steps one by one
    (each step's backward pass overlaps the next; training steps stay as fast as they were),
    a graph without one (decoding, test passes) shares; 'never' and bad values."""
    model, x = _model()
    assert model.shared_steps == 'inference' and model.get_config()['shared_steps'] == 'inference'
    step = _loss_and_grads(model, x)
    step(x)
    ops = step.get_concrete_function(x).graph.get_operations()
    assert not any(op.type == 'PartitionedCall' for op in ops)
    assert all(not level.shared_steps._functions for level in model.levels)
    tf.function(model.encode, autograph=False)(glow_tf.preprocess(x))
    assert all('forward' in level.shared_steps._functions for level in model.levels)
    model.shared_steps = 'never'
    assert all(level.shared_steps.policy == 'never' for level in model.levels)
    with pytest.raises(glow_tf.errors.ArgumentError, match='shared_steps must be one of'):
        model.shared_steps = 'sometimes'
    again = glow_tf.Glow.from_config(model.get_config())
    assert again.shared_steps == 'never'


def test_the_editor_runs_steps_one_by_one_and_the_other_tools_share(logdir):
    """One face decodes ~10 % faster with the steps one by one (the editor compiles while the
    page loads, so the shorter first call of shared steps buys it nothing); sample.py and
    manipulate.py keep the default."""
    from glow_tf.editor.engine import load_editor_flow
    from glow_tf.tools.trained import load_trained_model

    assert load_editor_flow(str(logdir))[0].model.shared_steps == 'never'
    assert load_trained_model(str(logdir)).model.shared_steps == 'inference'
