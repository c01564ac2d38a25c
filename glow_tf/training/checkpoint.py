"""Checkpoints: what is saved, where, and how a model is rebuilt from a training log directory.

Layout of a log directory (written by rank 0 only):

    logdir/config.json            the resolved TrainConfig (atomic write)
    logdir/checkpoints/ckpt-<step>.{index,data-*}, checkpoints/checkpoint   (CheckpointManager)
    logdir/best/ckpt-<step>.*     the checkpoint with the best test loss so far (max_to_keep=1)
    logdir/weights.json           which weights (raw or Polyak-averaged) scored better at the last
                                  test pass ('latest') and at the best one ('best'), with both
                                  scores; `load_model` uses that choice by default

Every checkpoint holds four groups of variables, each keyed by a stable name:
    model/      every model variable (trainable and not), keyed by its Keras path
    ema/        the Polyak averages of the trainable variables, keyed by the same paths
    optimizer/  the optimiser's slots and iteration counter
    state/      step, epoch, epoch_step, n_processed, n_images, best_test_loss, n_skipped,
                train_time, world_size

Writes are atomic: `tf.train.CheckpointManager` writes the data and index files first and then
rewrites the small `checkpoint` index file (itself an atomic rename), so a process killed at any
moment leaves the previous checkpoint listed and intact.

Groups are explicit name -> tf.Variable maps (not Keras object tracking, which does not see the
model's list-held layers), so checkpoints do not depend on Python attribute names.
"""
import json
import os
from pathlib import Path

import tensorflow as tf

from glow_tf.config import TrainConfig
from glow_tf.fileio import atomic_write_bytes
from glow_tf.distributed import tf_variables

CKPT_SUBDIR = 'checkpoints'
BEST_SUBDIR = 'best'
CONFIG_NAME = 'config.json'
WEIGHTS_NAME = 'weights.json'


def _key(path):
    return path.replace('/', '.').replace(':', '_')


def named_variables(variables, strip_prefix=None):
    """{stable name: tf.Variable} for a list of Keras (or tf) variables, in list order.

    Names are the Keras `path`s without `strip_prefix/` (an optimiser's or model's own name,
    which Keras uniquifies per process: 'adamax', 'adamax_1', ...). A name depends only on its
    variable, never on its position in the list: should two paths map to the same name, both get
    their shape and dtype appended (`name__3x3x8_float32`); variables that agree on all three
    cannot be told apart except by order, so they are refused with a ValueError. (Glow models and
    their optimisers have no such collisions, so checkpoints written before this rule -- which
    suffixed a list index instead -- hold the same names and still load.)
    """
    tf_vars = tf_variables(variables)
    names = []
    for i, v in enumerate(variables):
        path = getattr(v, 'path', None) or getattr(v, 'name', f'var{i}')
        if strip_prefix and path.startswith(strip_prefix + '/'):
            path = path[len(strip_prefix) + 1:]
        names.append(_key(path))
    counts = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    out = {}
    for n, tv in zip(names, tf_vars):
        if counts[n] > 1:
            shape = 'x'.join(str(d) for d in tv.shape) or 'scalar'
            n = f'{n}__{shape}_{tv.dtype.name}'
        if n in out:
            raise ValueError(f"two variables share the checkpoint name {n!r} (same path, shape "
                             "and dtype): rename one of their layers so the checkpoint can tell "
                             "them apart")
        out[n] = tv
    return out


def variable_group(named):
    group = tf.Module()
    group.vars = dict(named)
    return group


