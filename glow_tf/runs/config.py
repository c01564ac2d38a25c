"""Training configuration: flags -> `TrainConfig` -> model / data / trainer. No globals.

`TrainConfig` holds exactly the command-line options (same names and meanings as the original
openai/glow `train.py`, plus a few additions). Values that depend on the data source or on the
number of workers (image size, test-set size, per-worker batch sizes, iterations per epoch, the
Adam/Polyak beta2) are *derived* by `TrainConfig.resolve(...)`, which also validates the
combination and raises `ConfigError` naming the offending flag.

The resolved config is saved as `config.json` in the log directory; `TrainConfig.load` reads it
back (used by `glow_tf.runs.load.load_model`).
`TrainConfig.read_file` reads a JSON or YAML file of options (`train.py --config FILE`; a run's
own config.json works, its derived fields are recomputed).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from typing import List, Optional

from glow_tf.flows.coupling import Coupling
from glow_tf.fileio import atomic_write_bytes
from glow_tf.flows.flow_step import PERMUTATIONS as PERMUTATION_NAMES
from glow_tf.model.glow import MEMORY_MODES

# The original's integer flags -> the model's names (one definition of the names, in the model).
PERMUTATIONS = dict(enumerate(PERMUTATION_NAMES))     # 0 reverse, 1 shuffle, 2 1x1
COUPLINGS = dict(enumerate(Coupling.KINDS))           # 0 additive, 1 affine
OPTIMIZERS = ('adamax', 'adam')
MAX_LR = 1.0   # Adam(ax) moves each weight by ~lr per step: beyond this a run only diverges


class ConfigError(ValueError):
    """An invalid or inconsistent option. `flag` is the command-line flag to blame."""

    def __init__(self, flag, message):
        self.flag = flag
        super().__init__(f"{flag}: {message}")


def _coerce(value, type_name, fail):
    """A config-file value checked against a field's annotation (as a string: 'int',
    'Optional[float]', 'List[int]', ...); integral floats are accepted for ints, and numbers
    written as strings for numbers."""
    if type_name.startswith('Optional['):
        return None if value is None else _coerce(value, type_name[9:-1], fail)
    if type_name == 'List[int]':
        if not isinstance(value, list):
            fail(f"expected a list of integers, got {value!r}")
        return [_coerce(v, 'int', fail) for v in value]
    if type_name == 'bool':
        if not isinstance(value, bool):
            fail(f"expected true or false, got {value!r}")
        return value
    if type_name in ('int', 'float') and isinstance(value, str):
        try:   # YAML 1.1 reads `5e-4` (no dot) as a string
            value = float(value) if type_name == 'float' else int(value)
        except ValueError:
            pass
    if type_name == 'int':
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            fail(f"expected an integer, got {value!r}")
        return value
    if type_name == 'float':
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(f"expected a number, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        fail(f"expected a string, got {value!r}")
    return value


@dataclass
class TrainConfig:
    # --- data
    problem: str = 'cifar10'
    data_dir: str = ''
    category: str = ''
    image_size: int = -1
    n_train: int = 50000
    n_test: int = -1
    dal: int = 1
    skip_bad: bool = False
    # --- model
    n_levels: int = 3
    depth: int = 32
    width: int = 512
    flow_permutation: int = 2
    flow_coupling: int = 0
    lu: bool = False
    learntop: bool = False
    edge_bias: int = 1
    learntop_form: str = 'conv'                    # 'position': runs saved before edge_bias existed
    ycond: bool = False
    weight_y: float = 0.0
    n_bits_x: int = 8
    gradient_checkpointing: Optional[int] = None   # None: original default (1) unless --memory_mode
    memory_mode: Optional[str] = None              # None: from --gradient_checkpointing
    # --- batches
    n_batch_train: int = 64
    n_batch_test: int = 50
    n_batch_init: int = 256
    anchor_size: int = 32
    # --- optimisation
    optimizer: str = 'adamax'
    lr: float = 0.001
    beta1: float = 0.9
    beta2: Optional[float] = None                  # None: 1 - 1/(train_its * polyak_epochs)
    polyak_epochs: float = 1.0
    weight_decay: float = 1.0
    lr_scale_by_size: bool = False
    epochs: int = 1000000
    epochs_warmup: float = 10
    epochs_full_valid: int = 50
    epochs_full_sample: int = 50
    max_steps: int = 0
    max_nonfinite: int = 5
    seed: int = 0
    # --- outputs
    logdir: str = './logs'
    restore_path: str = ''
    inference: bool = False
    ckpt_every_steps: int = 0
    ckpt_every_minutes: float = 10.0
    start_over: bool = False
    keep_checkpoints: int = 3
    log_every: int = 50
    test_at_init: bool = False
    progress: bool = True
    verbose: bool = False
    # --- accepted for command-line compatibility with the original; no effect
    fmap: int = 1
    pmap: int = 16
    n_sample: int = 1
    # --- testing only
    inject_nan_steps: List[int] = field(default_factory=list)
    inject_inf_lr_steps: List[int] = field(default_factory=list)

    # --- derived by resolve(); saved to config.json for reference
    world_size: int = 1
    n_classes: int = 0
    image_channels: int = 3
    local_batch_train: int = 0
    local_batch_test: int = 0
    local_batch_init: int = 0
    train_its: int = 0
    full_test_its: int = 0
    resolved_beta2: float = 0.0

    # ------------------------------------------------------------------ construction
    @classmethod
    def field_names(cls):
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, d):
        names = set(cls.field_names())
        unknown = sorted(k for k in d if k not in names)
        if unknown:
            raise ConfigError('--' + unknown[0], f"unknown option(s) {unknown}")
        return cls(**{k: v for k, v in d.items()})

    def to_dict(self):
        return dataclasses.asdict(self)

    def replace(self, **kw):
        return dataclasses.replace(self, **kw)

    # ------------------------------------------------------------------ JSON
    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def save(self, path):
        """Atomic write: a crash never leaves a truncated config.json."""
        atomic_write_bytes(path, lambda f: f.write((self.to_json() + '\n').encode()))

    @classmethod
    def load(cls, path):
        """Read a config.json; ConfigError naming the file if it is not one."""
        try:
            with open(path) as f:
                d = json.load(f)
            if not isinstance(d, dict):
                raise ValueError(f"a JSON {type(d).__name__}, not an object")
        except (OSError, ValueError) as e:
            raise ConfigError(str(path), f"not a readable training config ({e}); train.py writes "
                              "it at the start of a run: restore it from a copy, or delete it to "
                              "use the checkpoints without it") from None
        if 'edge_bias' not in d:
            # written before glow_tf followed the original's edge bias and learntop: rebuild the
            # model those runs trained
            d.update(edge_bias=0, learntop_form='position')
        names = set(cls.field_names())
        return cls(**{k: v for k, v in d.items() if k in names})

    # ------------------------------------------------------------------ config files
    # Fields resolve() derives from the data and the world size: a run's config.json has them,
    # a config file may carry them, and they are recomputed (so ignored when read).
    DERIVED = ('world_size', 'n_classes', 'image_channels', 'local_batch_train', 'local_batch_test',
               'local_batch_init', 'train_its', 'full_test_its', 'resolved_beta2')

    @classmethod
    def read_file(cls, path):
        """Options from a JSON or YAML file (`train.py --config FILE`) -> {field: value}.

        The file is a mapping of option names (the flags without `--`) to values, e.g. a run's own
        config.json; derived fields (DERIVED) are ignored. Raises ConfigError('--config', ...)
        naming the file and the key for an unreadable file, an unknown option or a wrong type.
        """
        def fail(msg):
            raise ConfigError('--config', f"{path}: {msg}")
        try:
            with open(os.path.expanduser(path)) as f:
                text = f.read()
        except OSError as e:
            fail(f"cannot read it ({e.strerror or e})")
        try:
            if str(path).lower().endswith(('.yaml', '.yml')):
                import yaml
                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
        except Exception as e:   # json.JSONDecodeError, yaml.YAMLError
            fail(f"not valid {'YAML' if str(path).lower().endswith(('.yaml', '.yml')) else 'JSON'}"
                 f" ({str(e).splitlines()[0]})")
        if data is None:
            return {}
        if not isinstance(data, dict):
            fail(f"expected a mapping of option names to values, got a {type(data).__name__}")
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = sorted(k for k in data if k not in types)
        if unknown:
            fail(f"unknown option(s) {unknown} (options are the train.py flags without '--')")
        return {k: _coerce(v, types[k], lambda m, k=k: fail(f"{k}: {m}"))
                for k, v in data.items() if k not in cls.DERIVED}

    # ------------------------------------------------------------------ model kwargs
    @property
    def resolved_memory_mode(self):
        if self.memory_mode is not None:
            return self.memory_mode
        gc = 1 if self.gradient_checkpointing is None else self.gradient_checkpointing
        return 'checkpoint' if gc else 'plain'

    def to_model_kwargs(self):
        """Keyword arguments of `glow_tf.Glow` (needs a resolved config: image size, classes)."""
        if self.image_size <= 0:
            raise ConfigError('--image_size', "config is not resolved (image_size is -1)")
        return dict(
            image_shape=(int(self.image_size), int(self.image_size), int(self.image_channels)),
            n_levels=int(self.n_levels), depth=int(self.depth), width=int(self.width),
            flow_permutation=PERMUTATIONS[int(self.flow_permutation)],
            flow_coupling=COUPLINGS[int(self.flow_coupling)],
            lu_decomposed=bool(self.lu), learntop=bool(self.learntop),
            edge_bias=bool(self.edge_bias), learntop_form=self.learntop_form,
            n_classes=int(self.n_classes) if self.ycond else 0,
            memory_mode=self.resolved_memory_mode, seed=int(self.seed))

    # ------------------------------------------------------------------ validation
    def validate_flags(self):
        """Checks that need neither the data nor the world size. Raises ConfigError."""
        if self.flow_permutation not in PERMUTATIONS:
            raise ConfigError('--flow_permutation', f"must be 0 (reverse), 1 (shuffle) or 2 "
                              f"(invertible 1x1), got {self.flow_permutation}")
        if self.flow_coupling not in COUPLINGS:
            raise ConfigError('--flow_coupling',
                              f"must be 0 (additive) or 1 (affine), got {self.flow_coupling}")
        if self.lu and self.flow_permutation != 2:
            raise ConfigError('--lu', "LU decomposition applies only to --flow_permutation 2 "
                              f"(invertible 1x1), got --flow_permutation {self.flow_permutation}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError('--optimizer', f"must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.memory_mode is not None and self.memory_mode not in MEMORY_MODES:
            raise ConfigError('--memory_mode',
                              f"must be one of {MEMORY_MODES}, got {self.memory_mode!r}")
        if self.gradient_checkpointing not in (None, 0, 1):
            raise ConfigError('--gradient_checkpointing',
                              f"must be 0 or 1, got {self.gradient_checkpointing}")
        if self.memory_mode is not None and self.gradient_checkpointing is not None:
            if bool(self.gradient_checkpointing) != (self.memory_mode != 'plain'):
                raise ConfigError('--gradient_checkpointing', f"{self.gradient_checkpointing} "
                                  f"contradicts --memory_mode {self.memory_mode}; give only one")
        for name in ('lr', 'beta1', 'beta2', 'polyak_epochs', 'weight_decay', 'weight_y',
                     'epochs_warmup', 'ckpt_every_minutes'):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise ConfigError('--' + name, f"must be a finite number, got {value!r}")
        positive = ['n_levels', 'depth', 'width', 'n_batch_train', 'n_batch_test',
                    'n_batch_init', 'n_train', 'epochs', 'epochs_full_valid',
                    'max_nonfinite', 'keep_checkpoints']
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError('--' + name, f"must be >= 1, got {getattr(self, name)}")
        for name in ['max_steps', 'ckpt_every_steps', 'ckpt_every_minutes', 'log_every', 'anchor_size', 'epochs_warmup',
                     'epochs_full_sample']:
            if getattr(self, name) < 0:
                raise ConfigError('--' + name, f"must be >= 0, got {getattr(self, name)}")
        if not 1 <= self.n_bits_x <= 8:
            raise ConfigError('--n_bits_x', f"must be in 1..8, got {self.n_bits_x}")
        if not 0 < self.lr <= MAX_LR:
            raise ConfigError('--lr', f"must be in (0, {MAX_LR:g}], got {self.lr:g} (an Adam/Adamax "
                              "step size; the paper uses 1e-3, larger ones diverge)")
        if not 0 <= self.beta1 < 1:
            raise ConfigError('--beta1', f"must be in [0, 1), got {self.beta1}")
        if self.beta2 is not None and not 0 <= self.beta2 < 1:
            raise ConfigError('--beta2', f"must be in [0, 1), got {self.beta2}")
        if not self.polyak_epochs > 0:
            raise ConfigError('--polyak_epochs', f"must be > 0, got {self.polyak_epochs}")
        if not 0 < self.weight_decay <= 1:
            raise ConfigError('--weight_decay', "is a multiplicative decay in (0, 1] (1 = off, "
                              f"as in the original), got {self.weight_decay}")
        if self.weight_y < 0:
            raise ConfigError('--weight_y', f"must be >= 0, got {self.weight_y}")
        if self.weight_y > 0 and not self.ycond:
            raise ConfigError('--weight_y', f"{self.weight_y} needs --ycond (the class head "
                              "exists only in a class-conditional model)")
        if self.image_size != -1 and self.image_size < 1:
            raise ConfigError('--image_size', f"must be -1 (dataset's size) or >= 1, "
                              f"got {self.image_size}")
        if self.image_size > 0:
            self._check_image_size(self.image_size)
        if self.n_test != -1 and self.n_test < 1:
            raise ConfigError('--n_test', f"must be -1 (whole test set) or >= 1, got {self.n_test}")
        if self.edge_bias not in (0, 1):
            raise ConfigError('--edge_bias', f"must be 0 or 1, got {self.edge_bias}")
        if self.dal not in (0, 1, 2):
            raise ConfigError('--dal', f"must be 0, 1 or 2, got {self.dal}")
        if self.inference and not (self.restore_path or self.logdir):
            raise ConfigError('--inference', "needs --restore_path or a --logdir with checkpoints")
        return self

    def _check_image_size(self, size):
        f = 2 ** self.n_levels
        if size % f:
            raise ConfigError('--image_size', f"{size} is not divisible by 2**n_levels = {f} "
                              f"(--n_levels {self.n_levels}); each level halves the size")

    def resolve(self, image_shape, n_test_available, n_classes, world_size=1):
        """Fill the derived fields from the data source and the world size, and validate them.

        image_shape: (H, W, C) the data source delivers; n_test_available: test examples it has.
        Returns a new, resolved TrainConfig; its `notes` (not a field) list the adjustments made,
        e.g. a test batch reduced so that the test pass splits into whole batches.
        """
        self.validate_flags()
        c = self.replace(world_size=int(world_size), n_classes=int(n_classes),
                         image_channels=int(image_shape[2]))
        h, w = int(image_shape[0]), int(image_shape[1])
        if h != w:
            raise ConfigError('--image_size', f"images must be square, data gives {h}x{w}")
        if c.image_size == -1:
            c.image_size = h
        elif c.image_size != h:
            raise ConfigError('--image_size', f"{c.image_size} requested but the data source "
                              f"delivers {h}x{w}")
        c._check_image_size(c.image_size)
        if c.ycond and c.n_classes < 1:
            raise ConfigError('--ycond', f"problem {c.problem!r} has no class labels")
        if c.n_test == -1:
            c.n_test = int(n_test_available)
        elif c.n_test > n_test_available:
            raise ConfigError('--n_test', f"{c.n_test} > {n_test_available} test examples "
                              f"available for --problem {c.problem}")

        # Per-worker batch sizes. Like the original, the batch flags are per worker at the
        # "anchor" resolution (32x32): at resolution r the batch is n * anchor^2 / r^2, so the
        # published 64x64 / 256x256 commands use batches that fit in GPU memory.
        # --anchor_size 0 turns the rescaling off (batch sizes taken literally).
        if c.anchor_size:
            c.local_batch_train = int(c.n_batch_train * c.anchor_size ** 2 // c.image_size ** 2)
            c.local_batch_init = int(c.n_batch_init * c.anchor_size ** 2 // c.image_size ** 2)
            # original: round the test batch down to the largest divisor of n_batch_test that
            # is <= the train batch (50 -> 50, 25, 10, 5, 2, 1).
            cap = max(1, min(c.n_batch_test, c.local_batch_train))
            c.local_batch_test = max(d for d in range(1, cap + 1) if c.n_batch_test % d == 0)
        else:
            c.local_batch_train = c.n_batch_train
            c.local_batch_init = c.n_batch_init
            c.local_batch_test = c.n_batch_test
        if c.local_batch_train < 1:
            raise ConfigError('--n_batch_train', f"{c.n_batch_train} at --anchor_size "
                              f"{c.anchor_size} gives a per-worker batch of 0 at image size "
                              f"{c.image_size}; raise it or pass --anchor_size 0")
        if c.local_batch_init < 1:
            raise ConfigError('--n_batch_init', f"{c.n_batch_init} at --anchor_size "
                              f"{c.anchor_size} gives an init batch of 0 at image size "
                              f"{c.image_size}; raise it or pass --anchor_size 0")
        c.notes = []   # human-readable adjustments made here (the trainer prints them)
        per_round = c.local_batch_test * c.world_size
        if c.n_test % per_round:
            # The full test pass covers every test image exactly once: use the largest
            # per-worker batch up to the requested one that splits the test set evenly.
            fits = [b for b in range(c.local_batch_test, 0, -1) if c.n_test % (b * c.world_size) == 0]
            if not fits:
                hint = c.n_test - c.n_test % c.world_size
                raise ConfigError(
                    '--n_test',
                    f"the test set (--n_test {c.n_test}) does not split into whole batches "
                    f"across {c.world_size} workers (no per-worker batch divides it). Pass "
                    f"--n_test {hint} (a multiple of the number of workers)")
            c.notes.append(
                f"--n_batch_test: per-worker test batch {c.local_batch_test} x {c.world_size} "
                f"worker(s) does not divide --n_test {c.n_test}; using test batch {fits[0]} "
                f"({c.n_test // (fits[0] * c.world_size)} batches per worker). Pass --n_test "
                f"{c.n_test - c.n_test % per_round} to keep batch {c.local_batch_test}")
            c.local_batch_test = fits[0]
            per_round = c.local_batch_test * c.world_size
        c.full_test_its = c.n_test // per_round
        # An "epoch" is n_train images at the anchor batch size (original get_its()).
        c.train_its = int(math.ceil(c.n_train / float(c.n_batch_train * c.world_size)))
        if c.beta2 is not None:
            c.resolved_beta2 = float(c.beta2)
        else:
            c.resolved_beta2 = max(0.0, 1.0 - 1.0 / (c.train_its * c.polyak_epochs))
        return c

    # ------------------------------------------------------------------ schedule
    def learning_rate(self, n_processed):
        """Original warmup: lr * min(1, n_processed / (n_train * epochs_warmup)), where
        n_processed counts images (all workers, anchor batch) of the *applied* steps before this
        one: steps skipped as non-finite or rolled back do not advance the warm-up."""
        base = self.lr * (self.world_size if self.lr_scale_by_size else 1)
        if self.epochs_warmup <= 0:
            return base
        return base * min(1.0, n_processed / (self.n_train * float(self.epochs_warmup)))
