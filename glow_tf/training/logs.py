"""Rank-0 outputs: JSON-lines logs, TensorBoard scalars/images/hparams and console lines.

`RunLogger(logdir, enabled)` is a no-op on ranks other than 0 (enabled=False).
    train.jsonl: one record per log interval {step, epoch, n_processed, n_images, loss,
                 bits_x (bits/dim), bits_y, lr, images_per_sec, n_skipped, time}
                 (+ pred_loss, the class head's error rate, with classes)
    test.jsonl:  one record per full test pass {step, epoch, loss, bits_x, bits_y, n_test,
                 best, weights ('raw' or 'ema': the better, which loss/bits_x report), ema,
                 loss_raw, bits_x_raw, loss_ema, bits_x_ema, time} (+ pred_loss with classes)
On resume `truncate_after(step)` drops records newer than the restored checkpoint, so the logs
of a run killed and resumed read as one uninterrupted run.
"""

import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from glow_tf.fileio import atomic_write_bytes

# the fields of a train / test record that also go to TensorBoard (as train/<key>, test/<key>)
TRAIN_SCALARS = ('loss', 'bits_x', 'bits_y', 'pred_loss', 'lr', 'images_per_sec')
TEST_SCALARS = ('loss', 'bits_x', 'bits_y', 'bits_x_raw', 'bits_x_ema', 'pred_loss')


def _clean(v):
    if isinstance(v, (np.floating, np.integer)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else (1e308 if v > 0 else -1e308)
    return v


class JsonlWriter:
    """Appends one JSON record per line to a `.jsonl` file (flushed per line).

    Args:
        path: the file; created on the first write.
    """

    def __init__(self, path):
        self.path = path

    def write(self, record):
        line = json.dumps({k: _clean(v) for k, v in record.items()}, sort_keys=True)
        with open(self.path, 'a') as f:
            f.write(line + '\n')
            f.flush()

    def truncate_after(self, step):
        """Keep only records with record['step'] <= step (atomic rewrite)."""
        if not os.path.exists(self.path):
            return
        kept = []
        with open(self.path) as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:  # a line cut by a kill: drop it
                    continue
                if rec.get('step', 0) <= step:
                    kept.append(line if line.endswith('\n') else line + '\n')
        atomic_write_bytes(Path(self.path), lambda f: f.write(''.join(kept).encode()))


class RunLogger:
    """The run's outputs (module docstring): train.jsonl, test.jsonl, TensorBoard, console.

    Args:
        logdir: the run's log directory (created if missing).
        enabled: False on ranks other than 0: every method is then a no-op.
        tensorboard: also write TensorBoard summaries under logdir/tensorboard.
    """

    def __init__(self, logdir, enabled=True, tensorboard=True):
        self.enabled = enabled
        self.logdir = logdir
        self.train = self.test = None
        self._tb = None
        if not enabled:
            return
        os.makedirs(logdir, exist_ok=True)
        self.train = JsonlWriter(os.path.join(logdir, 'train.jsonl'))
        self.test = JsonlWriter(os.path.join(logdir, 'test.jsonl'))
        if tensorboard:
            import tensorflow as tf

            self._tb = tf.summary.create_file_writer(os.path.join(logdir, 'tensorboard'))
        self.t0 = time.time()

    def print(self, *args):
        if self.enabled:
            print(*args, flush=True)

    def warn(self, msg):
        if self.enabled:
            print(f'WARNING: {msg}', file=sys.stderr, flush=True)

    def truncate_after(self, step):
        if self.enabled:
            self.train.truncate_after(step)
            self.test.truncate_after(step)

    def scalars(self, prefix, step, values):
        if self._tb is None:
            return
        import tensorflow as tf

        with self._tb.as_default(step=int(step)):
            for k, v in values.items():
                if isinstance(v, (int, float, np.floating, np.integer)) and math.isfinite(float(v)):
                    tf.summary.scalar(f'{prefix}/{k}', float(v))
        self._tb.flush()

    def log_train(self, record):
        self._log(self.train, 'train', record, TRAIN_SCALARS)

    def log_test(self, record):
        levels = tuple(k for k in record if k.startswith('bits_x_level'))  # per level
        self._log(self.test, 'test', record, TEST_SCALARS + levels)

    def _log(self, writer, prefix, record, scalar_keys):
        """One record to its .jsonl file and the scalars among `scalar_keys` to TensorBoard."""
        if not self.enabled:
            return
        writer.write(record)
        self.scalars(prefix, record['step'], {k: record[k] for k in scalar_keys if k in record})

    def hparams(
        self,
        config,
        plan,
        metrics=(
            ('test/bits_x', 'test bits/dim'),
            ('test/loss', 'test loss'),
            ('train/bits_x', 'train bits/dim'),
        ),
    ):
        """The run's hyper-parameters for TensorBoard's HParams dashboard, and the config as text.

        `config`: a resolved TrainConfig, `plan` its RunPlan. Every scalar option becomes an
        hparam (plus the plan's world size and beta2, and the memory mode); the metrics are the
        scalar tags the run logs, so the dashboard compares runs by their latest (final) test
        bits/dim side by side.
        """
        if self._tb is None:
            return
        import tensorflow as tf
        from tensorboard.plugins.hparams import api as hp

        values = {
            k: v for k, v in config.to_dict().items() if isinstance(v, (bool, int, float, str))
        }
        values.update(
            memory_mode=config.resolved_memory_mode,
            world_size=plan.world_size,
            beta2=plan.resolved_beta2,
        )
        with self._tb.as_default(step=0):
            hp.hparams_config(
                hparams=[hp.HParam(k) for k in sorted(values)],
                metrics=[hp.Metric(tag, display_name=name) for tag, name in metrics],
            )
            hp.hparams(values, trial_id=os.path.basename(os.path.normpath(self.logdir)))
            tf.summary.text('config', '```\n' + config.to_json(plan) + '\n```')
        self._tb.flush()

    def image(self, tag, step, image_uint8):
        if self._tb is None:
            return
        import tensorflow as tf

        with self._tb.as_default(step=int(step)):
            tf.summary.image(tag, image_uint8[None], max_outputs=1)
        self._tb.flush()

    def close(self):
        if self._tb is not None:
            self._tb.close()
