"""Weight terms: the part of a layer's computation that depends on its weights alone.

    layer(x) = apply(x, terms),   terms = weight_terms(weight_values(), direction, input_shape)

For ActNorm the terms are exp(±log s), b and Σ log s; for the 1x1 convolution the kernel W^T (or
W^{-1}ᵀ when decoding) and log |det W|; for a coupling network its three convolutions' kernels with
the ActNorms folded in, laid out for their forms, and the edge-bias maps. Nothing in them depends
on x, so a model can compute them for all K steps of a level at once (`weight_terms` accepts
values stacked along a leading axis) and run one traced step function K times
(`glow_tf.model.shared_steps`).

A layer computes its own terms when it runs (`current_terms`), unless terms were given to it
for the duration of a trace (`given_terms`): then it must read no variable of its own.
"""

import contextlib

FORWARD, INVERSE = 'forward', 'inverse'
DIRECTIONS = (FORWARD, INVERSE)


class WeightTerms:
    """Mixin for a Keras layer whose computation splits into weight terms and their use.

    Subclasses implement:
        weight_values() -> nested structure of tensors: the weights as read now.
        weight_terms(values, direction, input_shape) -> nested structure: what `call` needs of
            the weights for inputs of `input_shape` in `direction` ('forward' or 'inverse').
            Every tensor in `values` may carry extra leading axes ([K, ...]: K steps' weights
            stacked); the terms then carry the same leading axes.
    """

    _given_terms = None

    def weight_values(self):
        raise NotImplementedError

    def weight_terms(self, values, direction, input_shape):
        raise NotImplementedError

    def current_terms(self, direction, input_shape):
        """The terms given for this trace (`given_terms`), else computed from the weights now."""
        if self._given_terms is not None:
            return self._given_terms
        return self.weight_terms(self.weight_values(), direction, input_shape)

    @contextlib.contextmanager
    def given_terms(self, terms):
        """Context: `current_terms` returns `terms` (one layer's, no leading axes)."""
        # object.__setattr__: Keras would wrap a dict or list attribute for tracking
        object.__setattr__(self, '_given_terms', terms)
        try:
            yield
        finally:
            object.__setattr__(self, '_given_terms', None)
