"""The trainer's parts: the run's counters live in the checkpointed variables (one copy, same
checkpoint names as before), the logging interval's accumulators, and fault injection that exists
only when the tests ask for it (the production step's graph holds no injection op)."""

import numpy as np
import pytest
import tensorflow as tf

from glow_tf.runs import checkpoint_format as ckpt_lib
from glow_tf.runs.config import TrainConfig
from glow_tf.training.counters import IntervalStats, RunCounters
from glow_tf.training.faults import FaultInjection


def test_counters_are_the_checkpointed_variables(tmp_path):
    c = RunCounters()
    assert (c.step, c.epoch, c.best_test_loss, c.n_skipped) == (0, 1, float('inf'), 0)
    c.step += 5
    c.epoch_step = 3
    c.train_time += 1.25
    assert int(c.state.vars['step'].numpy()) == 5  # no second copy: the property is the variable
    assert isinstance(c.step, int) and isinstance(c.train_time, float)

    # written as the `state/` group under the TrainState names, read back by a plain TrainState
    prefix = tf.train.Checkpoint(state=ckpt_lib.variable_group(c.state.vars)).write(
        str(tmp_path / 'ckpt')
    )
    names = {n for n, _ in tf.train.list_variables(prefix) if n.startswith('state/')}
    assert {n.split('/')[2] for n in names} == set(ckpt_lib.TrainState.FIELDS)
    assert ckpt_lib.read_state(prefix)['step'] == 5
    other = RunCounters()
    tf.train.Checkpoint(state=ckpt_lib.variable_group(other.state.vars)).read(
        prefix
    ).assert_existing_objects_matched()
    assert (other.step, other.epoch_step, other.train_time) == (5, 3, 1.25)


def test_interval_stats():
    s = IntervalStats()
    assert s.empty and np.isnan(list(s.means().values())).all() and s.images_per_sec() is None
    s.add_step({'loss': 1.0, 'bits_x': 2.0, 'bits_y': 0.0, 'error': 0.5, 'stop': 0.0})
    s.add_step({'bits_x': 4.0, 'loss': 3.0, 'error': 0.5, 'bits_y': 0.0})  # by name, any order
    s.add_time(2.0, 64)
    assert s.means() == {'loss': 2.0, 'bits_x': 3.0, 'bits_y': 0.0, 'error': 0.5}
    assert s.images_per_sec() == 32.0 and not s.empty
    s.reset()
    assert s.empty and s.n_steps == 0


def test_fault_injection_only_when_asked():
    assert FaultInjection.from_config(TrainConfig()) is None
    f = FaultInjection.from_config(TrainConfig(inject_nan_steps=[2], inject_inf_lr_steps=[3]))
    # the traced step receives the 0-based batch index: step number 2 is index 1
    assert np.isfinite(f.loss(tf.constant(1.5), tf.constant(0, tf.int64)).numpy())
    assert np.isnan(f.loss(tf.constant(1.5), tf.constant(1, tf.int64)).numpy())
    assert f.learning_rate(1e-3, 3) == float('inf') and f.learning_rate(1e-3, 2) == 1e-3


def _trainer(logdir, data_dir, **kw):
    from glow_tf.training.distributed import Distributed
    from glow_tf.training.trainer import Trainer

    cfg = TrainConfig(
        problem='cifar10',
        data_dir=str(data_dir),
        image_size=8,
        n_levels=1,
        depth=1,
        width=4,
        n_batch_train=8,
        n_batch_init=8,
        anchor_size=0,
        n_test=200,
        logdir=str(logdir),
        progress=False,
        **kw,
    )
    tr = Trainer(cfg, dist=Distributed(use_horovod=False)).setup()
    tr.initialize_or_restore()
    return tr


def _nan_constants(concrete):
    n = 0
    for op in concrete.graph.get_operations():
        if op.type == 'Const':
            value = tf.make_ndarray(op.get_attr('value'))
            n += int(value.dtype.kind == 'f' and np.isnan(value).any())
    return n


@pytest.mark.parametrize('nan_steps', [[], [2]])
def test_production_step_has_no_injection_op(tmp_path, shared_data, nan_steps):
    tr = _trainer(tmp_path / 'run', shared_data / 'cifar10-subset', inject_nan_steps=nan_steps)
    x, y = next(tr.train_iterator(1))
    stop = tf.constant(0.0)
    concrete = tr.grad_step.get_concrete_function(x, y, tf.constant(0, tf.int64), stop)
    finite = [bool(tr.grad_step(x, y, tf.constant(i, tf.int64), stop)[2].numpy()) for i in range(3)]
    if nan_steps:
        assert tr.faults is not None and _nan_constants(concrete) == 1
        assert finite == [True, False, True]  # step number 2 (batch index 1) is poisoned
    else:
        assert tr.faults is None and _nan_constants(concrete) == 0
        assert finite == [True, True, True]


def test_every_optimizer_the_config_accepts_has_a_class():
    """--optimizer is declared and validated once (runs/config.py); the trainer only maps it."""
    from glow_tf.runs.config import OPTIMIZERS
    from glow_tf.training.optim import OPTIMIZER_CLASSES

    assert set(OPTIMIZER_CLASSES) == set(OPTIMIZERS)


def test_step_statistics_are_unpacked_by_name():
    from glow_tf.training.stats import TEST_SUMS, TRAIN_STEP, unpack

    named, rest = unpack(TRAIN_STEP, np.array([3.5, 3.4, 0.0, 0.25, 1.0], np.float32))
    assert named == {
        'loss': 3.5,
        'bits_x': pytest.approx(3.4),
        'bits_y': 0.0,
        'error': 0.25,
        'stop': 1.0,
    }
    assert rest.shape == (0,)
    named, levels = unpack(TEST_SUMS, [10.0, 9.0, 0.0, 1.0, 4.0, 5.0, 4.0])
    assert named['n'] == 4.0 and list(levels) == [5.0, 4.0]  # per-level sums follow
    with pytest.raises(ValueError, match='at least 5'):
        unpack(TEST_SUMS, [1.0, 2.0])


