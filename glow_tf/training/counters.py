"""The run's counters, kept in one place: the checkpointed variables themselves.

    counters = RunCounters()          # step 0, epoch 1, best_test_loss inf, the rest 0
    counters.step += 1                # reads and assigns the tf.Variable behind it
    counters.add(step=1, n_images=64) # assign_add, no read
    counters.variables                # the nine tf.Variables (broadcast from rank 0 on start)
    counters.state                    # the TrainState that checkpoints save as the `state/` group

Contract. `RunCounters` owns a `glow_tf.runs.checkpoint_format.TrainState` (the checkpoint format:
group `state/`, one variable per field, names unchanged) and exposes every field as a property
that reads (`int` / `float`) and assigns that variable. There is no second copy: what a
checkpoint saves, a restore loads and a broadcast sends is what the loop reads.

    step            optimisation steps taken (applied, skipped or rolled back)
    epoch           the epoch in progress (1-based)
    epoch_step      steps taken in the epoch in progress
    n_processed     images of the applied steps (all workers): the warm-up clock
    n_images        images of all steps (all workers)
    best_test_loss  the best full-test loss so far (inf: none yet)
    n_skipped       steps skipped or rolled back as non-finite
    train_time      seconds spent in steps
    world_size      the number of workers that wrote the checkpoint

`IntervalStats` accumulates the loss statistics and the throughput of one logging interval.
"""

import numpy as np

from glow_tf.runs.checkpoint_format import TrainState
from glow_tf.training.stats import TRAIN_STATS


def _field(name):
    def get(self):
        v = self.state.vars[name]
        return float(v.numpy()) if v.dtype.is_floating else int(v.numpy())

    def set_(self, value):
        self.state.vars[name].assign(value)

    return property(get, set_, doc=f"the `{name}` counter (a checkpointed tf.Variable)")


class RunCounters:
    """The single owner of the run's counters (see the module docstring).

    Args:
        state: the `TrainState` to expose; default a new one (step 0, epoch 1, best loss inf).
    """

    def __init__(self, state=None):
        self.state = state if state is not None else TrainState()

    step = _field('step')
    epoch = _field('epoch')
    epoch_step = _field('epoch_step')
    n_processed = _field('n_processed')
    n_images = _field('n_images')
    best_test_loss = _field('best_test_loss')
    n_skipped = _field('n_skipped')
    train_time = _field('train_time')
    world_size = _field('world_size')

    def add(self, **deltas):
        """counter += delta for each keyword, without reading the counters back."""
        for name, delta in deltas.items():
            self.state.vars[name].assign_add(delta)

    @property
    def variables(self):
        return self.state.variables_list()

    def as_dict(self):
        return self.state.get()

    def __repr__(self):
        return f'RunCounters({self.as_dict()})'


class IntervalStats:
    """Accumulators of one logging interval: the mean of the applied steps' statistics
    (loss, bits_x, bits_y, class error) and the images per second of the timed steps."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.sums, self.n_steps = np.zeros(len(TRAIN_STATS)), 0
        self.seconds, self.images = 0.0, 0

    def add_step(self, stats):
        """An applied step's statistics: {name: value} for every name in TRAIN_STATS."""
        self.sums += [stats[k] for k in TRAIN_STATS]
        self.n_steps += 1

    def add_time(self, seconds, images):
        self.seconds += seconds
        self.images += images

    @property
    def empty(self):
        return not (self.n_steps or self.images)

    def means(self):
        """{name: mean over the applied steps} for TRAIN_STATS (NaN if none)."""
        means = self.sums / self.n_steps if self.n_steps else np.full(len(TRAIN_STATS), np.nan)
        return dict(zip(TRAIN_STATS, (float(m) for m in means)))

    def images_per_sec(self):
        return self.images / self.seconds if self.seconds > 0 else None
