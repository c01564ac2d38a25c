"""A run's checkpoints: where to resume from, whether it fits, restoring, saving, keeping the best.

    prefix, notes = find_restore(logdir, cfg)        # rank 0; None: a fresh start
    learntop_form = check_compatible(cfg, prefix)    # ConfigError naming the flag that differs
    ckpts = RunCheckpoints(logdir, checkpoint, keep, log, enabled=chief)
    read_checkpoint(checkpoint, prefix, logdir, cfg) # rank 0; ConfigError when it does not fit
    ckpts.keep_best_on_disk(counters)                # best/ is replaced only by a better model
    path = ckpts.save(step, best=False)              # rank 0 (None elsewhere)

The format (variable groups, names, the log directory's layout) is `glow_tf.runs.checkpoint_format`;
what survives a killed write and which checkpoint really loads is `recovery`. The resume
decision: the newest checkpoint of logdir/checkpoints/ that loads (skipped ones are noted);
else --restore_path (rank 0 reads it, the trainer broadcasts every variable); a log dir with a
previous run but no loadable checkpoint is refused (ConfigError) unless --start_over, which moves
the previous run aside; --inference needs a checkpoint.
"""

import os
import time

import numpy as np
import tensorflow as tf

from glow_tf.errors import ConfigError
from glow_tf.runs import checkpoint_format as ckpt_lib
from glow_tf.runs.config import MODEL_FLAGS, TrainConfig
from glow_tf.training import checkpoint_recovery as recovery


def find_restore(logdir, cfg):
    """Rank 0: (the checkpoint prefix to resume from or None, [notes for the log]). Walks back
    from the newest checkpoint to the newest one that really loads (checkpoint_recovery.py),
    notes what it skipped, and refuses to start over in a log dir that holds a previous run unless
    --start_over."""
    notes = []
    own_dir = os.path.join(logdir, ckpt_lib.CKPT_SUBDIR)
    best_dir = os.path.join(logdir, ckpt_lib.BEST_SUBDIR)
    for d in (own_dir, best_dir):
        for path in recovery.clean_stale_temp(d):
            notes.append(f"removed {path} (left by a checkpoint write that was cut off)")
    recovery.prepare_checkpoint_dir(best_dir)
    own, skipped = recovery.prepare_checkpoint_dir(own_dir)
    if skipped:
        notes.append(
            f"skipped unloadable checkpoint(s) in {own_dir}: {recovery.describe_skipped(skipped)}"
        )
    if own is not None:
        if cfg.start_over and not cfg.inference:
            # a requeued command that still carries --start_over must not discard progress
            notes.append(
                f"--start_over ignored: {own} loads, so the run resumes from "
                "it (move or delete the log dir to really start over)"
            )
        if skipped:
            notes.append(f"resuming from {own}, the newest checkpoint that loads")
        if cfg.restore_path:
            notes.append(
                f"{logdir} already has checkpoints; resuming from {own} "
                f"and ignoring --restore_path {cfg.restore_path}"
            )
        return own, notes
    if cfg.start_over and not cfg.inference and recovery.has_previous_run(logdir):
        moved = recovery.move_previous_run(logdir)
        notes.append(
            f"--start_over: none of the previous run's checkpoints loads; moved "
            f"its checkpoints and logs to {moved}"
        )
        return None, notes
    if not cfg.inference and recovery.has_previous_run(logdir):
        why = (
            f"none of its checkpoints loads ({recovery.describe_skipped(skipped)})"
            if skipped
            else f"it has no checkpoint in {ckpt_lib.CKPT_SUBDIR}/"
        )
        raise ConfigError(
            '--logdir',
            f"{logdir} holds a previous run ({ckpt_lib.CONFIG_NAME}"
            f" and checkpoint files) but {why}. Refusing to start over there: "
            "restore a checkpoint, use a new --logdir, or pass --start_over "
            "(moves the old run into a previous-<time>/ subfolder and starts "
            "at step 0)",
        )
    if cfg.restore_path:
        found, skipped = ckpt_lib.find_loadable_at(cfg.restore_path)
        if found is None:
            raise ConfigError(
                '--restore_path',
                f"{cfg.restore_path}: no loadable checkpoint "
                + (
                    f"({recovery.describe_skipped(skipped)}); give an older ckpt-N "
                    "prefix or another log dir"
                    if skipped
                    else "found (give a log dir, a checkpoint dir or a ckpt-N prefix)"
                ),
            )
        if skipped:
            notes.append(
                f"--restore_path: skipped {recovery.describe_skipped(skipped)}; using {found}"
            )
        return found, notes
    if cfg.inference:
        raise ConfigError(
            '--inference',
            f"no loadable checkpoint in --logdir {logdir} and "
            "no --restore_path given"
            + (f" (skipped {recovery.describe_skipped(skipped)})" if skipped else ''),
        )
    return None, notes


def is_warm_start(cfg, prefix):
    """True when `prefix` comes from --restore_path (not this log dir) for training: only its
    weights start the run (`glow_tf.training.trainer.Trainer.warm_start`)."""
    logdir = os.path.abspath(cfg.logdir)
    return not cfg.inference and not os.path.abspath(prefix).startswith(logdir + os.sep)


