#!/usr/bin/env python
"""Encode / attribute directions / edit / interpolate: `python manipulate.py --help`
(docs/manipulation.md)."""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
from glow_tf.cli.manipulate import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
