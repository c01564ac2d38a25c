"""Checkpoints: what is saved, where, and how a model is rebuilt from a training log directory.

Layout of a log directory (written by rank 0 only):

    logdir/config.json            the resolved TrainConfig (atomic write)
    logdir/checkpoints/ckpt-<step>.{index,data-*}, checkpoints/checkpoint   (CheckpointManager)
    logdir/best/ckpt-<step>.*     the checkpoint with the best test loss so far (max_to_keep=1)
    logdir/weights.json           which weights (raw or Polyak-averaged) scored better at the last
                                  test pass ('latest') and at the best one ('best'), with both
                                  scores; `load_model` uses that choice by default

Every checkpoint holds four groups of variables, each keyed by a stable name:
    model/      every model variable (trainable and not), keyed by its Keras path without the
                model's name, '/' -> '.': `level0.level0_step0.actnorm.bias`
    ema/        the Polyak averages of the trainable variables, keyed by the same names
    optimizer/  the optimiser's slots, keyed by their Keras path without the optimiser's and the
                model's names (`level0_level0_step0_actnorm_bias_momentum`), and its counters
    state/      step, epoch, epoch_step, n_processed, n_images, best_test_loss, n_skipped,
                train_time, world_size

Checkpoints written before the model tracked its levels (glow_tf 0.x up to the CHANGELOG's
"levels tracked" entry) key the level's layers without the level (`level0_step0.actnorm.bias`,
slot `level0_step0_actnorm_bias_momentum`). `migrate_key` is the one map from those keys to
today's; reading a checkpoint (`make_checkpoint(..., reading=prefix)`, `stored_as`) keys the
groups the way that checkpoint stores them, so old runs resume and old models load. New
checkpoints are always written with today's keys.

Writes are atomic: `tf.train.CheckpointManager` writes the data and index files first and then
rewrites the small `checkpoint` index file (itself an atomic rename), so a process killed at any
moment leaves the previous checkpoint listed and intact.

Groups are explicit name -> tf.Variable maps (not Keras object tracking, which does not see the
model's list-held layers), so checkpoints do not depend on Python attribute names.
"""

import json
import os
import re
from pathlib import Path

import numpy as np
import tensorflow as tf

from glow_tf.fileio import atomic_write_bytes
from glow_tf.variables import tf_variables

CKPT_SUBDIR = 'checkpoints'
CKPT_RE = re.compile(r'^(?P<name>ckpt-(?P<step>\d+))\.(index|data-\d+-of-\d+)$')
STATE_FILE = 'checkpoint'
FINITE_GROUPS = ('model/', 'ema/')
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
    cannot be told apart except by order, so they are refused with a ValueError. Glow models and
    their optimisers have no such collisions, so every name is the plain path (CHANGELOG: older
    checkpoints hold the same names).
    """
    tf_vars = tf_variables(variables)
    names = []
    for i, v in enumerate(variables):
        path = getattr(v, 'path', None) or getattr(v, 'name', f'var{i}')
        if strip_prefix and path.startswith(strip_prefix + '/'):
            path = path[len(strip_prefix) + 1 :]
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
            raise ValueError(
                f"two variables share the checkpoint name {n!r} (same path, shape "
                "and dtype): rename one of their layers so the checkpoint can tell "
                "them apart"
            )
        out[n] = tv
    return out


def variable_group(named):
    group = tf.Module()
    group.vars = dict(named)
    return group


class TrainState(tf.Module):
    """Counters saved with every checkpoint (see module docstring)."""

    FIELDS = {
        'step': tf.int64,
        'epoch': tf.int64,
        'epoch_step': tf.int64,
        'n_processed': tf.int64,
        'n_images': tf.int64,
        'best_test_loss': tf.float64,
        'n_skipped': tf.int64,
        'train_time': tf.float64,
        'world_size': tf.int64,
    }

    def __init__(self):
        super().__init__(name='train_state')
        with tf.init_scope():
            self.vars = {
                k: tf.Variable(
                    1 if k == 'epoch' else (float('inf') if k == 'best_test_loss' else 0),
                    dtype=d,
                    trainable=False,
                    name=k,
                )
                for k, d in self.FIELDS.items()
            }

    def get(self):
        return {
            k: (float(v.numpy()) if v.dtype.is_floating else int(v.numpy()))
            for k, v in self.vars.items()
        }

    def set(self, **values):
        for k, val in values.items():
            self.vars[k].assign(val)

    def variables_list(self):
        return list(self.vars.values())


def model_variable_names(model, trainable_only=False):
    """{checkpoint name: tf.Variable} of a model's variables (or its trainable ones)."""
    variables = model.trainable_variables if trainable_only else model.variables
    return named_variables(variables, model.name)


