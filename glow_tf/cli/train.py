"""`train.py` / `glow-train`: train Glow, on one process or under `horovodrun -np N`.

The flags of the original openai/glow train.py keep their names and meanings, so its published
commands run unchanged (e.g. `--n_level 3` still works: argparse accepts unambiguous prefixes).
`--config FILE` reads the options from a JSON or YAML file (a run's own config.json works);
flags given on the command line override it. See docs/training.md for launch recipes and the
paper's hyper-parameters.

Exit status: 0 done; 2 bad flags / config / data / log dir, or a checkpoint that cannot be
written (disk full; the message names the flag or file); 3 training diverged (too many
consecutive non-finite losses; the last good checkpoint is left intact); 143 / 130 stopped by
SIGTERM / SIGINT after writing a checkpoint (run the same command to resume). See
docs/reliability.md.
"""

import argparse
import os
import sys

from glow_tf.cli import HelpFormatter, launcher_rank, prog_name
from glow_tf.errors import ConfigError
from glow_tf.runs.config import GROUPS, TrainConfig, flag_name, option_fields

EXAMPLES = """examples:
  # a small Glow on MNIST, 3 epochs of 6,400 images (README.md's main job adds evaluation flags)
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


# A TrainConfig field's annotation -> how argparse reads its flag's value.
ARG_TYPES = {
    'int': int,
    'Optional[int]': int,
    'float': float,
    'Optional[float]': float,
    'str': None,
    'Optional[str]': None,
    'List[int]': _int_list,
}


def add_option(group, f, default):
    """The flag of one `TrainConfig` option field `f` (see `glow_tf.runs.config.option`)."""
    md, flag = f.metadata, flag_name(f)
    help = argparse.SUPPRESS if md['hidden'] else md['help']
    if f.name == 'problem':  # the datasets are registered in glow_tf.data.problems
        from glow_tf.data import PROBLEMS

        help += f" One of: {', '.join(PROBLEMS)}."
    if f.type == 'bool':  # a switch: --name sets True, --no_name (metadata flag) sets False
        action = 'store_false' if flag.startswith('--no_') else 'store_true'
        return group.add_argument(flag, dest=f.name, action=action, help=help)
    kw = {'choices': md['choices']} if md['choices'] is not None else {}
    return group.add_argument(
        flag, dest=f.name, type=ARG_TYPES[f.type], default=default, help=help, **kw
    )


def build_parser():
    """train.py's command line: `--config FILE` and one flag per `TrainConfig` option field,
    in the fields' `--help` groups (`glow_tf.runs.config.GROUPS`)."""
    p = _Parser(
        prog=prog_name('train.py'),
        allow_abbrev=True,
        formatter_class=HelpFormatter,
        description="Train Glow (Kingma & Dhariwal 2018). Same program for 1 process and\n"
        "`horovodrun -np N python train.py ...`. Flags follow the original train.py.",
        epilog=EXAMPLES,
    )
    groups = {name: p.add_argument_group(name) for name in GROUPS}
    groups['run'].add_argument(
        '--config',
        default=None,
        metavar='FILE',
        help="Read options from a JSON or YAML file of {option: value} (names as the flags, "
        "without '--'), e.g. a run's config.json; flags on the command line override the file.",
    )
    defaults = TrainConfig()
    for f in option_fields():
        add_option(groups[f.metadata['group']], f, getattr(defaults, f.name))
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
    from glow_tf.training.checkpoint_recovery import CheckpointWriteError
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
