"""What an epoch boundary costs the trainer's data pipeline: building an epoch's iterator and
dropping it after the epoch, with tf.data's autotuning model off (what glow_tf's pipelines do,
`glow_tf.data.source._prefetched`) and on (tf.data's default).

    python bench/epoch_turnover.py                       # MNIST, 20 epochs of 100 batches each
    python bench/epoch_turnover.py --epochs 30 --steps 200 --load_ms 60

The trainer builds each epoch's pipeline from (seed, epoch) (`Trainer.train_iterator`) and drops
its iterator when the epoch ends; the iterator's destructor joins the pipeline's background
threads. Per epoch this times: building the pipeline and its iterator, the batches (each followed
by a stand-in training step: matrix products on both cores for about --load_ms), and deleting
the iterator. The two settings alternate epoch by epoch, so both see the same machine load.
Prints a table, the CPU's vector units and one `JSON ` line.
"""

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from bench.common import cpu_flags_line, dumps, median  # noqa: E402


def stand_in_step(load_ms):
    """A tf.function taking about `load_ms` of matrix products (calibrated here), like a
    training step keeping the cores busy between batches."""
    import tensorflow as tf

    a = tf.random.stateless_normal([512, 512], seed=[0, 1])

    @tf.function
    def step(x, n):
        y = a
        for _ in tf.range(n):
            y = tf.matmul(y, a) * 1e-3
        return tf.reduce_sum(tf.cast(x, tf.float32)) + tf.reduce_sum(y)

    x = tf.zeros([1], tf.uint8)
    step(x, tf.constant(1)).numpy()
    t0 = time.perf_counter()
    step(x, tf.constant(50)).numpy()
    per_product_ms = (time.perf_counter() - t0) * 1e3 / 50
    n = tf.constant(max(1, round(load_ms / per_product_ms)))
    return lambda x: step(x, n).numpy()


def one_epoch(source, epoch, steps, batch, autotune, step):
    import tensorflow as tf

    t0 = time.perf_counter()
    ds = source.train(batch, seed=epoch)
    if autotune:  # tf.data's default, over glow_tf's setting (absl warns of the change)
        options = tf.data.Options()
        options.autotune.enabled = True
        ds = ds.with_options(options)
    it = iter(ds)
    t1 = time.perf_counter()
    for _ in range(steps):
        x, _ = next(it)
        step(x)
    t2 = time.perf_counter()
    del it
    t3 = time.perf_counter()
    return {'build_s': t1 - t0, 'batches_s': t2 - t1, 'delete_s': t3 - t2}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--problem', default='mnist')
    p.add_argument('--data_dir', default=str(REPO.parent / 'shared' / 'data' / 'mnist'))
    p.add_argument('--epochs', type=int, default=20, help='epochs per setting')
    p.add_argument('--steps', type=int, default=100, help='batches per epoch')
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--load_ms', type=float, default=60.0, help='stand-in training step per batch')
    args = p.parse_args(argv)

    from absl import logging

    from glow_tf.data import load_source

    logging.set_verbosity(logging.ERROR)  # not once per epoch: "Changing the value of option"
    source = load_source(args.problem, data_dir=args.data_dir)
    step = stand_in_step(args.load_ms)
    settings = {'glow_tf (autotune off)': False, 'tf.data default (autotune on)': True}
    runs = {name: [] for name in settings}
    for epoch in range(args.epochs):
        for name, autotune in settings.items():
            runs[name].append(one_epoch(source, epoch, args.steps, args.batch, autotune, step))

    print(cpu_flags_line())
    print(
        f"{args.problem}: {args.epochs} epochs per setting, {args.steps} batches of {args.batch}, "
        f"a {args.load_ms:g} ms stand-in step per batch\n"
    )
    print(
        '| pipeline | build s (median) | batches s (median) | delete s: median / max '
        '| epochs with a delete > 1 s |'
    )
    print('|---|---|---|---|---|')
    result = {'problem': args.problem, 'epochs': args.epochs, 'steps': args.steps, 'rows': {}}
    for name, rows in runs.items():
        deletes = [r['delete_s'] for r in rows]
        stalls = sum(d > 1.0 for d in deletes)
        print(
            f"| {name} | {median([r['build_s'] for r in rows]):.2f} | "
            f"{median([r['batches_s'] for r in rows]):.1f} | {median(deletes):.2f} / "
            f"{max(deletes):.2f} | {stalls} of {len(rows)} |"
        )
        result['rows'][name] = rows
    print('JSON ' + dumps(result))


if __name__ == '__main__':
    main()
