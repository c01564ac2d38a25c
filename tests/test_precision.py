"""--precision: bf16 / fp16 coupling networks, float32 everywhere else (glow_tf.nets.precision)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from glow_tf.cli.train import main
from glow_tf.errors import ArgumentError
from glow_tf.model.glow import Glow
from glow_tf.training.loss_scale import DynamicLossScale
from tests.flow_testing import perturb_weights

X = tf.random.stateless_uniform([4, 8, 8, 3], seed=[5, 1], minval=-0.5, maxval=0.5)


def trained_like_model(precision='fp32', coupling='affine'):
    """A small Glow with random non-zero weights (so every coupling network matters)."""
    model = Glow((8, 8, 3), n_levels=2, depth=2, width=32, flow_coupling=coupling, learntop=True)
    model.initialize(X)
    perturb_weights(model, scale=0.05, seed=6)
    model.precision = precision
    return model


@pytest.mark.parametrize('precision', ['bf16', 'fp16'])
def test_only_the_coupling_networks_compute_in_low_precision(precision):
    model = trained_like_model(precision)
    low = {'bf16': 'bfloat16', 'fp16': 'float16'}[precision]
    for step in model.flow_steps:
        assert step.coupling.nn.compute_dtype == low
        assert step.coupling.nn.out.compute_dtype == low
        assert step.actnorm.compute_dtype == 'float32'
        assert step.mix.compute_dtype == 'float32'
    assert {v.dtype for v in model.weights} == {'float32'}  # weights stay float32
    log_prob = model.log_prob(X)
    assert log_prob.dtype == tf.float32
    z_list, log_det, _ = model.encode_with_log_det(X)
    assert log_det.dtype == tf.float32 and all(z.dtype == tf.float32 for z in z_list)


# (max, mean) of |x - decode(encode(x))|; measured on this model: fp32 1.0e-5 / 7e-7,
# bf16 1.1e-5 / 2.5e-7, fp16 1.3e-2 / 1.6e-4 (see test docstring)
ROUND_TRIP_TOLERANCE = {'bf16': (1e-4, 2e-6), 'fp16': (5e-2, 1e-3)}


@pytest.mark.parametrize('coupling', ['affine', 'additive'])
@pytest.mark.parametrize('precision', ['bf16', 'fp16'])
def test_encode_decode_stays_invertible(precision, coupling):
    """The inverse re-evaluates the same low-precision network on x_a as float32 reconstructed
    it. bfloat16's coarse rounding absorbs float32's reconstruction error: the round trip is as
    exact as in float32. float16's finer grid is crossed more often by those ~1e-6 differences;
    each crossing changes a network output by a float16 ulp, and the next level inherits it:
    errors up to ~1e-2 (of a [-0.5, 0.5] pixel; 1/256 = 4e-3 is one 8-bit level), so fp16 is for
    training on GPUs, not for the editor's exact encode/decode."""
    model = trained_like_model(precision, coupling)
    error = tf.abs(model.decode(model.encode(X)) - X)
    max_tol, mean_tol = ROUND_TRIP_TOLERANCE[precision]
    assert float(tf.reduce_max(error)) <= max_tol
    assert float(tf.reduce_mean(error)) <= mean_tol


@pytest.mark.parametrize('precision', ['bf16', 'fp16'])
def test_log_prob_close_to_fp32_and_checkpoints_move_between_precisions(precision, tmp_path):
    fp32 = trained_like_model('fp32')
    low = trained_like_model(precision)
    bits = lambda m: m.log_prob(X).numpy() / (-np.log(2.0) * 8 * 8 * 3)
    # a slightly different bijection (the networks' outputs are rounded): measured on these
    # random weights, per image 0.004-0.041 bits/dim apart for bf16, 0.008 on the mean
    difference = bits(low) - bits(fp32)
    assert np.max(np.abs(difference)) < 0.1 and abs(np.mean(difference)) < 0.03, difference

    # weights saved in one precision load into a model of the other, and vice versa
    path = str(tmp_path / 'w.weights.h5')
    low.save_weights(path)
    other = Glow((8, 8, 3), n_levels=2, depth=2, width=32, learntop=True, precision='fp32')
    other.load_weights(path)
    np.testing.assert_allclose(other.log_prob(X).numpy(), fp32.log_prob(X).numpy(), rtol=1e-5)
    fp32.save_weights(path)
    back = Glow((8, 8, 3), n_levels=2, depth=2, width=32, learntop=True, precision=precision)
    back.load_weights(path)
    np.testing.assert_allclose(back.log_prob(X).numpy(), low.log_prob(X).numpy(), rtol=1e-5)
    assert back.get_config()['precision'] == precision
    assert Glow.from_config(back.get_config()).precision == precision


def test_unknown_precision_names_the_argument():
    with pytest.raises(ArgumentError, match="precision must be one of"):
        Glow((8, 8, 3), n_levels=1, depth=1, width=8, precision='fp8')


@pytest.mark.parametrize(
    'flags,expected',
    [({'avx2', 'fma'}, 'fp32'), ({'avx512f', 'avx512_bf16'}, 'bf16'), ({'amx_bf16'}, 'bf16')],
)
def test_auto_precision_follows_the_cpus_bfloat16_units(monkeypatch, flags, expected):
    """'auto' is bf16 exactly where the CPU has native bfloat16 units (no GPU here)."""
    from glow_tf.nets import precision as P

    monkeypatch.setattr(P, 'cpu_model_and_flags', lambda: ('test cpu', set(flags)))
    assert P.resolve_precision('auto') == expected
    model = Glow((8, 8, 3), n_levels=1, depth=1, width=8, precision='auto')
    assert model.precision == 'auto' and model.get_config()['precision'] == 'auto'
    low = {'fp32': 'float32', 'bf16': 'bfloat16'}[expected]
    assert model.flow_steps[0].coupling.nn.compute_dtype == low


