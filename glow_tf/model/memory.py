"""Memory modes: what the backward pass through a stack of flow steps keeps and recomputes.

    'plain'       autodiff keeps every activation of every step            (chain_forward)
    'checkpoint'  keeps each step's input, recomputes the step             (checkpointed_forward)
    'reversible'  keeps only the stack's output, reconstructs each input   (reversible_forward)

Each is a function (steps, x [B, h, w, c]) -> (y, log_det [B]) with the same values as applying
the steps in order and summing their log-dets; `steps_runner(mode)` picks one (a `Level` holds
the one of its memory mode).

Reversible: a flow step is a bijection, so its input can be recomputed from its output.
`reversible_forward` runs the stack under one `tf.custom_gradient`, so nothing inside it is kept
for the backward pass except the stack's *output*. The backward pass walks every step's
`invertible_parts()` in reverse (for a FlowStep: coupling, 1x1 conv / permutation, ActNorm):

    for each layer, last to first:
        (x, dx, variable grads) = layer.reconstruct_and_backprop(y, dy, dlog_det)
        y, dy = x, dx

(`glow_tf.flows.base.FlowLayer`: by default x = inverse(y), then forward(x) re-run under a
GradientTape), so only one layer's activations are alive at a time and the stored activations do
not grow with the number of steps (Gomez et al. 2017, "The Reversible Residual Network";
RealNVP/Glow note the property for invertible networks). `Coupling` overrides the method so the
inverse and the re-run share one evaluation of its network; the cost is then about one extra
coupling-network forward per step plus the cheap inverses of ActNorm and the 1x1 convolution
(docs/performance.md has the measured overhead); the gradients differ from the plain mode's by
the float32 round-off of the reconstruction (tests/test_reversible.py).

Checkpoint: the same machinery storing each step's *input* instead of inverting (per-step
gradient checkpointing with one custom gradient per level, `FlowLayer.recompute_and_backprop`
per step): memory grows with depth by one step input per step, no inverse is needed, and tracing
stays linear in depth (a `tf.recompute_grad` per step walks the whole graph built so far,
quadratic in depth).

Both work eagerly and inside `tf.function`. Keras 3 variables wrap tf.Variables; TF hands
`grad_fn` the tf.Variables read in the forward pass, matched to the layers' variable gradients by
`ref()`.

ActNorm's data-dependent init must not run through here (the model runs `initialize` in plain
mode): a forward pass that changes variables would break the reconstruction.
"""

import contextlib

import tensorflow as tf

from glow_tf.errors import ArgumentError
from glow_tf.flows.base import batch_size, chain_forward
from glow_tf.internals import stop_recording

__all__ = ['MEMORY_MODES', 'steps_runner', 'reversible_forward', 'checkpointed_forward']

MEMORY_MODES = ('plain', 'checkpoint', 'reversible')


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


def _accumulate(grads, var_grads):
    for v, g in var_grads:
        key = v.ref()
        grads[key] = g if key not in grads else grads[key] + g


def _prepare(steps, x):
    steps = list(steps)
    for step in steps:  # build outside the custom gradient: no variable creation inside it
        if not step.built:
            step.build(tuple(x.shape))
    return steps


def _with_custom_backward(steps, x, backward, keep_inputs):
    """Run `steps` on x under one tf.custom_gradient whose backward pass is
    `backward(steps, y, inputs, dy, dlog_det, grads) -> dx` (grads: variable ref -> gradient).

    Only the output y (and the step inputs if keep_inputs) is kept for the backward pass.
    """
    steps = _prepare(steps, x)
    if not steps:
        return x, tf.zeros([batch_size(x)], x.dtype)

    @tf.custom_gradient
    def run(x_in):
        # stop_recording keeps outer tapes from holding the activations; custom_gradient's
        # VariableWatcher still sees the variable reads and passes them to grad_fn.
        inputs = [] if keep_inputs else None
        with stop_recording():
            y, total = chain_forward(steps, x_in, inputs)

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
        for layer in reversed(step.invertible_parts()):
            with _ordered_after(dy):
                y, dy, var_grads = layer.reconstruct_and_backprop(y, dy, dlog_det)
                _accumulate(grads, var_grads)
    return dy


def _backward_by_recompute(steps, y, inputs, dy, dlog_det, grads):
    for step, x in zip(reversed(steps), reversed(inputs)):
        with _ordered_after(dy):
            dy, var_grads = step.recompute_and_backprop(x, dy, dlog_det)
            _accumulate(grads, var_grads)
    return dy


def reversible_forward(steps, x):
    """Run flow steps `steps` (FlowLayers) on x with O(1)-in-depth stored activations.

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


_RUNNERS = {
    'plain': chain_forward,
    'checkpoint': checkpointed_forward,
    'reversible': reversible_forward,
}


def steps_runner(memory_mode):
    """The function (steps, x) -> (y, log_det [B]) of a memory mode (one of MEMORY_MODES)."""
    if memory_mode not in _RUNNERS:
        raise ArgumentError(
            'memory_mode', f"memory_mode must be one of {MEMORY_MODES}, got {memory_mode!r}"
        )
    return _RUNNERS[memory_mode]
