"""Files written by the last release (tests/fixtures/last_release, glow_tf at 29ad337: before
`Glow` and `Level` created their weights in `build` and Keras tracked the levels) still load:
a `.keras` file through plain Keras, and a training log dir -- checkpoint keys and optimiser
slots through `checkpoint_format.migrate_key` -- by `load_model` and by a resumed run."""

import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import glow_tf
from glow_tf.cli.train import main
from glow_tf.runs import checkpoint_format as ckpt_lib
from tests.test_train_resume import read_ckpt, tiny_argv

FIXTURES = Path(__file__).resolve().parent / 'fixtures' / 'last_release'


def test_keras_file_of_the_last_release_loads_with_plain_keras(tmp_path):
    expected = np.load(FIXTURES / 'glow_keras_expected.npz')
    model = keras.saving.load_model(str(FIXTURES / 'glow.keras'))
    assert isinstance(model, glow_tf.Glow) and model.is_initialized
    log_prob = model.log_prob(tf.constant(expected['x']), tf.constant(expected['y']))
    np.testing.assert_allclose(log_prob.numpy(), expected['log_prob'], rtol=1e-5, atol=1e-3)
    # saved again and loaded: the same model (the layout is the one the last release wrote)
    model.save(str(tmp_path / 'again.keras'))
    again = keras.saving.load_model(str(tmp_path / 'again.keras'))
    np.testing.assert_array_equal(
        again.log_prob(tf.constant(expected['x']), tf.constant(expected['y'])).numpy(),
        log_prob.numpy(),
    )


def test_log_dir_of_the_last_release_loads_key_for_key():
    prefix = ckpt_lib.find_checkpoint(str(FIXTURES / 'run'))
    assert ckpt_lib.is_legacy_checkpoint(prefix)
    model, _ = glow_tf.load_model(str(FIXTURES / 'run'), use_ema=False)
    reader = tf.train.load_checkpoint(prefix)
    stored = ckpt_lib.stored_names(prefix)['model']
    names = ckpt_lib.model_variable_names(model)
    assert {ckpt_lib.migrate_key('model', k) for k in stored} == set(names)
    for old in stored:
        value = reader.get_tensor(f"model/vars/{old.replace('.', '..')}/.ATTRIBUTES/VARIABLE_VALUE")
        np.testing.assert_array_equal(names[ckpt_lib.migrate_key('model', old)].numpy(), value)


def test_run_of_the_last_release_resumes_with_its_optimizer_state(tmp_path):
    logdir = tmp_path / 'run'
    shutil.copytree(FIXTURES / 'run', logdir)
    old_prefix, old = read_ckpt(logdir)
    slots = [k for k in old if k.startswith('optimizer/vars/level0_step0_')]
    assert slots  # the last release's slot names
    result = main(tiny_argv(logdir, '--epochs', '2', '--keep_checkpoints', '2'))
    assert result['step'] == 12 and result['n_skipped'] == 0
    prefix, new = read_ckpt(logdir)
    assert prefix.endswith('ckpt-12') and not ckpt_lib.is_legacy_checkpoint(prefix)
    assert new['state/vars/step/.ATTRIBUTES/VARIABLE_VALUE'] == 12
    # the optimiser continued from the stored state: its counter went on from 6, and every
    # stored slot has today's name in the new checkpoint
    assert new['optimizer/vars/iteration/.ATTRIBUTES/VARIABLE_VALUE'] == 12
    for key in slots:
        name = key.split('/')[2]
        assert (
            f"optimizer/vars/{ckpt_lib.migrate_key('optimizer', name)}/.ATTRIBUTES/VARIABLE_VALUE"
            in new
        )
