#!/usr/bin/env python
"""Sample from a trained Glow / export it: `python sample.py --help` (see docs/manipulation.md)."""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
from glow_tf.cli.sample import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