def _update_variables(tr):
    """Every variable the update writes: weights, optimiser variables, averages, their count."""
    from glow_tf.variables import tf_variables

    optimizer = tf_variables(tr.optimizer.variables)
    return tr.tvars + optimizer + list(tr.ema.shadow) + [tr.ema.num_updates]


def _update_state(tr):
    """Every variable the update writes, as numpy arrays."""
    return [v.numpy().copy() for v in _update_variables(tr)]


@pytest.mark.parametrize(
    'optimizer,weight_decay,alone', [('adamax', 1.0, None), ('adam', 0.999, None), ('adam', 1, 64)]
)
def test_flat_update_is_keras_per_variable_update_and_ema(
    tmp_path, shared_data, monkeypatch, optimizer, weight_decay, alone
):
    """The trainer's update on flat vectors computes what Keras's per-variable
    `apply_gradients` and the per-variable Polyak average compute, step for step; also when
    larger variables are vectors of their own (`alone`: the tiny model's are all small)."""
    from glow_tf.training import steps as steps_module

    if alone is not None:
        monkeypatch.setattr(steps_module, 'ALONE', alone)
    tr = _trainer(
        tmp_path / 'run',
        shared_data / 'cifar10-subset',
        optimizer=optimizer,
        weight_decay=weight_decay,
        lr=0.01,
    )
    from glow_tf.training.optim import step_learning_rate

    n_ranges = len(tr.steps.state)
    assert n_ranges == 1 if alone is None else 2 < n_ranges < len(tr.tvars)
    x, y = next(tr.train_iterator(1))
    stop = tf.constant(0.0)
    grads = [tr.grad_step(x, y, tf.constant(i, tf.int64), stop)[0] for i in range(3)]
    lr = tf.constant(0.01)

    @tf.function(autograph=False)
    def keras_update(flat_grad):
        lr_t = step_learning_rate(tr.optimizer, optimizer, lr, tr.plan.resolved_beta2)
        tr.optimizer.learning_rate.assign(lr_t)
        for v in tr.tvars:
            v.assign(v * weight_decay)
        per_var = tr.steps.weights.unflatten(flat_grad)
        tr.optimizer.apply_gradients(zip(per_var, tr.model.trainable_variables))
        tr.ema.update()

    start = _update_state(tr)
    for g in grads:
        keras_update(g)
    expected = _update_state(tr)
    for v, value in zip(_update_variables(tr), start):  # back to the start
        v.assign(value)
    for g in grads:
        assert bool(tr.apply_step(g, lr)[1].numpy())
    got = _update_state(tr)
    assert len(got) == len(expected) > 4 * len(tr.tvars)
    for a, b in zip(got, expected):
        # the same float32 operations per element: bit-equal here; allow a last-bit difference
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-12)
    assert any(not np.array_equal(a, b) for a, b in zip(got, start))  # it did move


@pytest.mark.parametrize('alone', [None, 64])
def test_update_that_makes_weights_non_finite_writes_nothing(
    tmp_path, shared_data, monkeypatch, alone
):
    from glow_tf.training import steps as steps_module

    if alone is not None:  # larger variables as vectors of their own
        monkeypatch.setattr(steps_module, 'ALONE', alone)
    tr = _trainer(tmp_path / 'run', shared_data / 'cifar10-subset')
    x, y = next(tr.train_iterator(1))
    g = tr.grad_step(x, y, tf.constant(0, tf.int64), tf.constant(0.0))[0]
    assert bool(tr.apply_step(g, tf.constant(1e-3))[1].numpy())
    before = _update_state(tr)
    lr_t, ok = tr.apply_step(g, tf.constant(float('inf')))
    assert not bool(ok.numpy()) and not np.isfinite(lr_t.numpy())
    after = _update_state(tr)
    assert all(np.array_equal(a, b) for a, b in zip(before, after))  # bit for bit, counters too
    # one non-finite weight, in the last vector of the update, stops the writes to all of them
    bad_g = tf.concat([g[:-1], [float('nan')]], axis=0)
    assert not bool(tr.apply_step(bad_g, tf.constant(1e-3))[1].numpy())
    assert all(np.array_equal(a, b) for a, b in zip(before, _update_state(tr)))
    assert bool(tr.apply_step(g, tf.constant(1e-3))[1].numpy())  # and the next step goes on


def test_first_step_traces_the_update_while_the_gradient_step_runs(tmp_path, shared_data):
    """`trace_first_step` traces each step function once, for the calls that follow (the
    background trace of the update is the one `apply_step` uses), and hands on a failed trace."""
    tr = _trainer(tmp_path / 'run', shared_data / 'cifar10-subset')
    x, y = next(tr.train_iterator(1))
    inputs = (x, y, tf.constant(0, tf.int64), tf.constant(0.0))
    wait = tr.steps.trace_first_step(*inputs)
    grads, _, finite = tr.grad_step(*inputs)
    wait()
    assert bool(finite.numpy()) and bool(tr.apply_step(grads, tf.constant(1e-3))[1].numpy())
    assert tr.grad_step.experimental_get_tracing_count() == 1
    assert tr.apply_step.experimental_get_tracing_count() == 1

    def broken_update(grads, lr):
        raise ValueError('the update does not trace')

    tr.steps.apply_step = tf.function(broken_update, autograph=False)
    wait = tr.steps.trace_first_step(*inputs)
    with pytest.raises(ValueError, match='does not trace'):
        wait()
