"""memory_mode='reversible' (glow_tf/model/memory.py): gradients by exact inversion equal the plain
mode's, eagerly and under tf.function, on a 2-level model with random (non-identity) weights.

Tolerance: the reversible backward pass reconstructs each step's input with the float32 inverse,
so its gradients differ from the plain mode's by round-off (typically ~1e-6 relative). Near a ReLU
kink of a coupling network a ~1e-6 change of the input can flip a unit and move a gradient entry
by much more (plain-mode gradients themselves jump like that under 1e-5 input noise), so the
check is on the relative L2 error over all gradients (< 1e-3) and per variable (< 1e-2): a real
bug (a missing or misassigned variable gradient, a wrong reconstruction) gives O(1) errors.
"""

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import glow_tf
from glow_tf.flows.base import chain_forward
from glow_tf.model.memory import checkpointed_forward, reversible_forward

CONFIGS = [('additive', False), ('affine', False), ('affine', True)]


def _model(coupling, lu, seed=3, depth=2):
    keras.utils.set_random_seed(seed)
    model = glow_tf.Glow(
        image_shape=(8, 8, 3),
        n_levels=2,
        depth=depth,
        width=16,
        flow_coupling=coupling,
        lu_decomposed=lu,
        seed=seed,
    )
    x = tf.constant(np.random.default_rng(seed).uniform(-0.5, 0.5, (4, 8, 8, 3)), tf.float32)
    model.initialize(x)
    rng = np.random.default_rng(seed + 1)
    for v in model.trainable_variables:  # leave the identity init: every layer does something
        v.assign(v.numpy() + 0.05 * rng.standard_normal(v.shape).astype(np.float32))
    return model, x


def _loss_and_grads(model, x, mode):
    model.memory_mode = mode
    with tf.GradientTape() as tape:
        loss = -tf.reduce_mean(model.log_prob(x))
    return loss, tape.gradient(loss, model.trainable_variables)


def _check_close(model, g_ref, g):
    assert all(t is not None for t in g), [
        v.path for v, t in zip(model.trainable_variables, g) if t is None
    ]
    num = sum(float(tf.reduce_sum(tf.square(a - b))) for a, b in zip(g_ref, g))
    den = sum(float(tf.reduce_sum(tf.square(a))) for a in g_ref)
    assert np.sqrt(num / den) < 1e-3
    for v, a, b in zip(model.trainable_variables, g_ref, g):
        scale = float(tf.norm(a))
        assert float(tf.norm(a - b)) <= 1e-2 * scale + 1e-6, v.path


@pytest.mark.parametrize('coupling,lu', CONFIGS)
def test_gradients_match_plain_eager(coupling, lu):
    model, x = _model(coupling, lu)
    loss_p, g_p = _loss_and_grads(model, x, 'plain')
    loss_r, g_r = _loss_and_grads(model, x, 'reversible')
    np.testing.assert_allclose(loss_r.numpy(), loss_p.numpy(), rtol=1e-6)
    _check_close(model, g_p, g_r)


@pytest.mark.parametrize('coupling,lu', [('affine', False), ('affine', True)])
def test_gradients_match_plain_tf_function(coupling, lu):
    model, x = _model(coupling, lu, seed=5)
    _, g_p = _loss_and_grads(model, x, 'plain')

    @tf.function
    def step(x):
        return _loss_and_grads(model, x, 'reversible')

    loss_r, g_r = step(x)
    model.memory_mode = 'plain'
    np.testing.assert_allclose(
        loss_r.numpy(), -tf.reduce_mean(model.log_prob(x)).numpy(), rtol=1e-6
    )
    _check_close(model, g_p, g_r)


