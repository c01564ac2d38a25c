"""Resume: N steps + resume to 2N == 2N uninterrupted steps; SIGKILL mid-epoch loses nothing but
the steps after the last checkpoint; non-finite losses are skipped and then stop training."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from glow_tf.cli.train import main

REPO = Path(__file__).resolve().parents[1]


def tiny_argv(logdir, *extra, n_train=48):
    """CIFAR-10 subset at 8x8, a 2-level x 2-step model: ~20 ms per step on one CPU core."""
    return [
        '--problem',
        'cifar10',
        '--image_size',
        '8',
        '--n_levels',
        '2',
        '--depth',
        '2',
        '--width',
        '16',
        '--flow_coupling',
        '1',
        '--n_batch_train',
        '8',
        '--n_batch_init',
        '32',
        '--anchor_size',
        '0',
        '--n_train',
        str(n_train),
        '--n_test',
        '200',
        '--epochs_warmup',
        '1',
        '--epochs_full_valid',
        '1000',
        '--epochs_full_sample',
        '0',
        '--gradient_checkpointing',
        '0',
        '--logdir',
        str(logdir),
        '--no_progress',
        *extra,
    ]


def read_ckpt(logdir):
    """{variable name: value} of the latest checkpoint, without the wall-clock counter."""
    import tensorflow as tf

    prefix = tf.train.latest_checkpoint(str(Path(logdir) / 'checkpoints'))
    reader = tf.train.load_checkpoint(prefix)
    return prefix, {
        name: reader.get_tensor(name)
        for name, _ in tf.train.list_variables(prefix)
        if not name.startswith(('_', 'save_counter')) and 'train_time' not in name
    }


def records(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def assert_same_state(a, b, atol=0.0):
    assert a.keys() == b.keys()
    groups = {k.split('/')[0] for k in a}
    assert groups == {'model', 'ema', 'optimizer', 'state'}, groups
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=0, atol=atol, err_msg=k)


def test_resume_equals_uninterrupted(tmp_path, shared_data):
    # 6 iterations per epoch: the interruption at step 5 is mid-epoch, the run ends in epoch 2.
    # --dal 2: CIFAR-10's full augmentation (shifts, flips, rotation, zoom) is part of the replay.
    main(tiny_argv(tmp_path / 'A', '--max_steps', '10', '--log_every', '1', '--dal', '2'))
    main(tiny_argv(tmp_path / 'B', '--max_steps', '5', '--log_every', '1', '--dal', '2'))
    _, mid = read_ckpt(tmp_path / 'B')
    assert int(mid['state/vars/step/.ATTRIBUTES/VARIABLE_VALUE']) == 5
    assert int(mid['state/vars/epoch_step/.ATTRIBUTES/VARIABLE_VALUE']) == 5
    result = main(tiny_argv(tmp_path / 'B', '--max_steps', '10', '--log_every', '1', '--dal', '2'))
    assert result['step'] == 10 and result['epoch'] == 2

    prefix_a, a = read_ckpt(tmp_path / 'A')
    prefix_b, b = read_ckpt(tmp_path / 'B')
    assert prefix_a.endswith('ckpt-10') and prefix_b.endswith('ckpt-10')
    assert_same_state(a, b)  # same process, same ops: bit-identical
    la, lb = records(tmp_path / 'A' / 'train.jsonl'), records(tmp_path / 'B' / 'train.jsonl')
    assert [r['step'] for r in lb] == list(range(1, 11))
    assert [r['loss'] for r in la] == [r['loss'] for r in lb]


def test_sigkill_mid_epoch_then_resume(tmp_path, shared_data):
    logdir = tmp_path / 'killed'
    argv = tiny_argv(logdir, '--max_steps', '100000', '--ckpt_every_steps', '3', n_train=80000)
    log = open(tmp_path / 'killed.log', 'w')
    proc = subprocess.Popen(
        [sys.executable, str(REPO / 'train.py')] + argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, 'GLOW_NO_HOROVOD': '1'},
    )
    index = logdir / 'checkpoints' / 'checkpoint'
    deadline = time.time() + 180
    try:
        while time.time() < deadline and proc.poll() is None:
            if index.exists() and 'ckpt-6' in index.read_text() + ''.join(os.listdir(index.parent)):
                break
            time.sleep(0.05)
        assert proc.poll() is None, open(tmp_path / 'killed.log').read()[-3000:]
        time.sleep(0.3)  # let it run on: the kill lands between/inside writes
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    assert proc.returncode == -signal.SIGKILL

    import tensorflow as tf

    prefix = tf.train.latest_checkpoint(str(logdir / 'checkpoints'))
    s = int(prefix.rsplit('-', 1)[1])
    assert s >= 6 and s % 3 == 0  # mid-epoch (10000 steps per epoch)
    target = s + 4
    result = main(
        tiny_argv(logdir, '--max_steps', str(target), '--ckpt_every_steps', '3', n_train=80000)
    )
    assert result['step'] == target and result['epoch'] == 1
    main(
        tiny_argv(
            tmp_path / 'straight',
            '--max_steps',
            str(target),
            '--ckpt_every_steps',
            '3',
            n_train=80000,
        )
    )
    _, resumed = read_ckpt(logdir)
    _, straight = read_ckpt(tmp_path / 'straight')
    # Another process, same ops: equal up to float reassociation at most.
    assert_same_state(resumed, straight, atol=1e-6)
    steps = [r['step'] for r in records(logdir / 'train.jsonl')]
    assert steps == sorted(steps) and steps[-1] == target


def test_nonfinite_steps_are_skipped_then_stop_training(tmp_path, shared_data, capsys):
    """Step 3 alone is non-finite: skipped, training goes on. Steps 7-9 in a row: stop (exit 3)
    with the checkpoint of step 6 (written every 2 steps) as the last, intact, good one."""
    logdir = tmp_path / 'nan'
    with pytest.raises(SystemExit) as e:
        main(
            tiny_argv(
                logdir,
                '--max_steps',
                '20',
                '--ckpt_every_steps',
                '2',
                '--log_every',
                '1',
                '--inject_nan_steps',
                '3,7,8,9',
                '--max_nonfinite',
                '3',
            )
        )
    assert e.value.code == 3
    err = capsys.readouterr().err
    assert 'step 3: non-finite' in err and '(1 in a row' in err
    assert '3 consecutive steps with a non-finite loss' in err and 'steps 7..9' in err
    assert 'ckpt-6' in err
    prefix, state = read_ckpt(logdir)
    assert prefix.endswith('ckpt-6')
    assert all(np.all(np.isfinite(v)) for k, v in state.items() if 'best_test_loss' not in k)
    iters = [v for k, v in state.items() if k.startswith('optimizer/') and 'iteration' in k]
    assert [int(v) for v in iters] == [5]  # 6 steps, step 3 not applied
    assert int(state['state/vars/n_skipped/.ATTRIBUTES/VARIABLE_VALUE']) == 1
    recs = records(logdir / 'train.jsonl')
    assert recs[2]['step'] == 3 and recs[2]['bits_x'] is None and recs[2]['n_skipped'] == 1
    assert np.isfinite(recs[3]['bits_x'])
    # the skipped step 3 did not advance the warm-up: step 4 runs at step 3's learning rate
    assert recs[1]['lr'] < recs[2]['lr'] == recs[3]['lr'] < recs[4]['lr']
    assert recs[2]['n_processed'] == recs[1]['n_processed'] < recs[3]['n_processed']
    assert recs[2]['n_images'] > recs[1]['n_images']
    from glow_tf import load_model

    model, _ = load_model(str(logdir))
    assert all(np.all(np.isfinite(v.numpy())) for v in model.variables)
