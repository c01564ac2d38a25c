"""Depth-independent activation memory: backpropagation through flow steps by exact inversion.

A flow step is a bijection, so its input can be recomputed from its output. `reversible_forward`
runs a stack of flow steps (one level of the model) under one `tf.custom_gradient`, so nothing
inside the stack is kept for the backward pass except the stack's *output*. The backward pass
walks the layers in reverse (for a FlowStep: coupling, 1x1 conv / permutation, ActNorm):

    for each layer, last to first:
        x   = layer.inverse(y)                                  (exact reconstruction, no tape)
        y', log_det = layer.forward(x)   under a GradientTape
        (dx, dθ) = tape.gradient([y', log_det], [x, θ], output_gradients=[dy, dlogdet])
        y, dy = x, dx

so only one layer's activations are alive at a time and the stored activations do not grow with
the number of steps (Gomez et al. 2017, "The Reversible Residual Network"; RealNVP/Glow note the
property for invertible networks). For coupling layers the inverse and the re-run share one
evaluation of the coupling network: the coupling passes x_a through unchanged (y_a = x_a), so
NN(y_a) computed under the tape gives both x_b = inverse(y_b) and the gradients. The cost is
then about one extra coupling-network forward per step plus the cheap inverses of ActNorm and the
1x1 convolution (docs/performance.md has the measured overhead); the gradients differ from the
plain mode's by the float32 round-off of the reconstruction (tests/test_reversible.py).

`checkpointed_forward` is the same machinery storing each step's *input* instead of inverting
(per-step gradient checkpointing with one custom gradient per level): memory grows with depth by
one step input per step, no inverse is needed, and tracing stays linear in depth (a
`tf.recompute_grad` per step walks the whole graph built so far, quadratic in depth).

Both work eagerly and inside `tf.function`. Keras 3 variables wrap tf.Variables; TF hands
`grad_fn` the tf.Variables read in the forward pass, matched to each layer's
`[v.value for v in layer.trainable_variables]` by `ref()`.

ActNorm's data-dependent init must not run through here (the model runs `initialize` in plain
mode): a forward pass that changes variables would break the reconstruction.
"""

import contextlib

import tensorflow as tf
from tensorflow.python.eager import record  # stop_recording: the public API has no equivalent

from glow_tf.flows.base import sum_except_batch
from glow_tf.flows.coupling import Coupling
from glow_tf.variables import tf_variable

__all__ = ['reversible_forward', 'checkpointed_forward']


def _ordered_after(dependency):
    """Context: every op created inside waits for `dependency` (orders the backward walk in graphs).

    Without it a graph executor may run work of the backward pass ahead of the gradient chain:
    the inverses (they only depend on the level output) and every layer's weight-only ops
    (ActNorm-folded kernels, rearranged conv kernels), holding all their results at once --
    memory growing with depth again.
    """
    if tf.executing_eagerly() or dependency is None:
        return contextlib.nullcontext()
    return tf.control_dependencies([dependency])


def _layers(step):
    """The invertible sub-layers of a FlowStep in forward order, or the step itself."""
    return list(getattr(step, 'flow_layers', None) or [step])


def _accumulate(grads, variables, values):
    for v, g in zip(variables, values):
        key = v.ref()
        grads[key] = g if key not in grads else grads[key] + g


def _grad_through(layer, x, dy, dlog_det, grads):
    """Re-run layer.forward(x) under a tape; returns dx and adds the variables' grads to `grads`."""
    variables = [tf_variable(v) for v in layer.trainable_variables]
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(x)
        tape.watch(variables)
        y, log_det = layer.forward(x)
    out = tape.gradient(
        [y, log_det],
        [x] + variables,
        output_gradients=[dy, dlog_det],
        unconnected_gradients=tf.UnconnectedGradients.ZERO,
    )
    _accumulate(grads, variables, out[1:])
    return out[0]


def _invert_and_grad(layer, y, dy, dlog_det, grads):
    """Reconstruct the layer's input from y and backpropagate dy through it: (x, dx)."""
    if isinstance(layer, Coupling):
        return _coupling_invert_and_grad(layer, y, dy, dlog_det, grads)
    x = tf.stop_gradient(layer.inverse(y)[0])
    return x, _grad_through(layer, x, dy, dlog_det, grads)


