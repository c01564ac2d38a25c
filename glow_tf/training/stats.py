"""The step statistics, named once.

The compiled steps return their statistics as one float vector (one allreduce, one host copy);
these tuples say what each entry is, and `unpack` turns a vector back into names:

    TRAIN_STATS  a training step's means over the global batch, then STOP (1 when a worker asked
                 to stop): [loss, bits_x, bits_y, error, stop]
    TEST_SUMS    a test batch's sums: [loss, bits_x, bits_y, error, n], then bits_x per level
                 (one entry per level, the top prior's level last)

    named, rest = unpack(TEST_SUMS, sums)      # named['bits_x'], rest = the per-level sums
"""

import numpy as np

TRAIN_STATS = ('loss', 'bits_x', 'bits_y', 'error')
STOP = 'stop'
TRAIN_STEP = TRAIN_STATS + (STOP,)
TEST_SUMS = ('loss', 'bits_x', 'bits_y', 'error', 'n')


def unpack(names, vector):
    """({name: float} of the first len(names) entries of `vector`, the rest as a float array)."""
    values = np.asarray(vector, np.float64).reshape(-1)
    if len(values) < len(names):
        raise ValueError(f"expected at least {len(names)} statistics {names}, got {len(values)}")
    return {k: float(v) for k, v in zip(names, values)}, values[len(names) :]
