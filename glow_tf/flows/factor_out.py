"""Factor-out layers (the multi-scale architecture, paper figure 2b): one contract for `Split`
and `TopPrior`.

    forward(z, y=None)          -> (z_kept or None, ε, fldj [B])
    inverse(z_kept, ε, y=None)  -> (z, ildj [B]),            ildj = -fldj

A factor-out layer takes part of z out of the flow and standardises it,

    ε = (z_out - μ) / σ,   fldj = -Σ log σ,   log p(z_out | z_kept, y) = log N(ε; 0, I) + fldj

with (μ, log σ) from the part it keeps (`Split`: p(z_2 | z_1)) or, for the last latent, which
keeps nothing (`TopPrior`: z_kept is None), from learned constants and the label y. Both build
on first use from either direction's tensors, as the flow layers do.
"""

import keras


class FactorOut(keras.layers.Layer):
    """Base class of Split and TopPrior (the contract above).

    Subclasses implement `_forward(z, y)`, `_inverse(z_kept, eps, y)` and
    `_input_shape(z_kept, eps)` (the shape of z that `inverse` rebuilds, for building).

    Args:
        **kwargs: `keras.layers.Layer` arguments (`name`, ...).
    """

    def forward(self, z, y=None):
        if not self.built:
            self.build(tuple(z.shape))
        return self._forward(z, y)

    def inverse(self, z_kept, eps, y=None):
        if not self.built:
            self.build(self._input_shape(z_kept, eps))
        return self._inverse(z_kept, eps, y)

    def call(self, z, y=None):
        return self.forward(z, y)