@pytest.mark.parametrize(
    'fn,coupling',
    [
        (reversible_forward, 'affine'),
        (reversible_forward, 'additive'),
        (checkpointed_forward, 'affine'),
    ],
)
def test_forward_matches_steps_and_input_gradient(fn, coupling):
    """Direct use on a list of steps: outputs, log-det and d/dx match running the steps plainly."""
    model, _ = _model(coupling, False, seed=7)
    steps = list(model.levels[0].steps)
    z = tf.constant(np.random.default_rng(0).normal(size=(2, 4, 4, 12)), tf.float32)
    w = tf.constant(np.random.default_rng(1).normal(size=(2, 4, 4, 12)), tf.float32)

    with tf.GradientTape(persistent=True) as tape:
        tape.watch(z)
        y_p, ld_p = chain_forward(steps, z)  # the plain mode
        y_r, ld_r = fn(steps, z)
        obj_p = tf.reduce_sum(y_p * w) + tf.reduce_sum(ld_p)
        obj_r = tf.reduce_sum(y_r * w) + tf.reduce_sum(ld_r)
    np.testing.assert_allclose(y_r.numpy(), y_p.numpy(), atol=1e-6)
    np.testing.assert_allclose(ld_r.numpy(), ld_p.numpy(), rtol=1e-6)
    np.testing.assert_allclose(
        tape.gradient(obj_r, z).numpy(), tape.gradient(obj_p, z).numpy(), rtol=1e-4, atol=1e-4
    )
    # only the log-det used: the unused output's gradient arrives as None / zeros
    with tf.GradientTape() as tape:
        tape.watch(z)
        ld_only = tf.reduce_sum(fn(steps, z)[1])
    assert tape.gradient(ld_only, z) is not None


def test_reversible_training_steps_under_tf_function_match_plain():
    """Two SGD steps of the training objective, traced: same weights as the plain mode's steps."""
    keras.utils.set_random_seed(0)
    model = glow_tf.Glow(image_shape=(8, 8, 3), n_levels=2, depth=2, width=8)
    x = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3)).astype(np.uint8)
    model.initialize(glow_tf.preprocess(x))
    variables = [v.value for v in model.trainable_variables]  # the tf.Variables (as Horovod)
    noise = tf.constant(np.random.default_rng(1).uniform(size=x.shape), tf.float32)
    start = [v.numpy().copy() for v in variables]

    def run(mode):
        model.memory_mode = mode

        @tf.function(autograph=False)
        def train_step(x):
            with tf.GradientTape() as tape:
                loss = -tf.reduce_mean(model.log_prob(glow_tf.preprocess(x, noise=noise)))
            for v, g in zip(variables, tape.gradient(loss, variables)):
                v.assign_sub(1e-3 * g)
            return loss

        for v, value in zip(variables, start):
            v.assign(value)
        losses = [float(train_step(x)) for _ in range(2)]
        return losses, [v.numpy().copy() for v in variables]

    losses_r, after_r = run('reversible')
    losses_p, after_p = run('plain')
    np.testing.assert_allclose(losses_r, losses_p, rtol=1e-5)
    assert sum(not np.array_equal(a, b) for a, b in zip(start, after_r)) > len(start) // 2
    for a, b in zip(after_p, after_r):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)


SHIPPED = Path(__file__).resolve().parents[1] / 'models' / 'celeba64'


@pytest.mark.skipif(not SHIPPED.is_dir(), reason='models/celeba64 not present')
def test_memory_modes_agree_on_the_shipped_model():
    """The trained 64x64 model (4 levels x 8 steps): checkpoint and reversible give the plain
    mode's log-likelihood and gradients on two of its bundled faces."""
    from glow_tf.data import load_image_file

    model, _ = glow_tf.load_model(str(SHIPPED))
    files = sorted((SHIPPED / 'faces').iterdir())[:2]
    x_uint8 = np.stack([load_image_file(str(f), model.image_shape[0]) for f in files])
    noise = np.random.default_rng(0).uniform(size=x_uint8.shape).astype(np.float32)
    x = glow_tf.preprocess(x_uint8, noise=noise)
    loss_p, g_p = _loss_and_grads(model, x, 'plain')
    for mode in ('checkpoint', 'reversible'):
        loss, g = _loss_and_grads(model, x, mode)
        np.testing.assert_allclose(loss.numpy(), loss_p.numpy(), rtol=1e-6)
        _check_close(model, g_p, g)
