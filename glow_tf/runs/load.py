"""Rebuild a trained Glow from a training run on disk (the layout:
`glow_tf.runs.checkpoint_format`).

model, config = load_model(logdir)                  # the weights that tested better
model, config = load_model(logdir, which='best')    # the best-test-loss checkpoint
model, config = load_model('logdir/checkpoints/ckpt-2000', use_ema=False)
run = load_run(logdir)        # the same, plus which checkpoint and which weights were used:
                              # run.model, run.config, run.prefix, run.use_ema
"""

import os
from typing import NamedTuple

import tensorflow as tf

from glow_tf.model.glow import Glow
from glow_tf.runs.checkpoint_format import (
    CKPT_SUBDIR,
    CONFIG_NAME,
    find_checkpoint,
    find_config,
    find_loadable,
    list_groups,
    model_variable_names,
    selected_weights,
    stored_as,
    variable_group,
    verify_checkpoint,
)
from glow_tf.runs.config import TrainConfig


class LoadedRun(NamedTuple):
    """A trained model as `load_run` rebuilt it.

    Args:
        model: the `glow_tf.Glow` (memory_mode 'plain': inference needs no memory tricks).
        config: the run's `TrainConfig` (from its config.json).
        prefix: the checkpoint prefix the weights were read from.
        use_ema: True if they are the Polyak-averaged weights, False for the raw ones.
    """

    model: Glow
    config: TrainConfig
    prefix: str
    use_ema: bool


def load_model(logdir_or_ckpt, use_ema=None, which='latest'):
    """Rebuild a trained Glow from a training log dir (or a checkpoint dir / prefix).

    Returns (model, config). use_ema=None (default): the weights that scored better at the run's
    last test pass (`selected_weights`); True: the Polyak-averaged weights; False: the raw ones.
    which: 'latest' or 'best' (the best-test-loss checkpoint of a log dir).
    """
    run = load_run(logdir_or_ckpt, use_ema, which)
    return run.model, run.config


def load_run(logdir_or_ckpt, use_ema=None, which='latest'):
    """`load_model`, returning a `LoadedRun` that also says which checkpoint and weights it used
    (the checkpoint is looked up once, here)."""
    prefix = find_checkpoint(logdir_or_ckpt, which)
    if prefix is None:
        raise FileNotFoundError(
            f"{logdir_or_ckpt}: no checkpoint found (expected a training "
            f"log dir with {CKPT_SUBDIR}/, a checkpoint dir or a prefix)"
        )
    _check_loadable(prefix, logdir_or_ckpt, which)
    if use_ema is None:
        use_ema = selected_weights(prefix) == 'ema'
    cfg_path = find_config(
        prefix if not os.path.isdir(logdir_or_ckpt) else logdir_or_ckpt
    ) or find_config(prefix)
    if cfg_path is None:
        raise FileNotFoundError(
            f"{logdir_or_ckpt}: no {CONFIG_NAME} next to the checkpoint "
            f"{prefix}; it is written by train.py at the start of a run"
        )
    config = TrainConfig.load(cfg_path)
    kwargs = config.to_model_kwargs()
    kwargs['memory_mode'] = 'plain'  # inference needs no gradient memory tricks
    model = Glow(**kwargs)

    groups = {'model': model_variable_names(model)}
    shadows = None
    if use_ema:
        if 'ema' not in list_groups(prefix):
            raise ValueError(f"{prefix}: checkpoint has no EMA weights; pass use_ema=False")
        named_tr = model_variable_names(model, trainable_only=True)
        shadows = {k: tf.Variable(tf.zeros_like(v), trainable=False) for k, v in named_tr.items()}
        groups['ema'] = shadows
    groups = stored_as(groups, prefix)  # checkpoints of earlier releases: migrate_key
    groups = {g: variable_group(named) for g, named in groups.items()}
    status = tf.train.Checkpoint(**groups).read(prefix)
    status.expect_partial()
    try:
        status.assert_existing_objects_matched()
    except AssertionError as e:
        raise ValueError(
            f"{prefix}: checkpoint does not match the model described by {cfg_path}: {str(e)[:500]}"
        ) from None
    if shadows is not None:
        for k, v in model_variable_names(model, trainable_only=True).items():
            v.assign(shadows[k])
    return LoadedRun(model, config, prefix, bool(use_ema))


def _check_loadable(prefix, given, which):
    """ValueError naming `prefix` and the alternatives when it cannot be read completely."""
    reason = verify_checkpoint(prefix)
    if reason is None:
        return
    hints = []
    older, _ = find_loadable(os.path.dirname(prefix))
    if older is not None:
        hints.append(f"the newest checkpoint that loads is {older} (pass it as --model)")
    if which != 'best' and os.path.isdir(given):
        best = find_checkpoint(given, 'best')
        if best is not None and best != prefix and verify_checkpoint(best) is None:
            hints.append("--which best loads the best-test-loss checkpoint")
    raise ValueError(
        f"{prefix}: checkpoint cannot be loaded ({reason})"
        + ('; ' + '; '.join(hints) if hints else '; no loadable checkpoint next to it')
    )
