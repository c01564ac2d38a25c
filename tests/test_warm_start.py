"""--restore_path: a warm start (fine-tuning) takes only a checkpoint's weights into a new run,
here an MNIST model fine-tuned on the CIFAR-10 subset; resuming a log dir is unchanged."""

import json

import numpy as np
import pytest

from glow_tf.cli.train import main
from tests.test_train_resume import read_ckpt, tiny_argv


def _group(state, group):
    return {k.split('/', 1)[1]: v for k, v in state.items() if k.startswith(group + '/')}


def _set(argv, flag, value):
    argv = list(argv)
    argv[argv.index(flag) + 1] = value
    return argv


@pytest.fixture(scope='module')
def mnist_run(tmp_path_factory, shared_data):
    """The run warm-started from: 4 steps on MNIST (trained once; both cases only read it)."""
    source = tmp_path_factory.mktemp('warm_start') / 'mnist'
    main(_set(tiny_argv(source, '--max_steps', '4'), '--problem', 'mnist'))
    return source


@pytest.mark.parametrize('weights', ['raw', 'ema'])
def test_warm_start_mnist_model_on_cifar(tmp_path, mnist_run, weights):
    source = mnist_run
    _, before = read_ckpt(source)
    assert int(before['state/vars/step/.ATTRIBUTES/VARIABLE_VALUE']) == 4

    # lr 1e-9: the fine-tuning steps leave the weights as loaded (to ~1e-8), so they compare
    tuned = tmp_path / 'cifar'
    argv = tiny_argv(tuned, '--max_steps', '2', '--lr', '1e-9', '--restore_path', str(source))
    main(argv + ['--restore_weights', weights])
    _, after = read_ckpt(tuned)
    assert int(after['state/vars/step/.ATTRIBUTES/VARIABLE_VALUE']) == 2  # counters fresh
    loaded = _group(after, 'model')
    expected = _group(before, 'model' if weights == 'raw' else 'ema')
    for k, v in expected.items():
        np.testing.assert_allclose(loaded[k], v, rtol=0, atol=1e-6, err_msg=k)
    raw, ema = _group(before, 'model'), _group(before, 'ema')
    assert any(not np.allclose(raw[k], ema[k], rtol=0, atol=1e-5) for k in ema)  # they differ
    # the optimiser starts fresh: its iteration count is this run's steps, not 4 + 2
    iterations = [v for k, v in after.items() if k.startswith('optimizer/') and 'iteration' in k]
    assert iterations and int(iterations[0]) == 2
    config = json.loads((tuned / 'config.json').read_text())
    assert config['restore_path'] == str(source) and config['restore_weights'] == weights
    assert config['problem'] == 'cifar10'

    # the test records split bits/dim by level (the top prior's level last); the parts add up
    record = json.loads((tuned / 'test.jsonl').read_text().splitlines()[-1])
    assert len(record['bits_x_per_level']) == 2
    assert sum(record['bits_x_per_level']) == pytest.approx(record['bits_x'], rel=1e-5)
    assert record['bits_x_level1'] == record['bits_x_per_level'][1]

    # a later run in the same log dir resumes from its own checkpoint, as before
    result = main(_set(argv, '--max_steps', '3'))
    assert result['step'] == 3