def check_compatible(cfg, prefix):
    """A resumed run must describe the same model as the checkpoint (a ConfigError naming the
    flag that differs). Returns the saved learntop_form (which no flag sets)."""
    path = ckpt_lib.find_config(prefix)
    if path is None:
        return cfg.learntop_form
    saved = TrainConfig.load(path)
    # Not model arguments, but what the curves and bits/dim mean: the data and its bit depth. A
    # warm start (--restore_path into a new log dir) may fine-tune on other data.
    warm = is_warm_start(cfg, prefix)
    for k in ('n_bits_x',) if warm else ('problem', 'category', 'n_bits_x'):
        if getattr(cfg, k) != getattr(saved, k):
            raise ConfigError(
                f'--{k}',
                f"{getattr(cfg, k)!r} differs from the "
                f"checkpoint's {getattr(saved, k)!r} ({path}): the logs would mix "
                "two runs; use the original flags or a new --logdir",
            )
    mine, theirs = cfg.to_model_kwargs(), saved.to_model_kwargs()
    for k in mine:
        # how the same function is computed may change on resume: memory mode, precision, forms
        if k in ('memory_mode', 'precision', 'conv_forms', 'learntop_form'):
            continue
        if tuple(np.atleast_1d(mine[k])) != tuple(np.atleast_1d(theirs[k])):
            raise ConfigError(
                MODEL_FLAGS[k],
                f"{k}={mine[k]!r} differs from the checkpoint's "
                f"{theirs[k]!r} ({path}); use the original flags or a new --logdir",
            )
    return saved.learntop_form


def read_checkpoint(checkpoint, prefix, logdir, cfg):
    """Rank 0: load `prefix` into `checkpoint` (a tf.train.Checkpoint). ConfigError naming
    --logdir (a checkpoint of this log dir) or --restore_path when it no longer reads or does
    not match the model / optimiser."""
    try:
        status = checkpoint.read(prefix)
    except Exception as e:  # verified a moment ago; changed since
        raise ConfigError(
            '--logdir',
            f"{prefix} cannot be loaded ({type(e).__name__}: {str(e)[:200]}); run again "
            "to fall back to an older checkpoint",
        ) from None
    status.expect_partial()
    try:
        status.assert_existing_objects_matched()
    except AssertionError as e:
        own = prefix.startswith(logdir + os.sep)
        raise ConfigError(
            '--logdir' if own else '--restore_path',
            f"{prefix} does not match this model/optimiser "
            f"(--optimizer {cfg.optimizer}): {str(e)[:300]}",
        ) from None


class RunCheckpoints:
    """Rank 0's checkpoint writers: logdir/checkpoints/ (the newest `keep`) and logdir/best/ (1).

    Args:
        logdir: the run's log directory.
        checkpoint: the tf.train.Checkpoint over model, EMA, optimiser and counters.
        keep: how many checkpoints checkpoints/ keeps (--keep_checkpoints).
        log: the `RunLogger` that prints every path written.
        enabled: True on rank 0; elsewhere `save` writes nothing and returns None.
    """

    def __init__(self, logdir, checkpoint, keep, log, enabled=True):
        self.logdir, self.log, self.enabled = logdir, log, enabled
        self.manager = self.best_manager = None
        self.last_save_time = time.time()
        if enabled:
            self.manager = tf.train.CheckpointManager(
                checkpoint,
                os.path.join(logdir, ckpt_lib.CKPT_SUBDIR),
                max_to_keep=keep,
                checkpoint_name='ckpt',
            )
            self.best_manager = tf.train.CheckpointManager(
                checkpoint,
                os.path.join(logdir, ckpt_lib.BEST_SUBDIR),
                max_to_keep=1,
                checkpoint_name='ckpt',
            )

    @property
    def latest(self):
        """The newest checkpoint this run wrote or resumed from (rank 0), else None."""
        return self.manager.latest_checkpoint if self.manager else None

    def save(self, step, best=False):
        """Rank 0: checkpoint at `step` (atomic; see runs/checkpoint_format.py) into best/ or
        checkpoints/ (once per step); its path, None on other ranks."""
        if not self.enabled:
            return None
        manager = self.best_manager if best else self.manager
        latest = manager.latest_checkpoint
        if not best and latest and latest.endswith(f'-{step}'):
            return latest
        path = recovery.write_checkpoint(manager, step)
        self.last_save_time = time.time()
        self.log.print(f"checkpoint{' (best)' if best else ''} step {step}: {path}")
        return path

    def minutes_since_save(self):
        return (time.time() - self.last_save_time) / 60.0

    def keep_best_on_disk(self, counters):
        """Rank 0: best/ is replaced only by a better model, even when the restored checkpoint
        is older than the best one (a fallback) and remembers a worse best loss."""
        if self.enabled:
            on_disk = recovery.best_loss_on_disk(os.path.join(self.logdir, ckpt_lib.BEST_SUBDIR))
            if on_disk < counters.best_test_loss:
                counters.best_test_loss = on_disk