def optimizer_variable_names(optimizer, model):
    """{checkpoint name: tf.Variable} of an optimiser's variables. Keras names a slot after the
    path of its variable ('adamax/glow_level0_..._momentum'); both names are dropped."""
    named = named_variables(optimizer.variables, optimizer.name)
    model_prefix = model.name + '_'
    slot_prefixes = tuple(
        v.path.replace('/', '_') + '_' for v in model.trainable_variables if hasattr(v, 'path')
    )
    return {
        (k[len(model_prefix) :] if k.startswith(slot_prefixes) else k): v for k, v in named.items()
    }


# The one map from the keys of checkpoints written before the model tracked its levels to
# today's (module docstring): a level's step or split gains its level as a parent.
_LEGACY_LAYER_KEY = re.compile(r'^(level\d+)_(step\d+|split)(?=[._])')


def migrate_key(group, key):
    """A variable's name in a checkpoint written before levels were tracked -> its name now.

    model/, ema/   level{i}_step{k}.<rest>  -> level{i}.level{i}_step{k}.<rest>
                   level{i}_split.<rest>    -> level{i}.level{i}_split.<rest>
    optimizer/     level{i}_step{k}_<rest>  -> level{i}_level{i}_step{k}_<rest>  (slots)
                   level{i}_split_<rest>    -> level{i}_level{i}_split_<rest>
    anything else (top_prior.*, iteration, learning_rate, state/) is unchanged.
    """
    match = _LEGACY_LAYER_KEY.match(key)
    if match is None or group not in ('model', 'ema', 'optimizer'):
        return key
    joint = '.' if group in ('model', 'ema') else '_'
    level, layer = match.groups()
    return f'{level}{joint}{level}_{layer}{key[match.end() :]}'


def stored_names(prefix):
    """{group: [variable names]} as checkpoint `prefix` stores them."""
    groups = {}
    for key, _ in tf.train.list_variables(prefix):
        group, sep, rest = key.partition('/vars/')
        if sep:
            name = rest.split('/.ATTRIBUTES')[0].replace('..', '.')  # TF escapes '.' as '..'
            groups.setdefault(group, []).append(name)
    return groups


def _has_legacy_keys(stored):
    return any(_LEGACY_LAYER_KEY.match(n) for n in stored.get('model', []))


def is_legacy_checkpoint(prefix):
    """True for a checkpoint written before levels were tracked (keys `level0_step0.*`)."""
    return _has_legacy_keys(stored_names(prefix))


def stored_as(groups, prefix):
    """`groups` ({group: {name: variable}}, today's names) keyed the way checkpoint `prefix`
    stores them: unchanged for a checkpoint of today's layout, through `migrate_key` for an
    older one. A variable the checkpoint lacks keeps its name (and is reported missing)."""
    if prefix is None:
        return groups
    stored = stored_names(prefix)
    if not _has_legacy_keys(stored):
        return groups
    out = {}
    for group, named in groups.items():
        renamed = {}
        for old in stored.get(group, []):
            new = migrate_key(group, old)
            if new in named:
                renamed[old] = named[new]
        taken = {id(v) for v in renamed.values()}
        renamed.update({k: v for k, v in named.items() if id(v) not in taken})
        out[group] = renamed
    return out


def make_checkpoint(model, ema=None, optimizer=None, state=None, reading=None):
    """tf.train.Checkpoint over the groups described in the module docstring; with
    `reading=prefix`, keyed the way that checkpoint stores them (`stored_as`)."""
    groups = {'model': model_variable_names(model)}
    if ema is not None:
        names = model_variable_names(model, trainable_only=True)
        groups['ema'] = dict(zip(names.keys(), ema.shadow))
    if optimizer is not None:
        groups['optimizer'] = optimizer_variable_names(optimizer, model)
    if state is not None:
        groups['state'] = dict(state.vars)
    groups = stored_as(groups, reading)
    return tf.train.Checkpoint(**{g: variable_group(named) for g, named in groups.items()})


def find_checkpoint(path, which='latest'):
    """Resolve a log dir / checkpoint dir / checkpoint prefix to a checkpoint prefix (or None).

    which='latest' (default) or 'best' (only meaningful for a training log dir).
    """
    if not path:
        return None
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.isdir(path):
        sub = BEST_SUBDIR if which == 'best' else CKPT_SUBDIR
        for d in (os.path.join(path, sub), path):
            try:
                found = tf.train.latest_checkpoint(d)
            except ValueError:  # an empty or garbled `checkpoint` state file
                found = None
            if found and tf.io.gfile.exists(found + '.index'):
                return found
            on_disk = [p for p in checkpoint_prefixes(d) if os.path.exists(p + '.index')]
            if on_disk:  # the newest ckpt-N named by the files themselves
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
    return sorted(
        {
            name.split('/', 1)[0]
            for name, _ in tf.train.list_variables(prefix)
            if not name.startswith('_')
        }
    )


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


