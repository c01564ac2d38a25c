"""`train.py` / `glow-train`: train Glow, on one process or under `horovodrun -np N`.

The flags of the original openai/glow train.py keep their names and meanings, so its published
commands run unchanged (e.g. `--n_level 3` still works: argparse accepts unambiguous prefixes).
`--config FILE` reads the options from a JSON or YAML file (a run's own config.json works);
flags given on the command line override it. See docs/training.md for launch recipes and the
paper's hyper-parameters.

Exit status: 0 done; 2 bad flags / config / data / log dir, or a checkpoint that cannot be written (disk
full; the message names the flag or file); 3 training diverged (too many consecutive non-finite
losses; the last good checkpoint is left intact); 143 / 130 stopped by SIGTERM / SIGINT after
writing a checkpoint (run the same command to resume). See docs/reliability.md.
"""

import argparse
import os
import sys

from glow_tf.cli import HelpFormatter, launcher_rank, prog_name
from glow_tf.runs.config import ConfigError, TrainConfig

EXAMPLES = """examples:
  # a small Glow on MNIST (the README's main job: about 5 minutes on 2 CPU cores)
  train.py --problem mnist --n_levels 3 --depth 8 --width 64 --n_batch_train 32 --n_train 6400 \\
      --epochs 3 --epochs_warmup 0.5 --lr 0.002 --gradient_checkpointing 0 --logdir logs/quickstart

  # the paper's CIFAR-10 model (affine coupling, learned top prior), original flags
  train.py --problem cifar10 --image_size 32 --n_level 3 --depth 32 --flow_permutation 2 \\
      --flow_coupling 1 --seed 0 --learntop --lr 0.001 --n_bits_x 8 --logdir runs/cifar10

  # the same on 8 workers (1 process per GPU; flags are per worker, as in the original)
  horovodrun -np 8 python train.py --problem cifar10 --n_level 3 --depth 32 --flow_coupling 1 \\
      --learntop --logdir runs/cifar10-8gpu

  # repeat a run from its config.json, in a new log dir; a YAML file with an override
  train.py --config runs/cifar10/config.json --logdir runs/cifar10-again
  train.py --config celeba.yaml --lr 0.002

  # resume: run the same command again (the log dir holds checkpoints); evaluate a run only
  train.py --config runs/cifar10/config.json --inference

Outputs in --logdir: config.json, train.jsonl / test.jsonl, checkpoints/ (latest) and best/,
samples/*.png, tensorboard/ (scalars every --log_every steps, hyper-parameters, config).
"""


def _int_list(text):
    try:
        return [int(t) for t in text.replace(' ', '').split(',') if t]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")


