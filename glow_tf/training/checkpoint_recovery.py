"""Recovery: resume from the newest checkpoint that really loads; never start a run over silently.

    prefix, skipped = find_loadable(ckpt_dir)     # newest ckpt-N whose every tensor reads back
    verify_checkpoint(prefix) -> None | reason     # missing index/data, checksum, non-finite
    repair_state_file(ckpt_dir, prefix)            # checkpoints/checkpoint names `prefix` as latest
    clean_stale_temp(ckpt_dir)                     # removes ckpt-N_temp/ left by a killed save
    has_previous_run(logdir) / move_previous_run(logdir)   # the --start_over decision
    check_logdir(logdir)                           # ConfigError('--logdir') if it cannot be written
    best_loss_on_disk(best_dir)                    # the loss best/'s checkpoint was kept for

Contract. A checkpoint `ckpt-N` is *loadable* when its index parses, every tensor it lists reads
back (TensorFlow checks each tensor's CRC32C) and every floating-point tensor of the `model/` and
`ema/` groups is finite. Candidates are the `ckpt-N.index` files on disk and the entries of the
`checkpoint` state file (which may be empty, garbled or point at deleted files); they are tried
from the highest N down and every skipped one is reported with its reason. Verification reads the
whole checkpoint once more than a restore would: a one-off cost at start-up.
"""

import math
import os
import re
import shutil
import time
from pathlib import Path

from glow_tf.errors import ConfigError
from glow_tf.fileio import atomic_write_bytes
from glow_tf.runs.checkpoint_format import (
    CKPT_RE,
    STATE_FILE,
    checkpoint_prefixes,
    checkpoint_step,
    find_loadable,
    state_file_entries,
)

TEMP_RE = re.compile(r'^ckpt-\d+_temp')
RUN_OUTPUTS = (
    'checkpoints',
    'best',
    'train.jsonl',
    'test.jsonl',
    'tensorboard',
    'samples',
    'inference',
)


def prepare_checkpoint_dir(directory):
    """Before a tf.train.CheckpointManager opens `directory`: find its newest loadable checkpoint
    and make the state file name it (repair_state_file); with none loadable, move an unreadable
    state file aside (the manager would fail on it). Returns find_loadable's (prefix, skipped)."""
    prefix, skipped = find_loadable(directory)
    if prefix is not None:
        repair_state_file(directory, prefix)
    elif state_file_entries(directory) is None:
        path = os.path.join(directory, STATE_FILE)
        os.replace(path, f'{path}.unreadable')
    return prefix, skipped


def describe_skipped(skipped):
    return '; '.join(f"{os.path.basename(p)}: {why}" for p, why in skipped)


def repair_state_file(directory, latest):
    """Make `directory/checkpoint` name `latest` as the newest checkpoint (atomic rewrite).

    Listed: the existing ckpt-N up to `latest`'s step, so tf.train.CheckpointManager keeps rotating
    them; newer (unloadable) ones are left on disk untouched and overwritten when training reaches
    their step again. Returns True if the file was rewritten.
    """
    entries = state_file_entries(directory)
    if (
        entries
        and os.path.normpath(entries[0]) == os.path.normpath(latest)
        and all(os.path.exists(p + '.index') for p in entries)
    ):
        # model_checkpoint_path comes first in the file; keep a file that is already right
        return False
    step = checkpoint_step(latest)
    older = sorted(
        (
            p
            for p in checkpoint_prefixes(directory)
            if checkpoint_step(p) <= step and os.path.exists(p + '.index')
        ),
        key=checkpoint_step,
    )
    lines = [f'model_checkpoint_path: "{os.path.basename(latest)}"']
    lines += [f'all_model_checkpoint_paths: "{os.path.basename(p)}"' for p in older]
    text = '\n'.join(lines) + '\n'
    atomic_write_bytes(Path(directory) / STATE_FILE, lambda f: f.write(text.encode()))
    return True


def clean_stale_temp(directory):
    """Remove `ckpt-N_temp*` folders/files a save killed half-way left behind; returns them."""
    removed = []
    if not os.path.isdir(directory):
        return removed
    for name in os.listdir(directory):
        # state-file temporaries: atomic_write_bytes' `checkpoint.<random>.tmp`, and the
        # `checkpoint.tmp<pid>` of earlier versions
        if TEMP_RE.match(name) or re.match(rf'^{STATE_FILE}\.(tmp\d+|\w+\.tmp)$', name):
            path = os.path.join(directory, name)
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.remove(path)
                except OSError:
                    continue
            removed.append(path)
    return removed


