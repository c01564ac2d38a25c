"""Glow in TFP's vocabulary: a bijector from standard-normal noise to images.

TFP's convention is generative: `forward` maps the base sample to data. Here the base sample is
the per-level latents ε_1..ε_L packed into one image-shaped tensor (concatenate their flattened
values and reshape to [H, W, C]), so event shapes are the image shape on both sides:

    forward(ε) = x = model.decode(unpack(ε))         forward_log_det_jacobian = log|det dx/dε|
    inverse(x) = ε = pack(model.encode(x))           inverse_log_det_jacobian = log|det dε/dx|

Conditional priors (learned top, class-conditional, split priors) are folded into the bijector,
as TFP's own Glow does. Class labels pass as the bijector kwarg `conditional_input` (TFP's name
for a conditional bijector's input; `y` is taken by `Bijector.inverse(y)`):
`model.distribution.log_prob(x, bijector_kwargs={'conditional_input': labels})`.
"""

import tensorflow as tf
import tensorflow_probability as tfp

from glow_tf.model.latents import pack_latents, unpack_latents

tfb, tfd = tfp.bijectors, tfp.distributions


class GlowBijector(tfb.Bijector):
    """Bijector view of a `glow_tf.Glow`; event_ndims = 3 ([H, W, C]) on both sides.

    Args:
        model: the `glow_tf.Glow` (its weights are used, not copied).
        validate_args: TFP's flag (no extra checks here).
        name: the bijector's name scope.
    """

    def __init__(self, model, validate_args=False, name='glow'):
        parameters = dict(locals())
        self._model = model
        with tf.name_scope(name) as name:
            super().__init__(
                forward_min_event_ndims=3,
                inverse_min_event_ndims=3,
                validate_args=validate_args,
                parameters=parameters,
                name=name,
            )

    @property
    def model(self):
        return self._model

    def _unpack(self, eps):
        return unpack_latents(eps, self._model.latent_shapes)

    def _forward(self, eps, conditional_input=None):
        return self._model.decode(self._unpack(eps), conditional_input)

    def _inverse(self, x, conditional_input=None):
        return pack_latents(self._model.encode(x, conditional_input), self._model.image_shape)

    def _forward_log_det_jacobian(self, eps, conditional_input=None):
        return self._model.decode_with_log_det(self._unpack(eps), conditional_input)[1]

    def _inverse_log_det_jacobian(self, x, conditional_input=None):
        return self._model.encode_with_log_det(x, conditional_input)[1]


def glow_distribution(model):
    """p(x) as a TransformedDistribution: N(0, I) on image-shaped ε, pushed through the flow."""
    base = tfd.Sample(tfd.Normal(0.0, 1.0), sample_shape=model.image_shape)
    return tfd.TransformedDistribution(base, GlowBijector(model), name='glow')
