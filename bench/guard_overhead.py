"""Cost of the non-finite weight guard (docs/reliability.md): one training step (gradient + update)
with the trainer's guarded update (pre-step copy of weights, optimiser slots and EMA, finiteness
check, allreduce of the verdict, rollback only when needed) against the plain update, same
Trainer, same batch, interleaved rounds.

    python bench/guard_overhead.py                   # CIFAR-10 32x32, L=3, K=8, width 128, batch 16
    python bench/guard_overhead.py --depth 4 --width 64 --rounds 5 --steps 10

Prints a table line and one `JSON ` line: ms per step for both, their ratio, and the guard's
extra memory (the pre-step copy) in MiB.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--image_size', type=int, default=32)
    p.add_argument('--n_levels', type=int, default=3)
    p.add_argument('--depth', type=int, default=8)
    p.add_argument('--width', type=int, default=128)
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--rounds', type=int, default=5)
    p.add_argument('--steps', type=int, default=10, help="steps per round and variant")
    args = p.parse_args(argv)

    import tempfile

    import tensorflow as tf

    from glow_tf.runs.config import TrainConfig
    from glow_tf.training.distributed import Distributed
    from glow_tf.training.optim import step_learning_rate
    from glow_tf.training.trainer import Trainer
    from glow_tf.variables import tf_variables

    cfg = TrainConfig(
        problem='cifar10',
        image_size=args.image_size,
        n_levels=args.n_levels,
        depth=args.depth,
        width=args.width,
        flow_coupling=1,
        n_batch_train=args.batch,
        n_batch_init=args.batch,
        anchor_size=0,
        n_test=100,
        memory_mode='plain',
        logdir=tempfile.mkdtemp(),
        progress=False,
        epochs_warmup=0,
    )
    tr = Trainer(cfg, dist=Distributed(use_horovod=False)).setup()
    tr.initialize_or_restore()
    x, y = next(tr.train_iterator(1))
    c = tr.cfg

    @tf.function(autograph=False, reduce_retracing=True)
    def plain_apply(grads, lr):  # the update without the guard (what the trainer did before)
        lr_t = step_learning_rate(tr.optimizer, c.optimizer, lr, tr.plan.resolved_beta2)
        tr.optimizer.learning_rate.assign(lr_t)
        tr.optimizer.apply_gradients(zip(grads, tr.model.trainable_variables))
        tr.ema.update()
        return lr_t

    def step(guarded, i):
        grads, stats, finite = tr.grad_step(x, y, tf.constant(i, tf.int64), tf.constant(0.0))
        lr = tf.constant(1e-4, tf.float32)
        out = tr.apply_step(grads, lr)[1] if guarded else plain_apply(grads, lr)
        return out.numpy()

    times = {True: [], False: []}
    for g in (True, False):  # trace both
        step(g, 0)
    for r in range(args.rounds):
        for g in (True, False) if r % 2 == 0 else (False, True):
            t = time.perf_counter()
            for i in range(args.steps):
                step(g, i)
            times[g].append(1000 * (time.perf_counter() - t) / args.steps)
    guarded, plain = statistics.median(times[True]), statistics.median(times[False])
    n_params = sum(int(v.shape.num_elements()) for v in tr.tvars)
    copied = sum(
        int(v.shape.num_elements()) * v.dtype.size
        for v in tr.tvars + list(tr.ema.shadow) + tf_variables(tr.optimizer.variables)
    )
    res = {
        'image_size': args.image_size,
        'n_levels': args.n_levels,
        'depth': args.depth,
        'width': args.width,
        'batch': args.batch,
        'params': n_params,
        'ms_per_step_guarded': round(guarded, 2),
        'ms_per_step_plain': round(plain, 2),
        'ratio': round(guarded / plain, 4),
        'guard_copy_mib': round(copied / 2**20, 2),
        'rounds': args.rounds,
        'steps': args.steps,
    }
    print(
        f"guarded {guarded:.1f} ms/step, plain {plain:.1f} ms/step, ratio {guarded / plain:.3f}; "
        f"{n_params} parameters, pre-step copy {copied / 2**20:.1f} MiB"
    )
    print('JSON ' + json.dumps(res))
    return res


if __name__ == '__main__':
    main()