def test_dynamic_loss_scale_halves_on_overflow_and_grows_after_a_period():
    scale = DynamicLossScale(initial=1024.0, period=3)
    for finite, expected in [
        (False, 512.0),
        (True, 512.0),
        (True, 512.0),
        (True, 1024.0),  # the third finite step in a row
        (True, 1024.0),
        (False, 512.0),  # an overflow also restarts the count
        (True, 512.0),
    ]:
        scale.update(tf.constant(finite))
        assert float(scale.scale.numpy()) == expected
    grads = scale.unscaled([tf.constant([512.0, 1024.0])])
    np.testing.assert_allclose(grads[0].numpy(), [1.0, 2.0])


def _mnist_argv(shared_data, logdir, precision, steps_epochs=6):
    return (
        f"--problem mnist --data_dir {shared_data / 'mnist'} --image_size 16 --n_levels 2 "
        f"--depth 2 --width 32 --n_batch_train 32 --n_batch_init 128 --anchor_size 0 "
        f"--n_train 1600 --n_test 1000 --epochs {steps_epochs} --epochs_warmup 0.5 --lr 0.001 "
        f"--epochs_full_valid {steps_epochs} --epochs_full_sample 0 --gradient_checkpointing 0 "
        f"--no_progress --precision {precision} --logdir {logdir}"
    ).split()


def _last_test_record(logdir):
    with open(logdir / 'test.jsonl') as f:
        return [json.loads(line) for line in f if line.strip()][-1]


def test_bf16_run_ends_within_0_02_bits_of_the_fp32_run(tmp_path, shared_data):
    """300 steps on real MNIST from the same init, data order and noise: the two runs' test
    bits/dim (1,000 test digits, with the Polyak-averaged weights) differ by < 0.02 (measured:
    4.7656 fp32, 4.7727 bf16; raw weights 4.7177 / 4.7042). The averaged weights, because the
    raw weights' result after 300 steps moves by a few hundredths with the float32 summation
    order alone (the fp32 run with its training step through shared step functions: 4.7514 raw,
    4.7630 averaged). The bf16 run is train.py in a second process, at the same time as the
    fp32 run in this one (each is too small to keep both cores busy)."""
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    env['PYTHONPATH'] = os.pathsep.join([str(repo), env.get('PYTHONPATH', '')]).rstrip(os.pathsep)
    argv = _mnist_argv(shared_data, tmp_path / 'bf16', 'bf16')
    other = subprocess.Popen(
        [sys.executable, str(repo / 'train.py'), *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        main(_mnist_argv(shared_data, tmp_path / 'fp32', 'fp32'))
        out = other.communicate(timeout=600)[0]
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()
    assert other.returncode == 0, out[-4000:]
    fp32, bf16 = _last_test_record(tmp_path / 'fp32'), _last_test_record(tmp_path / 'bf16')
    assert fp32['step'] == bf16['step'] == 300
    assert bf16['bits_x_ema'] < 5.5  # it learned (init ~7.5)
    assert abs(bf16['bits_x_ema'] - fp32['bits_x_ema']) < 0.02, (
        fp32['bits_x_ema'],
        bf16['bits_x_ema'],
    )
    config = json.loads((tmp_path / 'bf16' / 'config.json').read_text())
    assert config['precision'] == 'bf16'


def test_fp16_training_runs_with_loss_scaling(tmp_path, shared_data):
    """float16 (a GPU precision; slow on a CPU): a few steps train with finite bits/dim."""
    argv = (
        f"--problem mnist --data_dir {shared_data / 'mnist'} --image_size 8 --n_levels 1 "
        f"--depth 2 --width 8 --n_batch_train 16 --n_batch_init 32 --anchor_size 0 "
        f"--n_train 160 --n_test 100 --epochs 1 --epochs_warmup 0.5 --lr 0.001 "
        f"--gradient_checkpointing 0 --no_progress --precision fp16 --logdir {tmp_path}"
    ).split()
    main(argv)
    with open(tmp_path / 'test.jsonl') as f:
        final = [json.loads(line) for line in f if line.strip()][-1]
    assert final['step'] == 10 and np.isfinite(final['bits_x'])


def test_a_run_resumes_in_another_precision(tmp_path, shared_data):
    """Checkpoints hold float32 weights in every precision: an fp32 run continues in bf16."""
    common = (
        f"--problem mnist --data_dir {shared_data / 'mnist'} --image_size 8 --n_levels 1 "
        f"--depth 2 --width 8 --n_batch_train 16 --n_batch_init 32 --anchor_size 0 "
        f"--n_train 160 --n_test 100 --epochs_warmup 0.5 --lr 0.001 "
        f"--gradient_checkpointing 0 --no_progress --logdir {tmp_path}"
    ).split()
    main(common + ['--epochs', '1', '--precision', 'fp32'])
    main(common + ['--epochs', '2', '--precision', 'bf16'])
    with open(tmp_path / 'test.jsonl') as f:
        steps = [json.loads(line)['step'] for line in f if line.strip()]
    assert steps[-1] == 20
    assert json.loads((tmp_path / 'config.json').read_text())['precision'] == 'bf16'