class TrainState(tf.Module):
    """Counters saved with every checkpoint (see module docstring)."""

    FIELDS = {'step': tf.int64, 'epoch': tf.int64, 'epoch_step': tf.int64,
              'n_processed': tf.int64, 'n_images': tf.int64, 'best_test_loss': tf.float64,
              'n_skipped': tf.int64, 'train_time': tf.float64, 'world_size': tf.int64}

    def __init__(self):
        super().__init__(name='train_state')
        with tf.init_scope():
            self.vars = {k: tf.Variable(1 if k == 'epoch' else (float('inf') if k == 'best_test_loss' else 0),
                                        dtype=d, trainable=False, name=k)
                         for k, d in self.FIELDS.items()}

    def get(self):
        return {k: (float(v.numpy()) if v.dtype.is_floating else int(v.numpy()))
                for k, v in self.vars.items()}

    def set(self, **values):
        for k, val in values.items():
            self.vars[k].assign(val)

    def variables_list(self):
        return list(self.vars.values())


def make_checkpoint(model, ema=None, optimizer=None, state=None):
    """tf.train.Checkpoint over the groups described in the module docstring."""
    groups = {'model': variable_group(named_variables(model.variables, model.name))}
    if ema is not None:
        paths = named_variables(model.trainable_variables, model.name)
        groups['ema'] = variable_group(dict(zip(paths.keys(), ema.shadow)))
    if optimizer is not None:
        groups['optimizer'] = variable_group(named_variables(optimizer.variables, optimizer.name))
    if state is not None:
        groups['state'] = variable_group(state.vars)
    return tf.train.Checkpoint(**groups)


def find_checkpoint(path, which='latest'):
    """Resolve a log dir / checkpoint dir / checkpoint prefix to a checkpoint prefix (or None).

    which='latest' (default) or 'best' (only meaningful for a training log dir).
    """
    if not path:
        return None
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.isdir(path):
        from glow_tf.training.recovery import checkpoint_prefixes
        sub = BEST_SUBDIR if which == 'best' else CKPT_SUBDIR
        for d in (os.path.join(path, sub), path):
            try:
                found = tf.train.latest_checkpoint(d)
            except ValueError:   # an empty or garbled `checkpoint` state file
                found = None
            if found and tf.io.gfile.exists(found + '.index'):
                return found
            on_disk = [p for p in checkpoint_prefixes(d) if os.path.exists(p + '.index')]
            if on_disk:   # the newest ckpt-N named by the files themselves
                return on_disk[0]
        return None
    if tf.io.gfile.exists(path + '.index'):
        return path
    return None


def find_config(path_or_prefix):
    """config.json for a log dir, a checkpoint dir (its parent) or a checkpoint prefix."""
    p = os.path.abspath(os.path.expanduser(path_or_prefix))
    start = p if os.path.isdir(p) else os.path.dirname(p)
    for d in (start, os.path.dirname(start)):
        cand = os.path.join(d, CONFIG_NAME)
        if os.path.exists(cand):
            return cand
    return None


def list_groups(prefix):
    """Names of the variable groups present in a checkpoint."""
    return sorted({name.split('/', 1)[0] for name, _ in tf.train.list_variables(prefix)
                   if not name.startswith('_')})


def write_weights_choice(logdir, key, record):
    """Record in logdir/weights.json which weights scored better (key: 'latest' or 'best')."""
    path = os.path.join(logdir, WEIGHTS_NAME)
    choices = read_weights_choices(path)
    choices[key] = record
    write_json_atomic(path, choices)


def read_weights_choices(path):
    try:
        with open(path) as f:
            choices = json.load(f)
        return choices if isinstance(choices, dict) else {}
    except (OSError, ValueError):
        return {}


def selected_weights(prefix):
    """'ema' or 'raw': the weights that scored better on the test set for this checkpoint's run
    (weights.json beside the checkpoint's log dir; its 'best' entry for a checkpoint in best/).
    Runs without a weights.json (written before it existed) use the averages, as they did."""
    ckpt_dir = os.path.dirname(os.path.abspath(prefix))
    key = 'best' if os.path.basename(ckpt_dir) == BEST_SUBDIR else 'latest'
    choice = read_weights_choices(os.path.join(os.path.dirname(ckpt_dir), WEIGHTS_NAME)).get(key)
    return choice.get('weights', 'ema') if isinstance(choice, dict) else 'ema'


