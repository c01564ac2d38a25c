"""Horovod: `horovodrun -np 2 --gloo` trains to identical parameters on both ranks, equal (to float
tolerance) to one process training on the two ranks' batches together.

The worker half of this file runs under horovodrun (`python tests/test_distributed.py worker DIR`).
Each rank trains a tiny model on the real CIFAR-10 subset for a few steps through the same
Trainer the CLI uses, and saves its parameters. The reference is one process with twice the
per-worker batch: the data source gives rank r the positions r, r+2, ... of each permutation, so
the single process's batch k holds exactly the union of the ranks' batches k; its
dequantisation noise is the ranks' noise interleaved the same way.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
STEPS = 4
SEED = 3


def make_config(logdir, per_worker_batch, per_worker_init):
    from glow_tf.runs.config import TrainConfig

    return TrainConfig(
        problem='cifar10',
        image_size=8,
        n_levels=2,
        depth=2,
        width=16,
        flow_coupling=1,
        n_batch_train=per_worker_batch,
        n_batch_init=per_worker_init,
        n_batch_test=50,
        anchor_size=0,
        n_train=64,
        n_test=200,
        epochs_warmup=0.5,
        lr=0.002,
        seed=SEED,
        dal=0,
        max_steps=STEPS,
        epochs_full_valid=1000,
        epochs_full_sample=0,
        memory_mode='plain',
        logdir=str(logdir),
        progress=False,
    )


def params(trainer):
    out = {f'w{i}': v.numpy() for i, v in enumerate(trainer.model.trainable_variables)}
    out.update({f'ema{i}': v.numpy() for i, v in enumerate(trainer.ema.shadow)})
    out['iterations'] = np.array(int(trainer.optimizer.iterations.numpy()))
    return out


def worker(outdir):
    from glow_tf.training.trainer import Trainer

    trainer = Trainer(make_config(Path(outdir) / 'log', 4, 16))
    result = trainer.run()
    rank = trainer.dist.rank
    np.savez(
        Path(outdir) / f'rank{rank}.npz',
        size=trainer.dist.size,
        test_bits=result['test']['bits_x'],
        **params(trainer),
    )


def interleaved_noise(size):
    """Noise of a single process = ranks' default noise interleaved like the data shards."""
    import tensorflow as tf

    from glow_tf.training.steps import default_noise, rank_noise_seed

    def noise(shape, step):
        per = tf.concat([[shape[0] // size], shape[1:]], 0)
        parts = [default_noise(per, step, rank_noise_seed(SEED, r)) for r in range(size)]
        stacked = tf.stack(parts, axis=1)  # [B/size, size, H, W, C]
        return tf.reshape(stacked, shape)

    return noise


@pytest.mark.skipif(
    shutil.which('horovodrun') is None,
    reason='horovodrun not on PATH (install horovod with scripts/install.sh)',
)
def test_two_workers_match_each_other_and_single_process(tmp_path, shared_data):
    env = {
        **os.environ,
        'PYTHONPATH': str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''),
        'TF_CPP_MIN_LOG_LEVEL': '2',
        'OMP_NUM_THREADS': '1',
    }
    cmd = [
        'horovodrun',
        '-np',
        '2',
        '--gloo',
        '-H',
        'localhost:2',
        sys.executable,
        str(Path(__file__).resolve()),
        'worker',
        str(tmp_path),
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # the single-process reference of 2. trains here while the two ranks train
        from glow_tf.training.distributed import Distributed
        from glow_tf.training.trainer import Trainer

        single = Trainer(
            make_config(tmp_path / 'single', 8, 32),
            dist=Distributed(use_horovod=False),
            noise_fn=interleaved_noise(2),
        )
        result = single.run()
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, (stdout[-4000:], stderr[-4000:])
    r0, r1 = np.load(tmp_path / 'rank0.npz'), np.load(tmp_path / 'rank1.npz')
    assert int(r0['size']) == int(r1['size']) == 2

    # 1. Identical parameters (and EMA, optimiser step) on both ranks, and they did train.
    for k in r0.files:
        np.testing.assert_array_equal(r0[k], r1[k], err_msg=k)
    assert int(r0['iterations']) == STEPS
    # rank-0-only outputs: one log, one checkpoint directory
    assert len((tmp_path / 'log' / 'train.jsonl').read_text().splitlines()) == 1

    # 2. One process on the union of the two ranks' batches reaches the same parameters.
    ref = params(single)
    assert int(ref['iterations']) == STEPS
    moved = max(float(np.abs(ref[k] - r0[k]).max()) for k in r0.files if k.startswith('w'))
    for k in r0.files:
        if k == 'size' or k == 'test_bits':
            continue
        np.testing.assert_allclose(r0[k], ref[k], rtol=0, atol=2e-5, err_msg=k)
    assert float(r0['test_bits']) == pytest.approx(
        result['test']['bits_x'], abs=0.02
    )  # eval noise differs
    print('max |2-worker - 1-process| parameter difference:', moved)


if __name__ == '__main__' and len(sys.argv) >= 3 and sys.argv[1] == 'worker':
    worker(sys.argv[2])
