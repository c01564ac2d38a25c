#!/usr/bin/env python
"""Train Glow: `python train.py --help`; multi-GPU: `horovodrun -np 8 python train.py ...`."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # before TensorFlow is imported

from glow_tf.cli.train import main  # noqa: E402

if __name__ == '__main__':
    main()
