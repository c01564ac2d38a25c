"""Keras 3 variables and the tf.Variables behind them.

A Keras 3 variable wraps a tf.Variable (`v.value`). Horovod's `DistributedGradientTape` and
`broadcast_variables`, `tf.custom_gradient`'s variable list, `tf.train.Checkpoint` groups and
SavedModel modules all need the tf.Variables themselves; gradients taken with respect to
`v.value` are the gradients of `v`, and a Keras optimizer applies them to the Keras variables.
"""

import tensorflow as tf


def tf_variable(v):
    """The tf.Variable behind a Keras 3 variable, or `v` itself if it is one; else TypeError."""
    if isinstance(v, tf.Variable):
        return v
    inner = getattr(v, 'value', None)
    if not isinstance(inner, tf.Variable):
        raise TypeError(f"{v!r}: not a tf.Variable and has no tf.Variable `.value`")
    return inner


def tf_variables(variables):
    """The tf.Variables behind a list of Keras 3 (or plain tf) variables, order preserved."""
    return [tf_variable(v) for v in variables]