def load_model(logdir_or_ckpt, use_ema=None, which='latest'):
    """Rebuild a trained Glow from a training log dir (or a checkpoint dir / prefix).

    Returns (model, config). use_ema=None (default): the weights that scored better at the run's
    last test pass (`selected_weights`); True: the Polyak-averaged weights; False: the raw ones.
    which: 'latest' or 'best' (the best-test-loss checkpoint of a log dir).
    """
    import glow_tf

    prefix = find_checkpoint(logdir_or_ckpt, which)
    if prefix is None:
        raise FileNotFoundError(f"{logdir_or_ckpt}: no checkpoint found (expected a training "
                                f"log dir with {CKPT_SUBDIR}/, a checkpoint dir or a prefix)")
    _check_loadable(prefix, logdir_or_ckpt, which)
    if use_ema is None:
        use_ema = selected_weights(prefix) == 'ema'
    cfg_path = find_config(prefix if not os.path.isdir(logdir_or_ckpt) else logdir_or_ckpt) \
        or find_config(prefix)
    if cfg_path is None:
        raise FileNotFoundError(f"{logdir_or_ckpt}: no {CONFIG_NAME} next to the checkpoint "
                                f"{prefix}; it is written by train.py at the start of a run")
    config = TrainConfig.load(cfg_path)
    kwargs = config.to_model_kwargs()
    kwargs['memory_mode'] = 'plain'  # inference needs no gradient memory tricks
    model = glow_tf.Glow(**kwargs)

    named_all = named_variables(model.variables, model.name)
    groups = {'model': variable_group(named_all)}
    shadows = None
    if use_ema:
        if 'ema' not in list_groups(prefix):
            raise ValueError(f"{prefix}: checkpoint has no EMA weights; pass use_ema=False")
        named_tr = named_variables(model.trainable_variables, model.name)
        shadows = {k: tf.Variable(tf.zeros_like(v), trainable=False) for k, v in named_tr.items()}
        groups['ema'] = variable_group(shadows)
    status = tf.train.Checkpoint(**groups).read(prefix)
    status.expect_partial()
    try:
        status.assert_existing_objects_matched()
    except AssertionError as e:
        raise ValueError(f"{prefix}: checkpoint does not match the model described by "
                         f"{cfg_path}: {str(e)[:500]}") from None
    if shadows is not None:
        named_tr = named_variables(model.trainable_variables, model.name)
        for k, v in named_tr.items():
            v.assign(shadows[k])
    return model, config


def _check_loadable(prefix, given, which):
    """ValueError naming `prefix` and the alternatives when it cannot be read completely."""
    from glow_tf.training import recovery
    reason = recovery.verify_checkpoint(prefix)
    if reason is None:
        return
    hints = []
    older, _ = recovery.find_loadable(os.path.dirname(prefix))
    if older is not None:
        hints.append(f"the newest checkpoint that loads is {older} (pass it as --model)")
    if which != 'best' and os.path.isdir(given):
        best = find_checkpoint(given, 'best')
        if best is not None and best != prefix and recovery.verify_checkpoint(best) is None:
            hints.append("--which best loads the best-test-loss checkpoint")
    raise ValueError(f"{prefix}: checkpoint cannot be loaded ({reason})"
                     + ('; ' + '; '.join(hints) if hints else '; no loadable checkpoint next to it'))


def read_state(prefix):
    """The TrainState counters stored in a checkpoint, as a dict."""
    reader = tf.train.load_checkpoint(prefix)
    out = {}
    for name, _ in tf.train.list_variables(prefix):
        if name.startswith('state/vars/'):
            key = name[len('state/vars/'):].split('/', 1)[0]
            val = reader.get_tensor(name)
            out[key] = val.item() if hasattr(val, 'item') else val
    return out


def write_json_atomic(path, obj):
    text = json.dumps(obj, indent=2, sort_keys=True) + '\n'
    atomic_write_bytes(Path(path), lambda f: f.write(text.encode()))