def _weights_choice(prefix):
    """weights.json's record for this checkpoint (its 'best' entry for one in best/), or {}."""
    ckpt_dir = os.path.dirname(os.path.abspath(prefix))
    key = 'best' if os.path.basename(ckpt_dir) == BEST_SUBDIR else 'latest'
    choice = read_weights_choices(os.path.join(os.path.dirname(ckpt_dir), WEIGHTS_NAME)).get(key)
    return choice if isinstance(choice, dict) else {}


def selected_weights(prefix):
    """'ema' or 'raw': the weights that scored better on the test set for this checkpoint's run
    (weights.json beside the checkpoint's log dir; its 'best' entry for a checkpoint in best/).
    Runs without a weights.json (written before it existed) use the averages, as they did."""
    return _weights_choice(prefix).get('weights', 'ema')


def packaged_weights(prefix):
    """'ema' or 'raw' for a checkpoint written by scripts/package_editor_model.py: which weights
    of the original run its model/ group holds (weights.json's `packaged_weights`); None for an
    ordinary training checkpoint."""
    kind = _weights_choice(prefix).get('packaged_weights')
    return kind if kind in ('ema', 'raw') else None


def read_state(prefix):
    """The TrainState counters stored in a checkpoint, as a dict."""
    reader = tf.train.load_checkpoint(prefix)
    out = {}
    for name, _ in tf.train.list_variables(prefix):
        if name.startswith('state/vars/'):
            key = name[len('state/vars/') :].split('/', 1)[0]
            val = reader.get_tensor(name)
            out[key] = val.item() if hasattr(val, 'item') else val
    return out


def write_json_atomic(path, obj):
    text = json.dumps(obj, indent=2, sort_keys=True) + '\n'
    atomic_write_bytes(Path(path), lambda f: f.write(text.encode()))


# ---- checkpoint files on disk: which ckpt-N exist, and which of them really load ----------
def checkpoint_step(prefix):
    m = re.search(r'ckpt-(\d+)$', prefix)
    return int(m.group(1)) if m else -1


def state_file_entries(directory):
    """Checkpoint prefixes named by `directory/checkpoint` ([] if absent); None if unreadable."""
    path = os.path.join(directory, STATE_FILE)
    if not os.path.exists(path):
        return []
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    names = re.findall(
        r'^\s*(?:model_checkpoint_path|all_model_checkpoint_paths)\s*:\s*"([^"]*)"\s*$',
        text,
        flags=re.M,
    )
    if not names:
        return None
    return [n if os.path.isabs(n) else os.path.join(directory, n) for n in names]


def checkpoint_prefixes(directory):
    """Every ckpt-N prefix in `directory` (index / data files, state-file entries), newest first."""
    found = set()
    if os.path.isdir(directory):
        for name in os.listdir(directory):
            m = CKPT_RE.match(name)
            if m:
                found.add(os.path.join(directory, m.group('name')))
    for p in state_file_entries(directory) or []:
        found.add(os.path.normpath(p))
    return sorted(found, key=checkpoint_step, reverse=True)


def verify_checkpoint(prefix):
    """None when `prefix` loads completely with finite weights, else the reason it does not."""
    import tensorflow as tf

    if not os.path.exists(prefix + '.index'):
        return f"{os.path.basename(prefix)}.index is missing"
    try:
        reader = tf.train.load_checkpoint(prefix)
        names = [n for n, _ in tf.train.list_variables(prefix)]
        for name in names:
            value = reader.get_tensor(name)
            if (
                name.startswith(FINITE_GROUPS)
                and isinstance(value, np.ndarray)
                and value.dtype.kind == 'f'
                and not np.all(np.isfinite(value))
            ):
                return f"non-finite values in {name.split('/.ATTRIBUTES')[0]}"
    except Exception as e:  # tf.errors.*, IndexError on a truncated data file, ...
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return f"unreadable ({type(e).__name__}: {msg[:200]})"
    if not names:
        return "holds no variables"
    return None


def find_loadable(directory):
    """(newest loadable prefix or None, [(prefix, reason) skipped, newest first])."""
    skipped = []
    for prefix in checkpoint_prefixes(directory):
        reason = verify_checkpoint(prefix)
        if reason is None:
            return prefix, skipped
        skipped.append((prefix, reason))
    return None, skipped


def find_loadable_at(path):
    """find_loadable for a log dir (its checkpoints/), a checkpoint dir or a ckpt-N prefix."""
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.isdir(path):
        for d in (os.path.join(path, 'checkpoints'), path):
            if checkpoint_prefixes(d):
                return find_loadable(d)
        return None, []
    reason = verify_checkpoint(path)
    return (path, []) if reason is None else (None, [(path, reason)])
