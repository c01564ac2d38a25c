"""One traced flow step per level: the K steps of a level run one shared step function.

    terms = weight_terms(stack(weights of steps 1..K))      (all K steps at once, [K, ...])
    for k in 1..K:   x, log-det_k = step_fn(x, terms[k])     (one graph, called K times)

The K steps of a level have the same shapes and differ only in their weights, yet tracing a model
builds each step's operations anew, and TensorFlow's graph optimiser then works through all of
them: the first call of a training step or a decoder costs time linear in the number of steps
(tracing plus optimisation; about a minute for the paper's depth 32). Here a level traces its
first step once, as a function of its input and of its *weight terms* (`glow_tf.flows.terms`:
the ActNorm scales, the 1x1 kernels and log-determinants, the coupling networks' folded and
rearranged kernels and edge-bias maps), and calls it K times. The step function is not inlined,
so it is optimised once; its gradient is one function as well.

The terms are computed outside it, for all K steps together from their weights stacked along a
leading axis, so the work that depends on the weights alone does not wait inside each call (it
runs alongside the previous steps' convolutions) and adds a few operations per level, not per
step. Same values as running the steps one by one (`chain_forward` / `chain_inverse`), up to
float32 summation order.

When (`SharedSteps.policy`, the model's `shared_steps`): 'inference' (the default) while a graph
without a gradient tape is traced -- decoding, sampling, encoding, test passes -- where the
shared function costs nothing per call at batch sizes of 16 and more (a single image decodes
~10 % slower, so the face editor uses 'never'); 'always' also in training steps, whose first
call then takes about half as long but every later step 3-7 % longer (the backward pass of each
step ends as a whole before the previous step's starts, so weight gradients no longer overlap
the next input gradients; docs/performance.md); 'never'. Training uses it in the 'plain' memory
mode only. Eagerly, during the data-dependent init, and for steps whose layers do not split
into weight terms (a custom coupling network) the steps run one by one. A step function that
would read a variable (a layer computing part of its weights itself) is detected after tracing
and the level falls back to running its steps one by one.
"""

import contextlib

import tensorflow as tf

from glow_tf.errors import ArgumentError
from glow_tf.flows.base import chain_forward, chain_inverse
from glow_tf.flows.terms import FORWARD, INVERSE, WeightTerms
from glow_tf.internals import gradients_recorded

POLICIES = ('inference', 'always', 'never')


def check_policy(policy):
    """ArgumentError('shared_steps') unless `policy` is one of POLICIES."""
    if policy not in POLICIES:
        raise ArgumentError(
            'shared_steps', f"shared_steps must be one of {POLICIES}, got {policy!r}"
        )
    return policy


class SharedSteps:
    """Runs a level's flow steps (`FlowStep`s of one shape) through one traced step function.

    Args:
        steps: the level's flow steps, in forward order.
        policy: 'inference', 'always' or 'never' (module docstring); can be changed later.
    """

    def __init__(self, steps, policy='inference'):
        self.steps = list(steps)
        self.policy = check_policy(policy)
        self._functions = {}  # direction -> tf.function
        self._reads_variables = False  # set when a traced step function captured a variable

    def forward(self, x):
        """x [B, h, w, c] -> (y, Σ log-det [B]), like `chain_forward(steps, x)`."""
        if not self.usable():
            return chain_forward(self.steps, x)
        return self._run(x, FORWARD) or chain_forward(self.steps, x)

    def inverse(self, y):
        """y [B, h, w, c] -> (x, Σ log-det [B]), like `chain_inverse(steps, y)`."""
        if not self.usable():
            return chain_inverse(self.steps, y)
        return self._run(y, INVERSE) or chain_inverse(self.steps, y)

    def usable(self):
        """True while a graph is traced (without a gradient tape unless the policy is 'always'),
        for built steps whose layers all have weight terms and no pending data-dependent init."""
        if self.policy == 'never' or self._reads_variables or len(self.steps) < 2:
            return False
        if not tf.inside_function() or (self.policy != 'always' and gradients_recorded()):
            return False
        for step in self.steps:
            if not step.built or any(a.awaiting_data_init for a in step.actnorm_layers()):
                return False
            if not all(isinstance(part, WeightTerms) for part in step.invertible_parts()):
                return False
        return True

    def _run(self, x, direction):
        try:
            values = [
                [
                    tf.nest.map_structure(tf.convert_to_tensor, part.weight_values())
                    for part in parts
                ]
                for parts in (step.invertible_parts() for step in self.steps)
            ]
        except NotImplementedError:  # e.g. a custom coupling network
            return None
        stacked = tf.nest.map_structure(lambda *v: tf.stack(v), *values)
        template = self.steps[0].invertible_parts()
        terms = [
            part.weight_terms(part_values, direction, x.shape)
            for part, part_values in zip(template, stacked)
        ]
        per_step = unstack_terms(terms, len(self.steps))
        step_fn = self._function(direction)
        if step_fn.get_concrete_function(x, per_step[0]).captured_inputs:
            self._reads_variables = True  # the shared graph would use step 1's weights everywhere
            return None
        total = None
        for step_terms in per_step if direction == FORWARD else reversed(per_step):
            x, log_det = step_fn(x, step_terms)
            total = log_det if total is None else total + log_det
        return x, total

    def _function(self, direction):
        if direction not in self._functions:
            step = self.steps[0]

            def run_step(x, terms):
                with contextlib.ExitStack() as given:
                    for part, part_terms in zip(step.invertible_parts(), terms):
                        given.enter_context(part.given_terms(part_terms))
                    return step.forward(x) if direction == FORWARD else step.inverse(x)

            self._functions[direction] = tf.function(
                run_step, autograph=False, experimental_attributes={'_noinline': True}
            )
        return self._functions[direction]


def unstack_terms(terms, count):
    """Terms with a leading axis of `count` -> a list of `count` terms without it (tensors are
    unstacked; Python values such as a convolution's form are the same for every step)."""
    leaves = tf.nest.flatten(terms)
    columns = [
        tf.unstack(leaf, num=count) if isinstance(leaf, tf.Tensor) else [leaf] * count
        for leaf in leaves
    ]
    return [tf.nest.pack_sequence_as(terms, [col[k] for col in columns]) for k in range(count)]