def build_parser():
    d = TrainConfig()
    p = _Parser(
        prog=prog_name('train.py'),
        allow_abbrev=True,
        formatter_class=HelpFormatter,
        description="Train Glow (Kingma & Dhariwal 2018). Same program for 1 process and\n"
        "`horovodrun -np N python train.py ...`. Flags follow the original train.py.",
        epilog=EXAMPLES,
    )
    g = p.add_argument_group('run')
    g.add_argument(
        '--config',
        default=None,
        metavar='FILE',
        help="Read options from a JSON or "
        "YAML file of {option: value} (names as the flags, without '--'), e.g. a run's "
        "config.json; flags on the command line override the file.",
    )
    g.add_argument(
        '--logdir',
        default=d.logdir,
        help="Log/checkpoint directory. If it already "
        "holds checkpoints, training resumes from the latest one.",
    )
    g.add_argument(
        '--restore_path',
        default=d.restore_path,
        help="Checkpoint to resume from: a log "
        "dir, its checkpoints/ dir or a ckpt-N prefix (ignored if --logdir has its own).",
    )
    g.add_argument(
        '--inference',
        action='store_true',
        help="Restore (EMA weights), evaluate test "
        "bits/dim and write sample grids to LOGDIR/inference/, then exit.",
    )
    g.add_argument('--verbose', action='store_true', help="Print every log record to stdout too.")
    g.add_argument(
        '--seed',
        type=int,
        default=d.seed,
        help="Random seed (model init, data order, "
        "dequantisation noise; worker r uses a stream derived from (seed, r)).",
    )

    g = p.add_argument_group('data')
    g.add_argument(
        '--problem',
        default=d.problem,
        help="mnist | cifar10 | celeba | imagenet-oord | "
        "imagenet | lsun_realnvp | lsun | folder ... (see glow_tf.data).",
    )
    g.add_argument('--data_dir', default=d.data_dir, help="Location of the data ('' = default).")
    g.add_argument('--category', default=d.category, help="LSUN category (e.g. bedroom).")
    g.add_argument(
        '--image_size',
        type=int,
        default=d.image_size,
        help="Image size; -1 = the dataset's. Must be divisible by 2**n_levels.",
    )
    g.add_argument(
        '--n_train',
        type=int,
        default=d.n_train,
        help="Train epoch size in images "
        "(an epoch is n_train images, as in the original; not a dataset limit).",
    )
    g.add_argument(
        '--n_test',
        type=int,
        default=d.n_test,
        help="Number of test images for the full test pass (-1 = whole test split).",
    )
    g.add_argument(
        '--dal',
        type=int,
        default=d.dal,
        help="Data augmentation level, as the "
        "original: 0 none; 1 random shifts up to 10%% of height and width (mnist, "
        "cifar10); 2 for cifar10 adds horizontal flips, rotation up to 15 degrees, zoom "
        "0.1 and shear 0.02 (mnist: shifts only). Other problems: none, as the original.",
    )
    g.add_argument(
        '--skip_bad',
        action='store_true',
        help="New: skip (and count) unreadable images "
        "in image folders / CelebA instead of stopping with an error.",
    )
    g.add_argument(
        '--fmap',
        type=int,
        default=d.fmap,
        help="Accepted for compatibility; unused (tf.data autotunes).",
    )
    g.add_argument('--pmap', type=int, default=d.pmap, help="Accepted for compatibility; unused.")

    g = p.add_argument_group('model')
    g.add_argument('--n_levels', type=int, default=d.n_levels, help="Number of levels (L).")
    g.add_argument('--depth', type=int, default=d.depth, help="Flow steps per level (K).")
    g.add_argument('--width', type=int, default=d.width, help="Channels of the coupling networks.")
    g.add_argument(
        '--flow_permutation',
        type=int,
        default=d.flow_permutation,
        help="0 = reverse (RealNVP), 1 = shuffle, 2 = invertible 1x1 conv (Glow).",
    )
    g.add_argument(
        '--flow_coupling', type=int, default=d.flow_coupling, help="0 = additive, 1 = affine."
    )
    g.add_argument(
        '--lu',
        action='store_true',
        help="LU-decomposed invertible 1x1 convolutions (paper section 3.2; new flag).",
    )
    g.add_argument(
        '--learntop',
        action='store_true',
        help="Learn the top prior's mean/scale "
        "(as the original: a zero-initialised 3x3 convolution of a zero tensor).",
    )
    g.add_argument(
        '--edge_bias',
        type=int,
        default=d.edge_bias,
        choices=(0, 1),
        help="1: the original's edge-bias padding in every 3x3 convolution (zero "
        "padding plus an input channel marking the border); 0: plain zero padding.",
    )
    g.add_argument(
        '--ycond', action='store_true', help="Class-conditional prior (+ classifier head)."
    )
    g.add_argument(
        '--weight_y',
        type=float,
        default=d.weight_y,
        help="Weight of the classification loss in bits (needs --ycond).",
    )
    g.add_argument(
        '--n_bits_x', type=int, default=d.n_bits_x, help="Bits per colour channel (1..8)."
    )
    g.add_argument(
        '--gradient_checkpointing',
        type=int,
        default=None,
        help="1 = recompute each flow step's activations in the backward pass (saves "
        "memory, costs ~1 extra forward); 0 = keep them. Default 1 (original) "
        "unless --memory_mode is given.",
    )
    g.add_argument(
        '--memory_mode',
        default=None,
        choices=['plain', 'checkpoint', 'reversible'],
        help="New: 'plain' (store activations), 'checkpoint' (= --gradient_checkpointing "
        "1), 'reversible' (recompute activations by inverting the flow: memory "
        "independent of depth).",
    )

    g = p.add_argument_group('optimisation')
    g.add_argument(
        '--n_batch_train',
        type=int,
        default=d.n_batch_train,
        help="Train batch per worker at the anchor resolution (see --anchor_size).",
    )
    g.add_argument(
        '--n_batch_test',
        type=int,
        default=d.n_batch_test,
        help="Test batch per worker. If "
        "workers x batch does not divide --n_test, the largest smaller batch that does "
        "is used (with a note).",
    )
    g.add_argument(
        '--n_batch_init',
        type=int,
        default=d.n_batch_init,
        help="Images per worker for "
        "the data-dependent init (statistics averaged over all workers).",
    )
    g.add_argument(
        '--anchor_size',
        type=int,
        default=d.anchor_size,
        help="(original) batch sizes are "
        "given at this resolution and scaled by (anchor/image_size)^2, e.g. 64 at 32px is "
        "16 at 64px and 1 at 256px; 0 = use the batch flags literally.",
    )
    g.add_argument('--optimizer', default=d.optimizer, help="adamax (original default) or adam.")
    g.add_argument('--lr', type=float, default=d.lr, help="Base learning rate.")
    g.add_argument('--beta1', type=float, default=d.beta1, help="Adam(ax) beta1.")
    g.add_argument(
        '--beta2',
        type=float,
        default=None,
        help="New: Adam(ax) beta2 and Polyak decay; "
        "default 1 - 1/(its per epoch * polyak_epochs) as in the original.",
    )
    g.add_argument(
        '--polyak_epochs',
        type=float,
        default=d.polyak_epochs,
        help="Averaging horizon in epochs for Polyak (EMA) weights and beta2.",
    )
    g.add_argument(
        '--weight_decay',
        type=float,
        default=d.weight_decay,
        help="(original) multiplicative decay w <- wd * w per step; 1 = off.",
    )
    g.add_argument(
        '--lr_scale_by_size',
        action='store_true',
        help="New: multiply --lr by the number of workers (off, as in the original).",
    )
    g.add_argument('--epochs', type=int, default=d.epochs, help="Total number of training epochs.")
    g.add_argument(
        '--epochs_warmup',
        type=float,
        default=d.epochs_warmup,
        help="Linear LR warmup length in epochs (counted in images); 0 = none.",
    )
    g.add_argument(
        '--epochs_full_valid',
        type=int,
        default=d.epochs_full_valid,
        help="Epochs between full test-set evaluations.",
    )
    g.add_argument(
        '--epochs_full_sample',
        type=int,
        default=d.epochs_full_sample,
        help="Epochs between sample grids (also after epochs 1 and 10, as in the "
        "original); 0 = no sample grids (new).",
    )
    g.add_argument(
        '--max_steps',
        type=int,
        default=d.max_steps,
        help="New: stop after this many global steps (0 = no limit); counts across resumes.",
    )
    g.add_argument(
        '--max_nonfinite',
        type=int,
        default=d.max_nonfinite,
        help="New: stop after this "
        "many consecutive non-finite steps (each is skipped, not applied).",
    )
    g.add_argument(
        '--n_sample', type=int, default=d.n_sample, help="Accepted for compatibility; unused."
    )

    g = p.add_argument_group('outputs')
    g.add_argument(
        '--ckpt_every_steps',
        type=int,
        default=d.ckpt_every_steps,
        help="New: also "
        "checkpoint every N steps (0 = only at the end of each epoch and of training).",
    )
    g.add_argument(
        '--ckpt_every_minutes',
        type=float,
        default=d.ckpt_every_minutes,
        help="New: "
        "also checkpoint when this many minutes passed since the last one, so a hard "
        "kill loses minutes, not an epoch (0 = off).",
    )
    g.add_argument(
        '--start_over',
        action='store_true',
        help="New: when --logdir holds a "
        "previous run none of whose checkpoints loads (which is refused otherwise), move "
        "its checkpoints and logs to LOGDIR/previous-<time>/ and start at step 0. "
        "Ignored while a checkpoint loads (safe in a requeued command).",
    )
    g.add_argument(
        '--keep_checkpoints',
        type=int,
        default=d.keep_checkpoints,
        help="New: how many recent checkpoints to keep.",
    )
    g.add_argument(
        '--log_every',
        type=int,
        default=d.log_every,
        help="New: write a train.jsonl "
        "record and TensorBoard scalars every N steps (0 = once per epoch).",
    )
    g.add_argument(
        '--test_at_init',
        action='store_true',
        help="New: evaluate the test set once after initialisation (step 0).",
    )
    g.add_argument(
        '--no_progress',
        dest='progress',
        action='store_false',
        help="New: turn off the progress bars and stage timings on stderr (shown by "
        "default; train.jsonl records are then also printed).",
    )
    g.add_argument('--inject_nan_steps', type=_int_list, default=[], help=argparse.SUPPRESS)
    g.add_argument('--inject_inf_lr_steps', type=_int_list, default=[], help=argparse.SUPPRESS)
    return p


