"""Keras 3 variables and the tf.Variables behind them.

A Keras 3 variable wraps a tf.Variable (`v.value`). Horovod's `DistributedGradientTape` and
`broadcast_variables`, `tf.custom_gradient`'s variable list, `tf.train.Checkpoint` groups and
SavedModel modules all need the tf.Variables themselves; gradients taken with respect to
`v.value` are the gradients of `v`, and a Keras optimizer applies them to the Keras variables.
"""

import keras
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


def reading_values_now(variables, fns):
    """`fns`, each with the Keras 3 `variables` read as constants holding their values *now*.

    Traced in a tf.function, such a function's graph holds the values (`keras.StatelessScope`
    maps each variable to a `tf.constant` made inside the trace) and no variable reads, so
    Grappler's constant folding computes every value that depends on the weights alone once,
    when the function is optimised, instead of at every call. Later changes to the variables are
    not seen. The functions share one copy of the values.

    Args:
        variables: Keras 3 variables (a model's `.variables`).
        fns: functions reading them (through Keras layers).
    Returns:
        The wrapped functions, in order.
    """
    variables = list(variables)
    values = [v.numpy() for v in variables]

    def constants(fn):
        def with_constants(*args):
            mapping = [(v, tf.constant(x, v.dtype)) for v, x in zip(variables, values)]
            with keras.StatelessScope(state_mapping=mapping):
                return fn(*args)

        return with_constants

    return [constants(fn) for fn in fns]


class FlatVariables:
    """Float32 variables seen as one flat vector [N] (N = their total size), in list order.

        flat = FlatVariables(variables)
        x = flat.read()          # [N]: each variable reshaped to [-1], concatenated
        flat.assign(x)           # split back into the variables' shapes and assigned
        g = flat.flatten(grads)  # tensors shaped like the variables -> [N]
        grads = flat.unflatten(g)  # [N] -> tensors shaped like the variables

    A whole-model update written on [N] vectors is a few elementwise operations instead of a
    few per variable, so its graph is small and quick to trace (glow_tf.training.steps).

    Args:
        variables: Keras 3 or tf.Variables (their tf.Variables are used), all float32.
    """

    def __init__(self, variables):
        self.variables = tf_variables(variables)
        bad = [v.name for v in self.variables if v.dtype != tf.float32]
        if bad:
            raise TypeError(f"FlatVariables holds float32 variables only; got {bad}")
        self.shapes = [v.shape for v in self.variables]
        self.sizes = [int(s.num_elements()) for s in self.shapes]
        self.size = sum(self.sizes)

    def flatten(self, tensors):
        """[N]: `tensors` (one per variable, same shapes) reshaped to [-1] and concatenated."""
        flat = tf.constant([-1])  # one shape constant for all, not one per variable
        if len(tensors) == 1:
            return tf.reshape(tensors[0], flat)
        return tf.concat([tf.reshape(t, flat) for t in tensors], axis=0)

    def read(self):
        """[N]: the variables' current values."""
        return self.flatten([v.value() for v in self.variables])

    def unflatten(self, flat):
        """`flat` [N] split into one tensor per variable, in the variables' shapes."""
        if len(self.shapes) == 1:
            return [tf.reshape(flat, self.shapes[0])]
        shapes = {}  # one constant per distinct shape
        parts = []
        for part, shape in zip(tf.split(flat, self.sizes), self.shapes):
            key = tuple(shape.as_list())
            if key not in shapes:
                shapes[key] = tf.constant(key, tf.int32)
            parts.append(tf.reshape(part, shapes[key]))
        return parts

    def assign(self, flat):
        """Writes `flat` [N] back into the variables."""
        for v, value in zip(self.variables, self.unflatten(flat)):
            v.assign(value)
