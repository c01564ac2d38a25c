"""Training configuration: flags -> `TrainConfig` -> model / data / trainer. No globals.

`TrainConfig` holds exactly the command-line options (same names and meanings as the original
openai/glow `train.py`, plus a few additions), each declared once, here, as a dataclass field
whose metadata carries its help text, its `--help` group and, where argparse enforces them, its
choices; `glow_tf.cli.train.build_parser` generates the command line from these fields. Two
kinds of field:

    option(default, group, help)   a train.py flag `--name` (or `flag=`'--no_progress' ...)
    saved(default, why)            no flag: a fact of the model that `resolve` fills in and a
                                   run's config.json records (image_channels, n_classes,
                                   learntop_form)

`TrainConfig` is frozen. Each option is validated once, by `validate_flags` (ranges declared as
`at_least=`, choices, finite floats, and the cross-flag rules; the model's options by the
model's own checks, `Glow.check_arguments`, through `check_model_arguments`), and mapped onto
`glow_tf.Glow`'s arguments by `to_model_kwargs` (`MODEL_FLAGS` names the flag behind each
argument). What depends on the data source or on the number of workers comes from
`config.resolve(...)` (`glow_tf.runs.plan`): a new config with the data's image size, test-set
size, channels and classes filled in, and a separate `RunPlan` (per-worker batch sizes,
iterations per epoch, the Adam/Polyak beta2, notes); it raises `ConfigError` naming the
offending flag.

The resolved config is saved as `config.json` in the log directory, the plan's numbers beside it
for reference; `TrainConfig.load` reads it back (used by `glow_tf.runs.load.load_model`).
`TrainConfig.read_file` reads a JSON or YAML file of options (`train.py --config FILE`; a run's
own config.json works, the plan's numbers are ignored and recomputed).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from typing import List, Optional

from glow_tf.errors import ArgumentError, ConfigError
from glow_tf.fileio import atomic_write_bytes
from glow_tf.model.glow import Glow, check_weight_y
from glow_tf.model.memory import MEMORY_MODES
from glow_tf.model.preprocessing import check_n_bits
from glow_tf.model.shared_steps import POLICIES as SHARED_STEPS_POLICIES
from glow_tf.nets.conv_forms import POLICIES as CONV_FORM_POLICIES
from glow_tf.nets.precision import PRECISIONS
from glow_tf.runs.plan import RunPlan
from glow_tf.runs.plan import resolve as resolve_run

# The original's integer flags -> the model's names (one definition of the names, in the model).
# Literal maps: a layer's KINDS tuple may be reordered without changing what a flag value means.
PERMUTATIONS = {0: 'reverse', 1: 'shuffle', 2: '1x1'}
COUPLINGS = {0: 'additive', 1: 'affine'}
OPTIMIZERS = ('adamax', 'adam')
MAX_LR = 1.0  # Adam(ax) moves each weight by ~lr per step: beyond this a run only diverges

# `--help` groups, in the order they are printed.
GROUPS = ('run', 'data', 'model', 'optimisation', 'outputs')

# glow_tf.Glow's arguments (to_model_kwargs) -> the flag that sets each one.
MODEL_FLAGS = {
    'image_shape': '--image_size',
    'n_levels': '--n_levels',
    'depth': '--depth',
    'width': '--width',
    'flow_permutation': '--flow_permutation',
    'flow_coupling': '--flow_coupling',
    'lu_decomposed': '--lu',
    'learntop': '--learntop',
    'edge_bias': '--edge_bias',
    'learntop_form': None,  # not a flag: read from a run's config.json
    'n_classes': '--ycond',
    'memory_mode': '--memory_mode',
    'precision': '--precision',
    'conv_forms': '--conv_forms',
    'shared_steps': '--shared_steps',
    'seed': '--seed',
}


def option(default, group, help, *, flag=None, choices=None, at_least=None, hidden=False):
    """A dataclass field that is a train.py flag.

    Args:
        default: the flag's default (a list default is copied for each config).
        group: its `--help` group, one of GROUPS.
        help: its `--help` text (argparse %-formatting: write 10%% for 10%).
        flag: the flag when not `--<field name>`; a '--no_X' flag of a bool field stores False.
        choices: the allowed values, enforced by argparse and by `validate_flags` (config files).
        at_least: the smallest allowed value (checked by `validate_flags`).
        hidden: a testing flag left out of `--help`.
    """
    assert group in GROUPS, group
    metadata = dict(
        kind='option',
        group=group,
        help=help,
        flag=flag,
        choices=choices,
        at_least=at_least,
        hidden=hidden,
    )
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def saved(default, why):
    """A field without a flag: written to and read back from a run's config.json."""
    return field(default=default, metadata=dict(kind='saved', help=why))


