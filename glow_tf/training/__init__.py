"""Training: the Trainer loop, optimiser/warmup, Polyak EMA, checkpoints, logs and sample grids."""
from glow_tf.training.checkpoint import find_checkpoint, load_model
from glow_tf.training.trainer import NonFiniteLossError, Trainer

__all__ = ['Trainer', 'NonFiniteLossError', 'load_model', 'find_checkpoint']
