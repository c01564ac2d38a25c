"""Data pipelines for glow_tf: MNIST, CIFAR-10, CelebA, the original Glow TFRecord shards and image
folders.

Entry points::

    src = load_source('cifar10', image_size=32)         # -> DataSource
    ds = src.train(batch_size=64, rank=hvd.rank(), size=hvd.size(), seed=0, flip=True)
    for x, y in ds: ...                                  # x uint8 [64, 32, 32, 3], y int32 [64]
    for x, y in src.test(batch_size=50, rank=r, size=n): ...

Every bad-input problem raises :class:`DataError` (a ValueError) naming the file and what was
expected. Each dataset is one `Problem` record in `glow_tf.data.problems` (`PROBLEMS`); a new one
is one `register_problem(...)` call. See docs/data.md for formats, layouts and choices. This
package does not import the model.
"""

from glow_tf.data.cache import cache_root
from glow_tf.data.celeba import CELEBA_ATTRIBUTE_NAMES, read_celeba_attributes, read_eval_partition
from glow_tf.data.convert import convert
from glow_tf.data.download import download, md5sum
from glow_tf.data.errors import DataError, DataWarning
from glow_tf.data.images import load_image_file
from glow_tf.data.loaders import load_source, resolve_data_dir, shared_data_root
from glow_tf.data.mnist import read_idx
from glow_tf.data.problems import (
    PROBLEMS,
    Problem,
    get_problem,
    register_problem,
    unregister_problem,
)
from glow_tf.data.readers import LoadRequest
from glow_tf.data.source import ArraySource, DataSource, TFRecordSource, describe_source
from glow_tf.data.tfrecords import make_example, scan_tfrecord_file

__all__ = [
    'DataError',
    'DataWarning',
    'DataSource',
    'ArraySource',
    'TFRecordSource',
    'PROBLEMS',
    'Problem',
    'LoadRequest',
    'get_problem',
    'register_problem',
    'unregister_problem',
    'load_source',
    'resolve_data_dir',
    'shared_data_root',
    'cache_root',
    'load_image_file',
    'read_celeba_attributes',
    'read_eval_partition',
    'CELEBA_ATTRIBUTE_NAMES',
    'read_idx',
    'download',
    'md5sum',
    'convert',
    'make_example',
    'scan_tfrecord_file',
    'describe_source',
]
