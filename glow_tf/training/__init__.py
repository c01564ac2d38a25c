"""Training: the Trainer and its parts.

trainer.py      Trainer: setup, the main loop, test passes, inference (what train.py runs)
counters.py     RunCounters (step, epoch, ... : the checkpointed variables), IntervalStats
steps.py        TrainSteps: the compiled gradient, guarded update and test steps; noise seeds
run_checkpoints.py  this run's checkpoints: where to resume from, compatibility, restore,
                save, keep-best
evaluation.py   TestPasses: the test set's bits/dim with raw and averaged weights; --inference
                arrays; the test.jsonl record and console line of a pass
faults.py       FaultInjection: the reliability tests' NaN / inf faults (absent otherwise)
checkpoint_recovery.py  checkpoint files on disk: loadable or not, stale temp dirs,
                --start_over
distributed.py  Horovod, or one process behind the same interface
optim.py        the optimiser and learning rate; ema.py Polyak averaging; stop.py SIGTERM/SIGINT;
logs.py         train.jsonl / test.jsonl / TensorBoard; samples.py sample grids;
callbacks.py    Polyak averaging as a Keras callback (for model.fit)

A trained run is loaded with `glow_tf.load_model` (glow_tf/runs/load.py), not from here.
"""

from glow_tf.training.callbacks import PolyakAveraging
from glow_tf.training.trainer import NonFiniteLossError, Trainer

__all__ = ['Trainer', 'NonFiniteLossError', 'PolyakAveraging']
