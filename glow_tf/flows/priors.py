"""The prior on the top-level latent, and the optional class head (the original `prior()`).

    p(z) = N(z; μ, σ²),   ε = (z - μ) / σ,   log-det = -sum(log σ)

with (μ, log σ) = 0 (standard normal), learned (`learntop`), and/or a learned function of the
one-hot class label (`ycond`: class-conditional Glow). With classes, a zero-initialised linear
classifier on the spatial mean of z gives logits for the `weight_y` loss term.

`learntop`, as in the original (learntop_form='conv'): (μ, log σ) = ZeroConv3x3(0), a
zero-initialised 3x3 convolution applied to a zero tensor. Its input carries no information, so
what it learns is a per-channel constant (its bias) plus, with edge bias, a border pattern (the
border channel's taps): a constrained prior with few parameters. learntop_form='position' is one
free (μ, log σ) per position and channel, which glow_tf used before it followed the original; it
is kept so those models still load.

The learntop convolution and the class head's two dense maps are injected
(`glow_tf.flows.networks`); the model passes the original's zero-initialised layers
(`glow_tf.nets.factories.ZeroConvs`, `ZeroDenses`).
"""

import keras
import tensorflow as tf

from glow_tf.errors import ArgumentError
from glow_tf.flows.base import batch_size, split_channels, sum_except_batch
from glow_tf.flows.factor_out import FactorOut
from glow_tf.flows.networks import (
    check_network,
    deserialize_network,
    make_network,
    serialize_network,
)

LEARNTOP_FORMS = ('conv', 'position')


def standard_normal_log_prob(eps):
    """sum over non-batch axes of log N(ε; 0, 1). [B, ...] -> [B] (nats)."""
    return sum_except_batch(-0.5 * (tf.math.log(2.0 * 3.141592653589793) + tf.square(eps)))


def log_prob_from_latents(eps_list, log_det):
    """The change of variables (paper, eq. 3) for a flow onto standard-normal latents:

        log p(x) = log|det dε/dx| + Σ_l log N(ε_l; 0, I)

    eps_list: the latents ε_l, each [B, ...]; log_det: [B]. Returns [B] (nats).
    """
    return log_det + tf.add_n([standard_normal_log_prob(e) for e in eps_list])


@keras.saving.register_keras_serializable(package='glow_tf')
class TopPrior(FactorOut):
    """Standardises the top latent z [B, h, w, c] to ε [B, h, w, c] given an optional label y [B]:
    a `FactorOut` that keeps nothing (forward returns (None, ε, fldj)).

    Args:
        learntop: learn (μ, log σ) of the top latent.
        n_classes: > 0 for a class-conditional prior and a class head (`ycond`).
        learntop_form: 'conv' (the original's) or 'position' (module docstring).
        network: with learntop 'conv': the network applied to zeros, [.., 2c] -> [.., 2c]
            (a Keras layer or a factory, `glow_tf.flows.networks`; e.g.
            `glow_tf.nets.ZeroConvs()`).
        head: with classes: a factory (in_features, units, name) -> dense layer, for the label
            map [B, n_classes] -> [B, 2c] and the classifier [B, c] -> [B, n_classes] (e.g.
            `glow_tf.nets.ZeroDenses()`).
    """

    def __init__(
        self, learntop=False, n_classes=0, learntop_form='conv', network=None, head=None, **kwargs
    ):
        super().__init__(**kwargs)
        TopPrior.check_arguments(n_classes, learntop_form)
        self.learntop = bool(learntop)
        self.n_classes = int(n_classes)
        self.learntop_form = learntop_form
        conv = self.learntop and learntop_form == 'conv'
        self.network = check_network(network, 'network', 'TopPrior with learntop', conv)
        self.head = check_network(head, 'head', 'TopPrior with classes', self.n_classes > 0)

    @staticmethod
    def check_arguments(n_classes, learntop_form='conv'):
        """ArgumentError('n_classes' / 'learntop_form') for a negative class count or an
        unknown learntop form."""
        if int(n_classes) < 0:
            raise ArgumentError(
                'n_classes', f"n_classes must be >= 0 (0 = unconditional), got {n_classes}"
            )
        if learntop_form not in LEARNTOP_FORMS:
            raise ArgumentError(
                'learntop_form',
                f"learntop_form must be one of {LEARNTOP_FORMS}, got {learntop_form!r}",
            )

    def build(self, input_shape):
        h, w, c = (int(d) for d in input_shape[1:])
        self.channels, self.top_hw = c, (h, w)
        if self.learntop and self.learntop_form == 'position':
            self.top = self.add_weight(name='top', shape=(h, w, 2 * c), initializer='zeros')
        elif self.learntop:
            self.top_conv = make_network(self.network, 2 * c, 2 * c, 'top_conv', (None, h, w))
        if self.n_classes:
            n = self.n_classes
            self.label_map = make_network(self.head, n, 2 * c, 'label_map', (None,))
            self.classifier = make_network(self.head, c, n, 'classifier', (None,))

    def mean_log_scale(self, batch, y=None):
        """(μ, log σ), each [B, h, w, c] (broadcastable)."""
        h = tf.zeros([1, 1, 1, 2 * self.channels])
        if self.learntop and self.learntop_form == 'position':
            h = h + self.top[None]
        elif self.learntop:
            h = h + self.top_conv(tf.zeros([1, *self.top_hw, 2 * self.channels]))
        if self.n_classes:
            if y is None:
                raise ValueError(
                    f"this model is class-conditional (n_classes={self.n_classes}): "
                    "pass integer labels y of shape [batch]"
                )
            onehot = tf.one_hot(tf.cast(y, tf.int32), self.n_classes)
            h = h + self.label_map(onehot)[:, None, None, :]
        h = h + tf.zeros([batch, 1, 1, 1])
        return split_channels(h, self.channels)

    def _build_for(self, t):
        """Build from the top latent's shape [B, h, w, c] on first use, as Keras layers do."""
        if not self.built:
            self.build(tuple(t.shape))

    def _forward(self, z, y=None):
        """z -> (None, ε, fldj [B])."""
        mean, log_scale = self.mean_log_scale(batch_size(z), y)
        eps = (z - mean) * tf.exp(-log_scale)
        return None, eps, -sum_except_batch(log_scale + tf.zeros_like(z))

    def _inverse(self, z_kept, eps, y=None):
        """(None, ε) -> (z, ildj [B])."""
        mean, log_scale = self.mean_log_scale(batch_size(eps), y)
        z = mean + tf.exp(log_scale) * eps
        return z, sum_except_batch(log_scale + tf.zeros_like(eps))

    @staticmethod
    def _input_shape(z_kept, eps):
        return tuple(eps.shape)

    def class_logits(self, z):
        """Classifier logits [B, n_classes] from the top latent z [B, h, w, c]."""
        self._build_for(z)
        return self.classifier(tf.reduce_mean(z, axis=[1, 2]))

    def call(self, z, y=None):
        """Keras's call: forward's (ε, fldj), without the kept part (there is none)."""
        return self.forward(z, y)[1:]

    def compute_output_shape(self, input_shape):
        """z [B, h, w, c] -> (ε [B, h, w, c], fldj [B]) (of `call`)."""
        return tuple(input_shape), (input_shape[0],)

    def get_config(self):
        return {
            **super().get_config(),
            'learntop': self.learntop,
            'n_classes': self.n_classes,
            'learntop_form': self.learntop_form,
            'network': serialize_network(self.network),
            'head': serialize_network(self.head),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ('network', 'head'):
            config[key] = deserialize_network(config.get(key))
        return cls(**config)
