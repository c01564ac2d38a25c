#!/usr/bin/env python
"""Score image sets with a trained Glow: `python score.py --help` (see docs/likelihood.md)."""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
from glow_tf.cli.score import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
