"""Full test passes: the test set's bits/dim with the raw and with the Polyak-averaged weights.

    tests = TestPasses(model, ema, source, eval_step, dist, cfg, plan)
    raw = tests.evaluate(use_ema=False)      # {loss, bits_x, bits_y, pred_loss, n_test}
    with tests.weights(use_ema=True): ...    # the model holds the averages inside the block
    rec = test_record(step, epoch, raw, ema, improved, seconds, n_classes)
    print(test_line(rec, raw, ema, improved, seconds, n_classes))
    paths = tests.encode_test_set(outdir, use_ema)   # --inference: x.npy, z.npy

Every worker runs its share of the test set (its rank's records, `plan.local_batch_test` per
batch) through the compiled `eval_step`, which returns per-batch sums [loss, bits_x, bits_y,
error, count]; the sums are added up in float64 over batches and then over workers (an
allreduce), so the means cover every test image exactly once. Each image's dequantisation noise
is a function of its batch index, so a test pass is reproducible. The run's choice of weights
(the better of the two) is the trainer's (`Trainer.run_test`).
"""

import contextlib
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from glow_tf.fileio import atomic_write_bytes
from glow_tf.progress import progress_bar
from glow_tf.tools.trained import InMemoryModel
from glow_tf.training.stats import TEST_SUMS, unpack


class TestPasses:
    """The test set through the compiled eval step, with either set of weights.

    Args:
        model: the `Glow` being trained.
        ema: its `EMA` (`weights(use_ema=True)` swaps the averages in).
        source: the data source (`source.test(batch, rank=, size=)`).
        eval_step: the compiled step (x, y, batch index) -> sums [5 + L] (`TrainSteps.eval_step`).
        dist: the `Distributed` (its rank, size and allreduce_sum).
        cfg: the resolved `TrainConfig` (n_test, n_bits_x, progress).
        plan: its `RunPlan` (the per-worker test batch, batches per full pass).
    """

    def __init__(self, model, ema, source, eval_step, dist, cfg, plan):
        self.model, self.ema, self.source = model, ema, source
        self.eval_step, self.dist, self.cfg, self.plan = eval_step, dist, cfg, plan

    def weights(self, use_ema):
        """Context: the model holds the Polyak averages (use_ema) or its raw weights."""
        return self.ema.swapped() if use_ema else contextlib.nullcontext()

    def evaluate(self, use_ema=False):
        """One full test pass over all workers; a dict of loss, bits_x, bits_y, pred_loss (the
        class head's error rate), n_test and bits_x_per_level (one entry per level, the top
        prior's level last, summing to bits_x)."""
        cfg = self.cfg
        # float64: sums over up to ~1e5 images stay exact; [5] then bits_x per level [L]
        sums = tf.zeros([len(TEST_SUMS) + self.model.n_levels], tf.float64)
        with self.weights(use_ema):
            ds = self.source.test(
                self.plan.local_batch_test, rank=self.dist.rank, size=self.dist.size
            )
            batches = progress_bar(
                ds.take(self.plan.full_test_its),
                total=self.plan.full_test_its,
                desc='test',
                enabled=self.dist.is_chief and cfg.progress,
            )
            for i, (x, y) in enumerate(batches):
                sums += tf.cast(self.eval_step(x, y, tf.constant(i, tf.int64)), tf.float64)
        total, levels = unpack(TEST_SUMS, self.dist.allreduce_sum(sums).numpy())
        n = max(total['n'], 1.0)
        return {
            'loss': total['loss'] / n,
            'bits_x': total['bits_x'] / n,
            'bits_y': total['bits_y'] / n,
            'pred_loss': total['error'] / n,
            'n_test': int(total['n']),
            'bits_x_per_level': [float(v) for v in levels / n],
        }

    def encode_test_set(self, outdir, use_ema):
        """Rank 0 (--inference): LOGDIR/inference/x.npy, the n_test uint8 test images, and
        z.npy, their packed latents (`glow_tf.model.latents`; decoding z gives x back exactly).
        Returns the two paths."""
        cfg = self.cfg
        flow = InMemoryModel(
            self.model, n_bits_x=int(cfg.n_bits_x), batch_size=self.plan.local_batch_test
        )
        xs, zs = [], []
        with self.weights(use_ema):
            batches = self.source.test(self.plan.local_batch_test).take(
                cfg.n_test // self.plan.local_batch_test
            )
            for x, y in batches:
                xs.append(x.numpy())
                zs.append(flow.encode(xs[-1], y.numpy() if self.model.n_classes else None))
        paths = {'x': os.path.join(outdir, 'x.npy'), 'z': os.path.join(outdir, 'z.npy')}
        for key, arrays in (('x', xs), ('z', zs)):
            atomic_write_bytes(Path(paths[key]), lambda f: np.save(f, np.concatenate(arrays, 0)))
        return paths


def test_record(step, epoch, raw, ema, improved, seconds, n_classes):
    """The test.jsonl record of a pass (training/logs.py): the better weights' numbers as the
    run's result, and both sets'."""
    use_ema = bool(ema['loss'] < raw['loss'])
    res = ema if use_ema else raw
    rec = {
        'step': step,
        'epoch': epoch,
        'loss': res['loss'],
        'bits_x': res['bits_x'],
        'bits_y': res['bits_y'],
        'n_test': res['n_test'],
        'best': bool(improved),
        'weights': 'ema' if use_ema else 'raw',
        'ema': use_ema,
        'loss_raw': raw['loss'],
        'bits_x_raw': raw['bits_x'],
        'loss_ema': ema['loss'],
        'bits_x_ema': ema['bits_x'],
        'bits_x_per_level': res['bits_x_per_level'],
        'time': seconds,
    }
    rec.update({f'bits_x_level{i}': v for i, v in enumerate(res['bits_x_per_level'])})
    if n_classes:
        rec['pred_loss'] = res['pred_loss']
    return rec


def test_line(rec, tag=''):
    """The console line of a test pass, e.g. `test  step 600: bits/dim 1.6560 loss 1.6560 *
    [raw weights; raw 1.6560, averaged 1.6594] (10000 images, 18.5s)`."""
    y_part = (
        f" bits_y {rec['bits_y']:.4f} class error {rec['pred_loss']:.4f}"
        if 'pred_loss' in rec
        else ''
    )
    return (
        f"test  step {rec['step']}: bits/dim {rec['bits_x']:.4f} loss {rec['loss']:.4f}"
        f"{y_part}{' *' if rec['best'] else ''} [{rec['weights']} weights; raw "
        f"{rec['bits_x_raw']:.4f}, averaged {rec['bits_x_ema']:.4f}] ({rec['n_test']} images, "
        f"{rec['time']:.1f}s){tag}"
    )
