#!/usr/bin/env python
"""Convert an image folder or CelebA to TFRecord shards in the original Glow format.

    python data/convert_to_tfrecords.py folder my_images/ out_tfr/ --res 64 --shards 8
    python data/convert_to_tfrecords.py celeba celeba/ celeba_tfr/ --res 64 --shards 16 --skip_bad

Then train with problem 'tfr' (or 'celeba') and data_dir out_tfr/. Logic: glow_tf/data/convert.py.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from glow_tf.data.convert import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