def _coupling_invert_and_grad(layer, y, dy, dlog_det, grads):
    """Coupling: one evaluation of NN(y_a) serves the inverse and the gradient (y_a = x_a)."""
    n_a = layer.n_a
    x_a, y_b = y[..., :n_a], y[..., n_a:]
    variables = [tf_variable(v) for v in layer.trainable_variables]
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(x_a)
        tape.watch(variables)
        shift, log_scale = layer._shift_and_log_scale(x_a)
        if log_scale is None:
            x_b = tf.stop_gradient(y_b - shift)
            tape.watch(x_b)
            outputs, out_grads = [x_b + shift], [dy[..., n_a:]]
        else:
            x_b = tf.stop_gradient(y_b * tf.exp(-log_scale) - shift)
            tape.watch(x_b)
            outputs = [(x_b + shift) * tf.exp(log_scale), sum_except_batch(log_scale)]
            out_grads = [dy[..., n_a:], dlog_det]
    out = tape.gradient(
        outputs,
        [x_a, x_b] + variables,
        output_gradients=out_grads,
        unconnected_gradients=tf.UnconnectedGradients.ZERO,
    )
    _accumulate(grads, variables, out[2:])
    dx = tf.concat([dy[..., :n_a] + out[0], out[1]], axis=-1)
    return tf.concat([x_a, x_b], axis=-1), dx


def _prepare(steps, x):
    steps = list(steps)
    for step in steps:  # build outside the custom gradient: no variable creation inside it
        if not step.built:
            step.build(tuple(x.shape))
    return steps


def _run_forward(steps, x, keep_inputs):
    """(y, log_det [B], each step's input or None): the steps applied in order."""
    y, total, inputs = x, tf.zeros([tf.shape(x)[0]], x.dtype), []
    for step in steps:
        if keep_inputs:
            inputs.append(y)
        y, log_det = step.forward(y)
        total += log_det
    return y, total, inputs if keep_inputs else None


def _with_custom_backward(steps, x, backward, keep_inputs):
    """Run `steps` on x under one tf.custom_gradient whose backward pass is
    `backward(steps, y, inputs, dy, dlog_det, grads) -> dx` (grads: variable ref -> gradient).

    Only the output y (and the step inputs if keep_inputs) is kept for the backward pass.
    """
    steps = _prepare(steps, x)
    if not steps:
        return x, tf.zeros([tf.shape(x)[0]], x.dtype)

    @tf.custom_gradient
    def run(x_in):
        # stop_recording keeps outer tapes from holding the activations; custom_gradient's
        # VariableWatcher still sees the variable reads and passes them to grad_fn.
        with record.stop_recording():
            y, total, inputs = _run_forward(steps, x_in, keep_inputs)

        def grad_fn(dy, dlog_det, variables=None):
            dy = tf.zeros_like(y) if dy is None else dy
            dlog_det = tf.zeros_like(total) if dlog_det is None else dlog_det
            grads = {}
            dx = backward(steps, y, inputs, dy, dlog_det, grads)
            return dx, [grads.get(v.ref()) for v in (variables or [])]

        return (y, total), grad_fn

    return run(x)


def _backward_by_inversion(steps, y, inputs, dy, dlog_det, grads):
    for step in reversed(steps):
        for layer in reversed(_layers(step)):
            with _ordered_after(dy):
                y, dy = _invert_and_grad(layer, y, dy, dlog_det, grads)
    return dy


def _backward_by_recompute(steps, y, inputs, dy, dlog_det, grads):
    for step, x in zip(reversed(steps), reversed(inputs)):
        with _ordered_after(dy):
            dy = _grad_through(step, x, dy, dlog_det, grads)
    return dy


def reversible_forward(steps, x):
    """Run flow steps `steps` (each with forward/inverse) on x with O(1)-in-depth stored activations.

    Returns (y, log_det [B]) exactly like applying the steps in order and summing their log-dets.
    """
    return _with_custom_backward(steps, x, _backward_by_inversion, keep_inputs=False)


def checkpointed_forward(steps, x):
    """Like `reversible_forward`, but keeps each step's input instead of inverting (checkpointing).

    Stored activations: one [B, h, w, c] tensor per step (instead of every intermediate of the
    coupling networks); backward recomputes each step's forward once. A drop-in for the
    'checkpoint' memory mode with tracing linear in depth.
    """
    return _with_custom_backward(steps, x, _backward_by_recompute, keep_inputs=True)