def has_checkpoint_files(directory):
    return os.path.isdir(directory) and any(
        CKPT_RE.match(n) or n.startswith('ckpt-') or n == STATE_FILE for n in os.listdir(directory)
    )


def has_previous_run(logdir, config_name='config.json', subdirs=('checkpoints', 'best')):
    """True when `logdir` holds a run's config.json and checkpoint files (loadable or not)."""
    return os.path.exists(os.path.join(logdir, config_name)) and any(
        has_checkpoint_files(os.path.join(logdir, s)) for s in subdirs
    )


def move_previous_run(logdir):
    """--start_over: move the previous run's outputs into logdir/previous-<UTC time>/; returns
    that directory."""
    dest = os.path.join(logdir, time.strftime('previous-%Y%m%d-%H%M%S', time.gmtime()))
    n = 1
    while os.path.exists(dest):
        dest = f"{dest.rsplit('.', 1)[0] if n > 1 else dest}.{n}"
        n += 1
    os.makedirs(dest)
    for name in RUN_OUTPUTS + ('config.json',):
        src = os.path.join(logdir, name)
        if os.path.exists(src):
            os.replace(src, os.path.join(dest, name))
    return dest


def best_loss_on_disk(best_dir):
    """best_test_loss stored in the newest loadable checkpoint of `best_dir` (inf if none)."""
    from glow_tf.runs.checkpoint_format import read_state

    prefix, _ = find_loadable(best_dir)
    if prefix is None:
        return math.inf
    try:
        return float(read_state(prefix).get('best_test_loss', math.inf))
    except Exception:
        return math.inf


def check_logdir(logdir, flag='--logdir'):
    """Raise ConfigError unless `logdir` is (or can be made) a writable directory."""
    path = os.path.abspath(logdir)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(flag, f"{path} is a file, not a directory; pass a directory path")
    parent = path
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ConfigError(flag, f"{path}: {parent} is a file, so the directory cannot be created")
    if not os.access(parent, os.W_OK | os.X_OK):
        what = (
            'is not writable' if parent == path else f'cannot be created ({parent} is not writable)'
        )
        raise ConfigError(flag, f"{path} {what}; choose a writable --logdir")
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f'.write_test{os.getpid()}')
        with open(probe, 'w') as f:
            f.write('ok')
        os.remove(probe)
    except OSError as e:
        raise ConfigError(flag, f"{path} is not writable ({e.strerror or e})") from None
    for sub in ('checkpoints', 'best'):
        d = os.path.join(path, sub)
        if os.path.exists(d) and not os.access(d, os.W_OK | os.X_OK):
            raise ConfigError(
                flag, f"{d} is not writable; fix its permissions or choose another --logdir"
            )
    return path


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (disk full, permissions); the previous one is intact."""


def write_checkpoint(manager, step):
    """manager.save(step); on failure remove the partial ckpt-<step> files and raise
    CheckpointWriteError naming the directory, the error, the free space and the size of the
    previous checkpoint, which the failed write left intact (it is only replaced after success)."""
    directory = manager.directory
    previous = manager.latest_checkpoint
    try:
        return manager.save(checkpoint_number=step)
    except Exception as e:
        for name in os.listdir(directory):
            if name.startswith(f'ckpt-{step}.') or name.startswith(f'ckpt-{step}_temp'):
                path = os.path.join(directory, name)
                if previous and os.path.normpath(previous) == os.path.normpath(
                    os.path.join(directory, f'ckpt-{step}')
                ):
                    continue
                shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)
        free = shutil.disk_usage(directory).free
        need = sum(
            os.path.getsize(os.path.join(directory, n))
            for n in os.listdir(directory)
            if previous and n.startswith(os.path.basename(previous) + '.')
        )
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointWriteError(
            f"could not write checkpoint {os.path.join(directory, f'ckpt-{step}')}: {msg[:200]} "
            f"({free / 2**20:.1f} MiB free on that file system, a checkpoint takes "
            f"~{need / 2**20:.1f} MiB). The previous checkpoint "
            f"{previous or '(none)'} is intact; free space and run the same command to resume"
        ) from None
