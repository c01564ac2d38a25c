"""Run under `horovodrun -np N`: each rank reports its view of the world and an allreduce result."""

import json
import sys

import horovod.tensorflow as hvd
import tensorflow as tf

hvd.init()
rank, size = hvd.rank(), hvd.size()
local = tf.constant([float(rank), 10.0 * (rank + 1)])
averaged = hvd.allreduce(local, op=hvd.Average)
summed = hvd.allreduce(local, op=hvd.Sum)
print(
    'RESULT '
    + json.dumps(
        {
            'rank': rank,
            'size': size,
            'local_rank': hvd.local_rank(),
            'average': averaged.numpy().tolist(),
            'sum': summed.numpy().tolist(),
        }
    )
)
sys.stdout.flush()