def flag_name(f):
    """The command-line flag of an option field, e.g. '--lr' (or its metadata's `flag`)."""
    return f.metadata.get('flag') or '--' + f.name


def option_fields(cls=None):
    """The option fields of TrainConfig (the flags), in `--help` order within each group."""
    return [f for f in dataclasses.fields(cls or TrainConfig) if f.metadata.get('kind') == 'option']


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
        try:  # YAML 1.1 reads `5e-4` (no dot) as a string
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


@dataclass(frozen=True)
class TrainConfig:
    """The options of one training run (the train.py flags), frozen.

    Args (the fields; `train.py --help` shows each option's meaning and default):
        problem .. pmap: the data options (group 'data'); n_levels .. memory_mode: the model;
        n_batch_train .. n_sample: batches and optimisation; logdir, restore_path, inference,
        verbose, seed: the run; ckpt_every_steps .. progress: outputs; inject_nan_steps /
        inject_inf_lr_steps: hidden flags for the fault-injection tests.
        learntop_form: no flag; 'position' rebuilds runs saved before edge_bias existed.
        image_channels, n_classes: no flag; the data's, filled in by `resolve`.
    """

    # --- run
    logdir: str = option(
        './logs',
        'run',
        "Log/checkpoint directory. If it already holds checkpoints, training resumes from the "
        "latest one.",
    )
    restore_path: str = option(
        '',
        'run',
        "Warm start (fine-tuning): a log dir, its checkpoints/ dir or a ckpt-N prefix whose "
        "weights (--restore_weights) start a new run; step, epoch, optimiser, learning-rate "
        "warm-up and averages start fresh, and any data of the same image shape may be used. "
        "Ignored if --logdir has its own checkpoints (the run resumes from them). With "
        "--inference: the checkpoint to evaluate.",
    )
    restore_weights: str = option(
        'auto',
        'run',
        "Which weights of --restore_path start the run: 'raw', 'ema' (Polyak-averaged) or "
        "'auto' (the ones that scored better at that run's last test pass, as sample.py).",
        choices=('auto', 'raw', 'ema'),
    )
    inference: bool = option(
        False,
        'run',
        "Restore the checkpoint, evaluate test bits/dim with its raw and its Polyak-averaged "
        "weights, write sample grids and the encoded test set from the better of the two to "
        "LOGDIR/inference/, then exit.",
    )
    verbose: bool = option(
        False,
        'run',
        "Print a line per training step (loss, bits/dim, lr, step time) as the original did, "
        "besides every --log_every record.",
    )
    seed: int = option(
        0,
        'run',
        "Random seed (model init, data order, dequantisation noise; worker r uses a stream "
        "derived from (seed, r)).",
    )
    # --- data
    problem: str = option(
        'cifar10',
        'data',
        "The dataset: a problem registered in glow_tf.data.problems (docs/data.md).",
    )
    data_dir: str = option('', 'data', "Location of the data ('' = default).")
    category: str = option('', 'data', "LSUN category (e.g. bedroom).")
    image_size: int = option(
        -1, 'data', "Image size; -1 = the dataset's. Must be divisible by 2**n_levels."
    )
    n_train: int = option(
        50000,
        'data',
        "Train epoch size in images (an epoch is n_train images, as in the original; not a "
        "dataset limit).",
        at_least=1,
    )
    n_test: int = option(
        -1, 'data', "Number of test images for the full test pass (-1 = whole test split)."
    )
    dal: int = option(
        1,
        'data',
        "Data augmentation level, as the original: 0 none; 1 random shifts up to 10%% of height "
        "and width (mnist, cifar10); 2 for cifar10 adds horizontal flips, rotation up to 15 "
        "degrees, zoom 0.1 and shear 0.02 (mnist: shifts only). Other problems: none, as the "
        "original.",
    )
    skip_bad: bool = option(
        False,
        'data',
        "New: skip (and count) unreadable images in image folders / CelebA instead of stopping "
        "with an error.",
    )
    fmap: int = option(1, 'data', "Accepted for compatibility; unused (tf.data autotunes).")
    pmap: int = option(16, 'data', "Accepted for compatibility; unused.")
    # --- model
    n_levels: int = option(3, 'model', "Number of levels (L).")
    depth: int = option(32, 'model', "Flow steps per level (K).")
    width: int = option(512, 'model', "Channels of the coupling networks.")
    flow_permutation: int = option(
        2,
        'model',
        "0 = reverse (RealNVP), 1 = shuffle, 2 = invertible 1x1 conv (Glow).",
        choices=tuple(PERMUTATIONS),
    )
    flow_coupling: int = option(0, 'model', "0 = additive, 1 = affine.", choices=tuple(COUPLINGS))
    lu: bool = option(
        False,
        'model',
        "LU-decomposed invertible 1x1 convolutions (paper section 3.2; new flag).",
    )
    learntop: bool = option(
        False,
        'model',
        "Learn the top prior's mean/scale (as the original: a zero-initialised 3x3 convolution "
        "of a zero tensor).",
    )
    edge_bias: int = option(
        1,
        'model',
        "1: the original's edge-bias padding in every 3x3 convolution (zero padding plus an "
        "input channel marking the border); 0: plain zero padding.",
        choices=(0, 1),
    )
    ycond: bool = option(False, 'model', "Class-conditional prior (+ classifier head).")
    weight_y: float = option(
        0.0, 'model', "Weight of the classification loss in bits (needs --ycond)."
    )
    n_bits_x: int = option(8, 'model', "Bits per colour channel (1..8).")
    gradient_checkpointing: Optional[int] = option(
        None,
        'model',
        "1 = recompute each flow step's activations in the backward pass (saves memory, costs "
        "~1 extra forward); 0 = keep them. Default 1 (original) unless --memory_mode is given.",
        choices=(0, 1),
    )
    memory_mode: Optional[str] = option(
        None,
        'model',
        "New: 'plain' (store activations), 'checkpoint' (= --gradient_checkpointing 1), "
        "'reversible' (recompute activations by inverting the flow: memory independent of "
        "depth).",
        choices=MEMORY_MODES,
    )
    precision: str = option(
        'fp32',
        'model',
        "New: what the coupling networks compute in: 'fp32'; 'bf16' (bfloat16; pays off on CPUs "
        "with AVX512_BF16 or AMX, and on GPUs/TPUs); 'fp16' (float16 with dynamic loss scaling; "
        "GPUs); 'auto' (bf16 where the hardware computes bfloat16 natively: AVX512_BF16 / AMX "
        "CPUs, GPUs of compute capability 8.0+; else fp32). Weights, log-determinants, priors "
        "and the loss stay float32, so checkpoints move between precisions "
        "(docs/performance.md).",
        choices=PRECISIONS,
    )
    conv_forms: str = option(
        'auto',
        'model',
        "New: how the coupling networks' convolutions are computed: 'auto' times each shape's "
        "forms (oneDNN's conv, GEMM forms) on this machine the first time and caches the choice "
        "per CPU and TF version; 'gemm' and 'native' (tf.nn.conv2d) force one. Same function, "
        "different speed (docs/performance.md).",
        choices=CONV_FORM_POLICIES,
    )
    shared_steps: str = option(
        'inference',
        'model',
        "New: when each level's K flow steps run as K calls of one traced step function, which "
        "halves a compiled function's first call: 'inference' (test passes and sampling), "
        "'always' (the training step too: its first call takes about half as long, each later "
        "step 3-7 %% longer; for short runs and deep models) or 'never' "
        "(docs/performance.md).",
        choices=SHARED_STEPS_POLICIES,
    )
    # --- batches and optimisation
    n_batch_train: int = option(
        64,
        'optimisation',
        "Train batch per worker at the anchor resolution (see --anchor_size).",
        at_least=1,
    )
    n_batch_test: int = option(
        50,
        'optimisation',
        "Test batch per worker. If workers x batch does not divide --n_test, the largest "
        "smaller batch that does is used (with a note).",
        at_least=1,
    )
    n_batch_init: int = option(
        256,
        'optimisation',
        "Images per worker for the data-dependent init (statistics averaged over all workers).",
        at_least=1,
    )
    anchor_size: int = option(
        32,
        'optimisation',
        "(original) batch sizes are given at this resolution and scaled by "
        "(anchor/image_size)^2, e.g. 64 at 32px is 16 at 64px and 1 at 256px; 0 = use the "
        "batch flags literally.",
        at_least=0,
    )
    optimizer: str = option(
        'adamax', 'optimisation', "adamax (original default) or adam.", choices=OPTIMIZERS
    )
    lr: float = option(0.001, 'optimisation', "Base learning rate.")
    beta1: float = option(0.9, 'optimisation', "Adam(ax) beta1.")
    beta2: Optional[float] = option(
        None,
        'optimisation',
        "New: Adam(ax) beta2 and Polyak decay; default 1 - 1/(its per epoch * polyak_epochs) as "
        "in the original (config.json: the value used is resolved_beta2).",
    )
    polyak_epochs: float = option(
        1.0, 'optimisation', "Averaging horizon in epochs for Polyak (EMA) weights and beta2."
    )
    weight_decay: float = option(
        1.0, 'optimisation', "(original) multiplicative decay w <- wd * w per step; 1 = off."
    )
    lr_scale_by_size: bool = option(
        False,
        'optimisation',
        "New: multiply --lr by the number of workers (off, as in the original).",
    )
    epochs: int = option(1000000, 'optimisation', "Total number of training epochs.", at_least=1)
    epochs_warmup: float = option(
        10,
        'optimisation',
        "Linear LR warmup length in epochs (counted in images); 0 = none.",
        at_least=0,
    )
    epochs_full_valid: int = option(
        50, 'optimisation', "Epochs between full test-set evaluations.", at_least=1
    )
    epochs_full_sample: int = option(
        50,
        'optimisation',
        "Epochs between sample grids (also after epochs 1 and 10, as in the original); 0 = no "
        "sample grids (new).",
        at_least=0,
    )
    max_steps: int = option(
        0,
        'optimisation',
        "New: stop after this many global steps (0 = no limit); counts across resumes.",
        at_least=0,
    )
    max_nonfinite: int = option(
        5,
        'optimisation',
        "New: stop after this many consecutive non-finite steps (each is skipped, not applied).",
        at_least=1,
    )
    n_sample: int = option(1, 'optimisation', "Accepted for compatibility; unused.")
    # --- outputs
    ckpt_every_steps: int = option(
        0,
        'outputs',
        "New: also checkpoint every N steps (0 = only at the end of each epoch and of training).",
        at_least=0,
    )
    ckpt_every_minutes: float = option(
        10.0,
        'outputs',
        "New: also checkpoint when this many minutes passed since the last one, so a hard kill "
        "loses minutes, not an epoch (0 = off).",
        at_least=0,
    )
    start_over: bool = option(
        False,
        'outputs',
        "New: when --logdir holds a previous run none of whose checkpoints loads (which is "
        "refused otherwise), move its checkpoints and logs to LOGDIR/previous-<time>/ and "
        "start at step 0. Ignored while a checkpoint loads (safe in a requeued command).",
    )
    keep_checkpoints: int = option(
        3, 'outputs', "New: how many recent checkpoints to keep.", at_least=1
    )
    log_every: int = option(
        50,
        'outputs',
        "New: write a train.jsonl record and TensorBoard scalars every N steps (0 = once per "
        "epoch).",
        at_least=0,
    )
    test_at_init: bool = option(
        False, 'outputs', "New: evaluate the test set once after initialisation (step 0)."
    )
    progress: bool = option(
        True,
        'outputs',
        "New: turn off the progress bars and stage timings on stderr (shown by default; "
        "train.jsonl records are then also printed).",
        flag='--no_progress',
    )
    # --- testing only (fault injection): hidden flags, comma-separated step numbers
    inject_nan_steps: List[int] = option([], 'outputs', "", hidden=True)
    inject_inf_lr_steps: List[int] = option([], 'outputs', "", hidden=True)

    # --- not flags: facts of the model a run's config.json records (set by resolve)
    learntop_form: str = saved(
        'conv', "'position': the learned top prior of runs saved before edge_bias existed"
    )
    image_channels: int = saved(3, "channels of the data's images (the model's input)")
    n_classes: int = saved(0, "class labels the data has (the model uses them with --ycond)")

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
    def to_json(self, plan=None):
        """The options as JSON, with a RunPlan's numbers beside them (for reference) if given."""
        return json.dumps(
            {**self.to_dict(), **(plan.to_dict() if plan else {})}, indent=2, sort_keys=True
        )

    def save(self, path, plan=None):
        """config.json (the options, plus `plan`'s numbers). Atomic write: a crash never leaves
        a truncated file."""
        atomic_write_bytes(path, lambda f: f.write((self.to_json(plan) + '\n').encode()))

    @classmethod
    def load(cls, path):
        """Read a config.json; ConfigError naming the file if it is not one."""
        try:
            with open(path) as f:
                d = json.load(f)
            if not isinstance(d, dict):
                raise ValueError(f"a JSON {type(d).__name__}, not an object")
        except (OSError, ValueError) as e:
            raise ConfigError(
                str(path),
                f"not a readable training config ({e}); train.py writes "
                "it at the start of a run: restore it from a copy, or delete it to "
                "use the checkpoints without it",
            ) from None
        if 'edge_bias' not in d:
            # written before glow_tf followed the original's edge bias and learntop: rebuild the
            # model those runs trained
            d.update(edge_bias=0, learntop_form='position')
        names = set(cls.field_names())
        return cls(**{k: v for k, v in d.items() if k in names})

    # ------------------------------------------------------------------ config files
    # Fields resolve() derives from the data and the world size (`derived(...)`): a run's
    # config.json has them, a config file may carry them, and they are recomputed (so ignored
    # when read). Set below the class, from the fields' metadata.
    DERIVED = ()

    @classmethod
    def read_file(cls, path):
        """Options from a JSON or YAML file (`train.py --config FILE`) -> {field: value}.

        The file is a mapping of option names (the flags without `--`) to values, e.g. a run's own
        config.json; the plan numbers it records (DERIVED) are ignored. Raises
        ConfigError('--config', ...) naming the file and the key for an unreadable file, an
        unknown option or a wrong type.
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
        except Exception as e:  # json.JSONDecodeError, yaml.YAMLError
            fail(
                f"not valid {'YAML' if str(path).lower().endswith(('.yaml', '.yml')) else 'JSON'}"
                f" ({str(e).splitlines()[0]})"
            )
        if data is None:
            return {}
        if not isinstance(data, dict):
            fail(f"expected a mapping of option names to values, got a {type(data).__name__}")
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = sorted(k for k in data if k not in types and k not in cls.DERIVED)
        if unknown:
            fail(f"unknown option(s) {unknown} (options are the train.py flags without '--')")
        return {
            k: _coerce(v, types[k], lambda m, k=k: fail(f"{k}: {m}"))
            for k, v in data.items()
            if k not in cls.DERIVED
        }

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
            n_levels=int(self.n_levels),
            depth=int(self.depth),
            width=int(self.width),
            flow_permutation=PERMUTATIONS[int(self.flow_permutation)],
            flow_coupling=COUPLINGS[int(self.flow_coupling)],
            lu_decomposed=bool(self.lu),
            learntop=bool(self.learntop),
            edge_bias=bool(self.edge_bias),
            learntop_form=self.learntop_form,
            n_classes=int(self.n_classes) if self.ycond else 0,
            memory_mode=self.resolved_memory_mode,
            precision=self.precision,
            conv_forms=self.conv_forms,
            shared_steps=self.shared_steps,
            seed=int(self.seed),
        )

    # ------------------------------------------------------------------ validation
    def validate_flags(self):
        """Checks that need neither the data nor the world size. Raises ConfigError naming the
        flag. Returns self."""
        for f in option_fields():
            value, flag = getattr(self, f.name), flag_name(f)
            choices, at_least = f.metadata['choices'], f.metadata['at_least']
            if f.type in ('float', 'Optional[float]') and value is not None:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ConfigError(flag, f"must be a finite number, got {value!r}")
                if not math.isfinite(value):
                    raise ConfigError(flag, f"must be a finite number, got {value!r}")
            if choices is not None and value is not None and value not in choices:
                shown = ', '.join(map(str, choices))
                raise ConfigError(flag, f"must be one of {shown}, got {value!r}")
            if at_least is not None and value < at_least:
                raise ConfigError(flag, f"must be >= {at_least}, got {value}")
        if self.lu and self.flow_permutation != 2:
            raise ConfigError(
                '--lu',
                "LU decomposition applies only to --flow_permutation 2 (invertible 1x1), got "
                f"--flow_permutation {self.flow_permutation}",
            )
        if self.gradient_checkpointing not in (None, 0, 1):
            raise ConfigError(
                '--gradient_checkpointing', f"must be 0 or 1, got {self.gradient_checkpointing}"
            )
        if self.memory_mode is not None and self.gradient_checkpointing is not None:
            if bool(self.gradient_checkpointing) != (self.memory_mode != 'plain'):
                raise ConfigError(
                    '--gradient_checkpointing',
                    f"{self.gradient_checkpointing} contradicts --memory_mode "
                    f"{self.memory_mode}; give only one",
                )
        try:
            check_n_bits(self.n_bits_x)  # the model's own check
        except ArgumentError as e:
            raise ConfigError('--n_bits_x', str(e)) from None
        if not 0 < self.lr <= MAX_LR:
            raise ConfigError(
                '--lr',
                f"must be in (0, {MAX_LR:g}], got {self.lr:g} (an Adam/Adamax step size; the "
                "paper uses 1e-3, larger ones diverge)",
            )
        if not 0 <= self.beta1 < 1:
            raise ConfigError('--beta1', f"must be in [0, 1), got {self.beta1}")
        if self.beta2 is not None and not 0 <= self.beta2 < 1:
            raise ConfigError('--beta2', f"must be in [0, 1), got {self.beta2}")
        if not self.polyak_epochs > 0:
            raise ConfigError('--polyak_epochs', f"must be > 0, got {self.polyak_epochs}")
        if not 0 < self.weight_decay <= 1:
            raise ConfigError(
                '--weight_decay',
                "is a multiplicative decay in (0, 1] (1 = off, as in the original), got "
                f"{self.weight_decay}",
            )
        try:
            check_weight_y(self.weight_y, 1 if self.ycond else 0)  # the model's own check
        except ArgumentError as e:
            raise ConfigError('--weight_y', str(e)) from None
        if self.image_size != -1 and self.image_size < 1:
            raise ConfigError(
                '--image_size', f"must be -1 (dataset's size) or >= 1, got {self.image_size}"
            )
        self.check_model_arguments(self.image_size if self.image_size > 0 else None)
        if self.n_test != -1 and self.n_test < 1:
            raise ConfigError('--n_test', f"must be -1 (whole test set) or >= 1, got {self.n_test}")
        if self.dal not in (0, 1, 2):
            raise ConfigError('--dal', f"must be 0, 1 or 2, got {self.dal}")
        if self.inference and not (self.restore_path or self.logdir):
            raise ConfigError('--inference', "needs --restore_path or a --logdir with checkpoints")
        return self

    def check_model_arguments(self, image_size=None):
        """The model flags through the model's own checks (`Glow.check_arguments`, so each is
        validated in one place); an invalid value is a ConfigError naming its flag (MODEL_FLAGS).
        `image_size` None: the image checks wait for `resolve`, which knows the data's size."""
        try:
            Glow.check_arguments(
                image_shape=None
                if image_size is None
                else (image_size, image_size, self.image_channels),
                n_levels=self.n_levels,
                depth=self.depth,
                width=self.width,
                flow_permutation=PERMUTATIONS[int(self.flow_permutation)],
                flow_coupling=COUPLINGS[int(self.flow_coupling)],
                memory_mode=self.resolved_memory_mode,
                learntop_form=self.learntop_form,
            )
        except ArgumentError as e:
            raise ConfigError(MODEL_FLAGS[e.argument] or e.argument, str(e)) from None

    def resolve(self, image_shape, n_test_available, n_classes, world_size=1, learntop_form=None):
        """(resolved TrainConfig, RunPlan): this config on the data and the workers
        (`glow_tf.runs.plan.resolve`, which says what each holds). Neither changes afterwards."""
        return resolve_run(
            self, image_shape, n_test_available, n_classes, world_size, learntop_form
        )


# The RunPlan's numbers: a run's config.json has these names beside the flags (for reference);
# reading a config ignores them.
TrainConfig.DERIVED = tuple(RunPlan.field_names())
