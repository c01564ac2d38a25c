"""What a run derives from its flags, its data and its workers: `RunPlan`, made by `resolve`.

`resolve(config, image_shape, n_test_available, n_classes, world_size)` is the one place where a
`TrainConfig` (the flags, frozen) meets the data source and the world size. It returns

    config  the same flags with what the data fixes filled in -- --image_size -1 and --n_test -1
            become the data's size and test-set size; image_channels, n_classes (and, for a
            resumed run saved before edge bias, learntop_form) are the model's facts -- a new
            frozen TrainConfig, from which the model is built and config.json is written;
    plan    a frozen `RunPlan`: per-worker batch sizes, iterations per epoch and per test pass,
            the Adam / Polyak beta2, and `notes`, the adjustments it made (the trainer prints
            them).

Nothing changes either afterwards. Like the original, the batch flags are per worker at the
"anchor" resolution (32x32): at resolution r a batch is n * anchor^2 / r^2, so the published
64x64 / 256x256 commands fit in GPU memory (--anchor_size 0 takes them literally). An "epoch" is
n_train images at the anchor batch size (the original's get_its()), and

    beta2 = 1 - 1 / (train_its * polyak_epochs)        (--beta2 overrides it)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Tuple

from glow_tf.errors import ConfigError


@dataclass(frozen=True)
class RunPlan:
    """The derived record of one run (see the module docstring).

    Args:
        world_size: number of workers (Horovod processes).
        local_batch_train / local_batch_test / local_batch_init: per-worker batch sizes.
        train_its: training iterations per epoch; full_test_its: test batches per worker in a
            full test pass (every test image exactly once).
        resolved_beta2: Adam's / Adamax's beta2, also the Polyak (EMA) decay.
        notes: human-readable adjustments `resolve` made (e.g. a smaller test batch).
    """

    world_size: int = 1
    local_batch_train: int = 0
    local_batch_test: int = 0
    local_batch_init: int = 0
    train_its: int = 0
    full_test_its: int = 0
    resolved_beta2: float = 0.0
    notes: Tuple[str, ...] = ()

    @classmethod
    def field_names(cls):
        return [f.name for f in dataclasses.fields(cls)]

    def to_dict(self):
        """The numbers, for config.json (saved beside the flags for reference; not the notes)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != 'notes'}


def resolve(config, image_shape, n_test_available, n_classes, world_size=1, learntop_form=None):
    """(resolved TrainConfig, RunPlan) for `config` on this data and these workers.

    image_shape: (H, W, C) the data source delivers; n_test_available: test examples it has;
    n_classes: its number of labels; learntop_form: the form a resumed run's checkpoint needs
    (None: the config's). Validates the combination; ConfigError naming the flag.
    """
    config.validate_flags()
    h, w, channels = (int(d) for d in image_shape)
    if h != w:
        raise ConfigError('--image_size', f"images must be square, data gives {h}x{w}")
    if config.image_size not in (-1, h):
        raise ConfigError(
            '--image_size', f"{config.image_size} requested but the data source delivers {h}x{w}"
        )
    if config.n_test > n_test_available:
        raise ConfigError(
            '--n_test',
            f"{config.n_test} > {n_test_available} test examples "
            f"available for --problem {config.problem}",
        )
    c = config.replace(
        image_size=h,
        n_test=int(n_test_available) if config.n_test == -1 else config.n_test,
        image_channels=channels,
        n_classes=int(n_classes),
        learntop_form=learntop_form or config.learntop_form,
    )
    c.check_model_arguments(c.image_size)
    if c.ycond and c.n_classes < 1:
        raise ConfigError('--ycond', f"problem {c.problem!r} has no class labels")

    batch_train, batch_init, batch_test = _local_batches(c)
    notes = []
    batch_test = _test_batch_that_divides(c, batch_test, int(world_size), notes)
    train_its = int(math.ceil(c.n_train / float(c.n_batch_train * world_size)))
    if c.beta2 is not None:
        beta2 = float(c.beta2)
    else:
        beta2 = max(0.0, 1.0 - 1.0 / (train_its * c.polyak_epochs))
    plan = RunPlan(
        world_size=int(world_size),
        local_batch_train=batch_train,
        local_batch_test=batch_test,
        local_batch_init=batch_init,
        train_its=train_its,
        full_test_its=c.n_test // (batch_test * int(world_size)),
        resolved_beta2=beta2,
        notes=tuple(notes),
    )
    return c, plan


def _local_batches(c):
    """Per-worker (train, init, test) batches at the config's image size (anchor rule)."""
    if c.anchor_size:
        train = int(c.n_batch_train * c.anchor_size**2 // c.image_size**2)
        init = int(c.n_batch_init * c.anchor_size**2 // c.image_size**2)
        # original: round the test batch down to the largest divisor of n_batch_test that is
        # <= the train batch (50 -> 50, 25, 10, 5, 2, 1).
        cap = max(1, min(c.n_batch_test, train))
        test = max(d for d in range(1, cap + 1) if c.n_batch_test % d == 0)
    else:
        train, init, test = c.n_batch_train, c.n_batch_init, c.n_batch_test
    for flag, value, n in (
        ('--n_batch_train', train, c.n_batch_train),
        ('--n_batch_init', init, c.n_batch_init),
    ):
        if value < 1:
            what = 'per-worker batch' if flag == '--n_batch_train' else 'init batch'
            raise ConfigError(
                flag,
                f"{n} at --anchor_size {c.anchor_size} gives a {what} of 0 at image size "
                f"{c.image_size}; raise it or pass --anchor_size 0",
            )
    return train, init, test


def _test_batch_that_divides(c, batch, world_size, notes):
    """The full test pass covers every test image exactly once: the largest per-worker batch up
    to the requested one that splits the test set evenly (a note when it is smaller)."""
    per_round = batch * world_size
    if c.n_test % per_round == 0:
        return batch
    fits = [b for b in range(batch, 0, -1) if c.n_test % (b * world_size) == 0]
    if not fits:
        hint = c.n_test - c.n_test % world_size
        raise ConfigError(
            '--n_test',
            f"the test set (--n_test {c.n_test}) does not split into whole batches across "
            f"{world_size} workers (no per-worker batch divides it). Pass --n_test {hint} (a "
            "multiple of the number of workers)",
        )
    notes.append(
        f"--n_batch_test: per-worker test batch {batch} x {world_size} worker(s) does not divide "
        f"--n_test {c.n_test}; using test batch {fits[0]} ({c.n_test // (fits[0] * world_size)} "
        f"batches per worker). Pass --n_test {c.n_test - c.n_test % per_round} to keep batch "
        f"{batch}"
    )
    return fits[0]
