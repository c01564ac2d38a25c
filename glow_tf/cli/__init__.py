"""Command-line entry points (train.py; sample.py and manipulate.py live alongside), and what
they share: the program name, the help formatter, the worker rank under horovodrun, and how a
user's mistake ends a command (one line, exit status 2)."""

import argparse
import os
import sys

from glow_tf.errors import InputError


def prog_name(script):
    """The name the user typed: `glow-train` for the console script, else e.g. `train.py`."""
    invoked = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ''
    return invoked if invoked.startswith('glow-') else script


def launcher_rank():
    """This process's rank as horovodrun / mpirun set it in the environment, or None when no
    launcher started it. Known before Horovod (and TensorFlow) is imported, so a flag error can
    be reported once, by rank 0."""
    for var in ('HOROVOD_RANK', 'OMPI_COMM_WORLD_RANK', 'PMI_RANK', 'PMIX_RANK'):
        value = os.environ.get(var, '')
        if value.isdigit():
            return int(value)
    return None


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Description/epilog kept as written (worked examples), and "(default: X)" only where it
    informs: not for on/off switches, not for None or '', not when the help text already explains
    the default."""

    def _get_help_string(self, action):
        text = action.help or ''
        if (
            action.nargs == 0
            or action.default in (None, '', argparse.SUPPRESS)
            or 'default' in text.lower()
        ):
            return text
        return super()._get_help_string(action)


def exit_on_input_error(action, prog):
    """`action()`'s result; an InputError (a user's mistake: a file, model, attribute...) becomes
    one line `prog: error: message` on stderr and exit status 2, without a traceback."""
    try:
        return action()
    except InputError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(2)
