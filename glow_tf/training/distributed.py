"""A thin wrapper around Horovod, so the trainer is the same program on 1 or N processes.

    dist = Distributed()          # Horovod when importable (GLOW_NO_HOROVOD=1 forces it off)
    dist.init()                   # hvd.init(); pins one GPU per local rank when GPUs exist
    dist.rank, dist.size, dist.local_rank, dist.is_chief
    dist.allreduce_mean(t)        # works eagerly and inside tf.function
    dist.broadcast_variables(vs)  # eager; Keras 3 variables are broadcast through `.value`
    tape = dist.gradient_tape(tape)   # hvd.DistributedGradientTape (averaging) when size > 1

Keras 3 variables trip Horovod (`'Variable' object has no attribute 'ref'` in
DistributedGradientTape, and broadcast_variables fails in its tf.function), so everything here
works on the underlying tf.Variables (`glow_tf.variables.tf_variables`). Gradients
taken with respect to `v.value` are the gradients of `v`, and are applied with the Keras
optimizer to the Keras variables.

Without Horovod (not installed, or GLOW_NO_HOROVOD=1) every collective is the identity and
size == 1, so a single process runs the very same code path.
"""

import os

import tensorflow as tf

from glow_tf.variables import tf_variables


class Distributed:
    """Horovod (if importable) or a single-process stand-in with the same interface.

    Args:
        use_horovod: True / False; None (default): Horovod unless GLOW_NO_HOROVOD=1. Horovod
            that fails to import falls back to the single-process stand-in.
    """

    def __init__(self, use_horovod=None):
        if use_horovod is None:
            use_horovod = os.environ.get('GLOW_NO_HOROVOD', '0') in ('', '0')
        self._hvd = None
        if use_horovod:
            try:
                import horovod.tensorflow as hvd

                self._hvd = hvd
            except ImportError:
                self._hvd = None
        self._initialized = False
        self._eager_counter = 0

    # ------------------------------------------------------------------ setup
    @property
    def backend(self):
        return 'horovod' if self._hvd is not None else 'single'

    def init(self, pin_gpu=True):
        if self._initialized:
            return self
        if self._hvd is not None:
            self._hvd.init()
        self._initialized = True
        if pin_gpu:
            self.pin_gpu()
        return self

    def pin_gpu(self):
        """One GPU per local rank, with memory growth (the original's allow_growth)."""
        gpus = tf.config.list_physical_devices('GPU')
        if not gpus:
            return None
        gpu = gpus[self.local_rank % len(gpus)]
        try:
            tf.config.set_visible_devices(gpu, 'GPU')
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # devices already initialised (e.g. a second Trainer in-process)
            pass
        return gpu

    @property
    def rank(self):
        return self._hvd.rank() if self._hvd is not None else 0

    @property
    def size(self):
        return self._hvd.size() if self._hvd is not None else 1

    @property
    def local_rank(self):
        return self._hvd.local_rank() if self._hvd is not None else 0

    @property
    def is_chief(self):
        return self.rank == 0

    @property
    def active(self):
        """True when there is more than one worker (collectives do real work)."""
        return self._hvd is not None and self.size > 1

    # ------------------------------------------------------------------ collectives
    def _name(self, prefix):
        # Eager collectives are matched across ranks by name: number them in call order
        # (every rank makes the same sequence of calls). Inside tf.function the graph node
        # names are used, which are identical across ranks.
        if tf.executing_eagerly():
            self._eager_counter += 1
            return f'glow.{prefix}.{self._eager_counter}'
        return None

    def allreduce_mean(self, t, name=None):
        if not self.active:
            return tf.convert_to_tensor(t)
        return self._hvd.allreduce(t, op=self._hvd.Average, name=name or self._name('mean'))

    def allreduce_sum(self, t, name=None):
        if not self.active:
            return tf.convert_to_tensor(t)
        return self._hvd.allreduce(t, op=self._hvd.Sum, name=name or self._name('sum'))

    def broadcast(self, t, root_rank=0, name=None):
        if not self.active:
            return tf.convert_to_tensor(t)
        return self._hvd.broadcast(t, root_rank, name=name or self._name('bcast'))

    def broadcast_variables(self, variables, root_rank=0):
        """Eager: assign rank `root_rank`'s values to `variables` on every rank."""
        if not self.active:
            return
        tf_vars = tf_variables(variables)
        # Horovod has no bool kernel on every build: move bools through int32.
        plain = [v for v in tf_vars if v.dtype != tf.bool]
        if plain:
            self._hvd.broadcast_variables(plain, root_rank=root_rank)
        for v in tf_vars:
            if v.dtype == tf.bool:
                v.assign(tf.cast(self.broadcast(tf.cast(v, tf.int32), root_rank), tf.bool))

    def broadcast_object(self, obj, root_rank=0):
        if not self.active:
            return obj
        self._eager_counter += 1
        return self._hvd.broadcast_object(
            obj, root_rank=root_rank, name=f'glow.obj.{self._eager_counter}'
        )

    def gradient_tape(self, tape):
        """Wrap a tf.GradientTape so `.gradient()` returns worker-averaged gradients.

        Differentiate with respect to tf.Variables (`tf_variables(model.trainable_variables)`),
        not Keras 3 variables.
        """
        if not self.active:
            return tape
        return self._hvd.DistributedGradientTape(tape)

    def __repr__(self):
        return (
            f'Distributed(backend={self.backend}, rank={self.rank}, size={self.size}, '
            f'local_rank={self.local_rank})'
        )
