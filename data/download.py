#!/usr/bin/env python
"""Download MNIST or CIFAR-10 with md5 verification.

    python data/download.py mnist --dest DIR
    python data/download.py cifar10 --dest DIR [--url file:///mirror/]

A file whose md5 differs from the published one is refused (deleted if just downloaded).
Logic: glow_tf/data/download.py.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from glow_tf.data.download import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
