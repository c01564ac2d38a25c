#!/usr/bin/env python
"""The browser face editor: `python demo.py`, then open http://127.0.0.1:8000 (`--help`)."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # before TensorFlow is imported

from glow_tf.cli.demo import main  # noqa: E402

if __name__ == '__main__':
    main()