def config_from_args(ns):
    return TrainConfig(**{k: v for k, v in vars(ns).items() if k != 'config'})


def parse_config(parser, argv=None):
    """Command line (+ --config FILE underneath it) -> an unresolved TrainConfig."""
    ns = parser.parse_args(argv)
    if ns.config:
        parser.set_defaults(**TrainConfig.read_file(ns.config))
        ns = parser.parse_args(argv)
    return config_from_args(ns)


def fail(parser, message, status=2):
    """Report a user error once: under horovodrun every rank gets the same error, rank 0 prints
    it and the others exit quietly with the same status."""
    if not launcher_rank():
        print(f"{parser.prog}: error: {message}", file=sys.stderr, flush=True)
    sys.exit(status)


class _Parser(argparse.ArgumentParser):
    """argparse, but a flag error under horovodrun is one line from rank 0 (no usage text
    from every rank)."""

    def error(self, message):
        if launcher_rank() is None:
            super().error(message)  # usage + message, status 2
        fail(self, f"{message} (see {self.prog} --help)")


def main(argv=None):
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    parser = build_parser()
    try:
        config = parse_config(parser, argv)
        config.validate_flags()
    except ConfigError as e:
        fail(parser, str(e))

    from glow_tf.data import DataError
    from glow_tf.training.recovery import CheckpointWriteError
    from glow_tf.training.stop import StoppedBySignal, exit_code
    from glow_tf.training.trainer import NonFiniteLossError, Trainer

    try:
        return Trainer(config).run()
    except ConfigError as e:
        fail(parser, str(e))
    except DataError as e:
        fail(
            parser,
            f"data (--problem {config.problem}"
            f"{' --data_dir ' + config.data_dir if config.data_dir else ''}): {e}",
        )
    except NonFiniteLossError as e:
        fail(parser, str(e), status=3)
    except CheckpointWriteError as e:
        fail(parser, str(e))
    except StoppedBySignal as e:
        if e.checkpoint and not launcher_rank():
            print(f"{parser.prog}: {e}", file=sys.stderr, flush=True)
        sys.exit(exit_code(e.signum))
    except OSError as e:  # e.g. the disk filled up while writing a log file
        fail(parser, f"{e.filename or config.logdir}: {e.strerror or e}")


if __name__ == '__main__':
    main()
