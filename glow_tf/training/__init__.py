"""Training: the Trainer loop, optimiser/warmup, Polyak EMA (and its Keras callback), checkpoints,
logs and sample grids."""

from glow_tf.runs.checkpoint import find_checkpoint
from glow_tf.runs.load import load_model
from glow_tf.training.callbacks import PolyakAveraging
from glow_tf.training.trainer import NonFiniteLossError, Trainer

__all__ = ['Trainer', 'NonFiniteLossError', 'PolyakAveraging', 'load_model', 'find_checkpoint']
