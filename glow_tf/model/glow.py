"""The multi-scale Glow model (paper figure 2b): L levels and a prior on the top latent.

    x --level 0--> z_1 --level 1--> ... --level L-1--> z_L --top prior--> ε_L
          |              |
          +--> ε_1       +--> ε_2 ...          (each level: squeeze -> K steps -> split,
                                                `glow_tf.model.level.Level`; the last one
                                                does not split)

The model is a bijection from the (dequantised) image x to the per-level standard-normal
latents ε_1..ε_L, and

    log p(x) = Σ_l log N(ε_l; 0, I) + Σ (log-dets of every layer)            (paper, eq. 3)

    encode: for level in levels: z, ε, log-det = level.forward(z); then the top prior
    decode: the top prior's inverse, then for level in reversed(levels): z = level.inverse(z, ε)

Shapes for an image [H, W, C]: level l (0-based) runs its steps on [H/2^(l+1), W/2^(l+1), 4·C_l]
with C_0 = C and C_{l+1} = 2·C_l; it factors out ε_l of shape [H/2^(l+1), W/2^(l+1), 2·C_l];
the top latent has shape [H/2^L, W/2^L, 4·C_{L-1}].

Options are checked where they are used, by each layer's `check_arguments`: `Level` depth and
memory_mode; `FlowStep` flow_permutation; `Coupling` flow_coupling; `CouplingNetwork` width;
`TopPrior` n_classes and learntop_form; `Glow` itself image_shape and n_levels (2**n_levels must
divide the image size). `Glow.check_arguments` runs them all without building anything: the
constructor calls it first, and the training config calls it to validate the model flags
(`glow_tf.errors.ArgumentError` names the argument; the config names the flag behind it).
"""

import math

import keras
import numpy as np
import tensorflow as tf

from glow_tf.errors import ArgumentError
from glow_tf.flows.base import batch_size
from glow_tf.flows.coupling import Coupling
from glow_tf.flows.flow_step import FlowStep
from glow_tf.flows.networks import check_network, deserialize_network, serialize_network
from glow_tf.flows.priors import TopPrior, log_prob_from_latents, standard_normal_log_prob
from glow_tf.model.keras_fit import KerasFit
from glow_tf.model.latents import block_latents
from glow_tf.model.level import Level
from glow_tf.model.memory import MEMORY_MODES
from glow_tf.model.objective import check_weight_y, glow_loss
from glow_tf.model.preprocessing import check_n_bits, nats_to_bits_per_dim, preprocess
from glow_tf.model.shared_steps import check_policy as check_shared_steps
from glow_tf.nets.conv_forms import check_policy
from glow_tf.nets.coupling_net import CouplingNetwork
from glow_tf.nets.factories import ZeroConvs, ZeroDenses
from glow_tf.nets.precision import resolve_precision

__all__ = ['Glow', 'MEMORY_MODES', 'check_weight_y', 'glow_loss']


@keras.saving.register_keras_serializable(package='glow_tf')
class Glow(KerasFit, keras.Model):
    """Glow as a Keras model. `call(x, y)` returns log p(x) in nats, shape [B].

    This class is the flow: the bijection, the densities, the data-dependent init and sampling.
    Keras's compile / fit / evaluate / export come from `glow_tf.model.keras_fit.KerasFit`.

    `levels` (L `Level`s) and `top_prior` are the model; `flow_steps` and `splits` are flat
    views of the levels' steps and splits. The constructor creates the layers and calls `build`,
    which creates their weights under the model's name scope (`glow/level0/level0_step0/...`;
    checkpoint keys drop the model's name, `glow_tf.runs.checkpoint_format`).

    Keras tracks the flat views first, then the top prior, then the levels. Keras writes a
    `.keras` file's weights by walking a model's attributes by name, storing each layer under
    the first path that reaches it: the steps under `flow_steps/`, the splits and the top prior
    under `layers/` -- the layout of files written before the model had levels, which so still
    load. `model.layers` lists the steps, splits, top prior and then the levels.

    Args:
        image_shape: (H, W, C) of the images; H and W divisible by 2**n_levels.
        n_levels: L, levels of squeeze -> K steps -> split.
        depth: K, flow steps per level.
        width: hidden channels of every coupling network.
        flow_permutation: '1x1' (invertible 1x1 convolution), 'reverse' or 'shuffle'.
        flow_coupling: 'affine' or 'additive'.
        lu_decomposed: LU-parameterised 1x1 convolutions.
        learntop: learned prior of the top latent (`glow_tf.flows.priors`).
        n_classes: > 0 for a class-conditional model with a class head.
        memory_mode: 'plain', 'checkpoint' or 'reversible' (what the backward pass recomputes);
            can be changed later (`model.memory_mode = ...` sets every level's).
        seed: initialiser seed.
        edge_bias: the original's edge-bias padding in every 3x3 convolution (coupling networks,
            split priors, learntop); False reproduces models saved before glow_tf had it.
        learntop_form: 'conv' (the original's learntop) or 'position' (earlier glow_tf models).
        precision: 'fp32', 'bf16' or 'fp16': what the coupling networks compute in
            (`glow_tf.nets.precision`; the rest of the flow and the weights stay float32); can be
            changed later (`model.precision = ...`).
        conv_forms: 'auto' (each convolution shape in the form that times fastest on this
            machine), 'gemm' or 'native' (`glow_tf.nets.conv_forms`); can be changed later.
        shared_steps: when each level's K flow steps run as K calls of one traced step function
            (a first call about half as long): 'inference' (compiled encoding, decoding and
            test passes), 'always' (training steps too: their first call halves, each later
            step costs 3-7 % more) or 'never' (`glow_tf.model.shared_steps`); can be changed
            later.
        coupling_network: None for the paper's NN() of `width` channels, or your own coupling
            network for every step: a factory (in_channels, out_channels, name) -> Keras layer
            (`glow_tf.flows.networks`; register it with Keras to save the model). `width`,
            `precision` and `conv_forms` then do not apply to the couplings.
    """

    def __init__(
        self,
        image_shape=(32, 32, 3),
        n_levels=3,
        depth=32,
        width=512,
        flow_permutation='1x1',
        flow_coupling='affine',
        lu_decomposed=False,
        learntop=False,
        n_classes=0,
        memory_mode='plain',
        seed=0,
        edge_bias=True,
        learntop_form='conv',
        precision='fp32',
        conv_forms='auto',
        coupling_network=None,
        shared_steps='inference',
        **kwargs,
    ):
        self.check_arguments(
            image_shape,
            n_levels,
            depth,
            width,
            flow_permutation,
            flow_coupling,
            n_classes,
            memory_mode,
            learntop_form,
        )
        super().__init__(**kwargs)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.n_levels, self.depth, self.width = int(n_levels), int(depth), int(width)
        self.flow_permutation, self.flow_coupling = flow_permutation, flow_coupling
        self.lu_decomposed, self.learntop = bool(lu_decomposed), bool(learntop)
        self.n_classes, self.seed = int(n_classes), int(seed)
        self.edge_bias, self.learntop_form = bool(edge_bias), learntop_form
        self.coupling_network = check_network(coupling_network, 'coupling_network', 'Glow', False)

        top_prior = TopPrior(
            learntop=self.learntop,
            n_classes=self.n_classes,
            learntop_form=learntop_form,
            network=ZeroConvs(self.edge_bias),
            head=ZeroDenses(),
            name='top_prior',
        )
        levels, shape = [], self.image_shape
        for index in range(self.n_levels):
            level = Level(
                shape,
                self.depth,
                split=index < self.n_levels - 1,
                memory_mode=memory_mode,
                width=self.width,
                permutation=flow_permutation,
                coupling=flow_coupling,
                lu_decomposed=self.lu_decomposed,
                seed=self.seed * 100003 + index * self.depth,
                edge_bias=self.edge_bias,
                coupling_network=self.coupling_network,
                name=f'level{index}',
            )
            levels.append(level)
            shape = level.output_z_shape
        self.top_shape = shape
        # The order Keras tracks the layers in is the `.keras` weight layout (class docstring).
        self.flow_steps = [step for level in levels for step in level.steps]
        self.splits = [level.split for level in levels if level.split is not None]
        self.top_prior = top_prior
        self.levels = levels
        self.latent_shapes = tuple(
            [level.eps_shape for level in levels if level.eps_shape is not None] + [shape]
        )
        self.build((None,) + self.image_shape)
        self.precision = precision
        self.conv_forms = conv_forms
        self.shared_steps = shared_steps

    @staticmethod
    def check_arguments(
        image_shape=None,
        n_levels=3,
        depth=32,
        width=512,
        flow_permutation='1x1',
        flow_coupling='affine',
        n_classes=0,
        memory_mode='plain',
        learntop_form='conv',
    ):
        """Check the constructor's arguments without building anything: `glow_tf.errors.
        ArgumentError` (a ValueError naming the argument) for the first invalid one.

        The constructor runs this first; each check is the one its layer runs (`Level`,
        `FlowStep`, `Coupling`, `CouplingNetwork`, `TopPrior`), so a layer used on its own
        rejects the same values. `runs.config` calls it to validate the model flags, with
        `image_shape=None` (skipping the image checks) while the image size is still unknown.
        """
        if int(n_levels) < 1:
            raise ArgumentError('n_levels', f"n_levels must be >= 1, got {n_levels}")
        if image_shape is not None:
            if len(image_shape) != 3 or any(int(d) <= 0 for d in image_shape):
                raise ArgumentError(
                    'image_shape',
                    "image_shape must be (height, width, channels) with positive sizes, "
                    f"got {image_shape!r}",
                )
            factor = 2 ** int(n_levels)
            if int(image_shape[0]) % factor or int(image_shape[1]) % factor:
                raise ArgumentError(
                    'image_shape',
                    f"image_shape {tuple(image_shape)}: height and width must be divisible by "
                    f"2**n_levels = {factor} (n_levels={n_levels}); each level halves them",
                )
        Level.check_arguments(depth, memory_mode)
        CouplingNetwork.check_arguments(width)
        FlowStep.check_arguments(flow_permutation)
        Coupling.check_arguments(flow_coupling)
        TopPrior.check_arguments(n_classes, learntop_form)

    def build(self, input_shape):
        """Keras build: every level's and the top prior's weights, for images [B, *image_shape].

        The constructor calls it (the shapes follow from `image_shape`), so a new Glow is built,
        `summary()` lists every layer's output shape and `export()` knows its input.
        """
        if tuple(input_shape[1:]) != self.image_shape:
            raise ValueError(
                f"Glow with image_shape {self.image_shape} cannot be built for input "
                f"shape {tuple(input_shape)}"
            )
        for level in self.levels:
            level.build((None,) + level.level_input_shape)
        self.top_prior.build((None,) + self.top_shape)

    @property
    def memory_mode(self):
        """'plain', 'checkpoint' or 'reversible'; setting it sets every level's."""
        return self.levels[0].memory_mode

    @memory_mode.setter
    def memory_mode(self, mode):
        for level in self.levels:
            level.memory_mode = mode

    @property
    def precision(self):
        """'fp32', 'bf16' or 'fp16' (`glow_tf.nets.precision`); setting it sets every coupling
        network's compute precision (the weights are float32 in every precision). A tf.function
        traced before the change keeps the precision it was traced in."""
        return self._precision

    @precision.setter
    def precision(self, precision):
        # ArgumentError('precision') for an unknown name; 'auto' looks at the hardware once here,
        # not once per coupling network
        resolved = resolve_precision(precision)
        for step in self.flow_steps:
            if hasattr(step.coupling.nn, 'set_precision'):  # the paper's NN(), not a user's
                step.coupling.nn.set_precision(resolved)
        self._precision = precision
        self._decode_fn = None  # `sample` traces its decoder again in the new precision

    @property
    def shared_steps(self):
        """'inference', 'always' or 'never' (`glow_tf.model.shared_steps`); setting it sets every
        level's."""
        return self._shared_steps

    @shared_steps.setter
    def shared_steps(self, policy):
        check_shared_steps(policy)
        for level in self.levels:
            level.shared_steps.policy = policy
        self._shared_steps = policy
        self._decode_fn = None

    @property
    def conv_forms(self):
        """'auto', 'gemm' or 'native' (`glow_tf.nets.conv_forms`); setting it sets every
        network's and prior's."""
        return self._conv_forms

    @conv_forms.setter
    def conv_forms(self, policy):
        check_policy(policy)
        for step in self.flow_steps:
            if hasattr(step.coupling.nn, 'set_conv_forms'):
                step.coupling.nn.set_conv_forms(policy)
        priors = [split.prior for split in self.splits]
        priors += [getattr(self.top_prior, 'top_conv', None)]
        for prior in priors:
            if hasattr(prior, 'conv_forms'):  # the original's ZeroConv2D priors
                prior.conv_forms = policy
        self._conv_forms = policy
        self._decode_fn = None

    @property
    def n_dims(self):
        """D = H·W·C, the number of sub-pixels."""
        return int(np.prod(self.image_shape))

    # ---- the bijection x <-> ε ----------------------------------------------------------------
    def encode_with_log_det(self, x, y=None):
        """x [B, H, W, C] -> (list of ε_l, log|det dε/dx| [B], top latent z_L)."""
        self._check_image(x)
        z, total, eps_list = x, tf.zeros([batch_size(x)]), []
        for level in self.levels:
            z, eps, log_det = level.forward(z)
            total += log_det
            if eps is not None:
                eps_list.append(eps)
        _, eps, log_det = self.top_prior.forward(z, y)
        eps_list.append(eps)
        return eps_list, total + log_det, z

    def decode_with_log_det(self, eps_list, y=None):
        """list of ε_l -> (x [B, H, W, C], log|det dx/dε| [B])."""
        self._check_latents(eps_list)
        z, total = self.top_prior.inverse(None, eps_list[-1], y)
        level_eps = list(eps_list[:-1]) + [None]  # the last level does not split
        for level, eps in zip(reversed(self.levels), reversed(level_eps)):
            z, log_det = level.inverse(z, eps)
            total += log_det
        return z, total

    def encode(self, x, y=None):
        """Preprocessed images [B, H, W, C] -> standard-normal latents ε_l (`latent_shapes`)."""
        return self.encode_with_log_det(x, y)[0]

    def decode(self, eps_list, y=None):
        """list of ε_l -> preprocessed images [B, H, W, C]; the exact inverse of `encode`."""
        return self.decode_with_log_det(eps_list, y)[0]

    # ---- densities ----------------------------------------------------------------------------
    def log_prob(self, x, y=None):
        """Exact log-density (nats) of continuous inputs x [B, H, W, C] -> [B]."""
        eps_list, log_det, _ = self.encode_with_log_det(x, y)
        return log_prob_from_latents(eps_list, log_det)

    def call(self, x, y=None):
        return self.log_prob(x, y)

    def objective(
        self, x_uint8, y=None, n_bits_x=8, noise=True, with_error=False, with_levels=False
    ):
        """Training objective terms: (bits_x [B], bits_y [B]) (+ error [B] with `with_error`).

        bits_x: dequantised negative log-likelihood in bits per sub-pixel;
        bits_y: classifier cross-entropy in bits (zeros for an unconditional model);
        error: 1 where the class head's argmax is not y (the original's pred_loss; ones for an
        unconditional model, as the original logged).
        Loss = mean(glow_loss(bits_x, bits_y, weight_y)) = mean(bits_x) + weight_y · mean(bits_y).
        `noise`: the dequantisation draw, as in `preprocess` (True, or a U[0, 1) tensor).
        `with_levels`: also bits_x split by level [B, L] (`bits_per_dim_per_level`), last.
        """
        x = preprocess(x_uint8, n_bits_x, noise=noise)
        if with_levels:
            parts, z_top = self._encode_per_level(x, y)
            log_prob = tf.reduce_sum(parts, axis=1)
        else:
            eps_list, log_det, z_top = self.encode_with_log_det(x, y)
            log_prob = log_prob_from_latents(eps_list, log_det)
        bits_x = nats_to_bits_per_dim(log_prob, self.n_dims, n_bits_x)
        if not self.n_classes:
            terms = (bits_x, tf.zeros_like(bits_x), tf.ones_like(bits_x))
        else:
            labels = tf.cast(y, tf.int32)
            logits = self.top_prior.class_logits(z_top)
            bits_y = tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=labels, logits=logits
            ) / math.log(2.0)
            wrong = tf.not_equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels)
            terms = (bits_x, bits_y, tf.cast(wrong, tf.float32))
        terms = terms if with_error else terms[:2]
        return terms + (self._parts_to_bits(parts, n_bits_x),) if with_levels else terms

    def bits_per_dim(self, x_uint8, y=None, n_bits_x=8):
        """Dequantised NLL of uint8 images [B, H, W, C] in bits per sub-pixel -> [B]."""
        x = preprocess(x_uint8, n_bits_x, noise=True)
        return nats_to_bits_per_dim(self.log_prob(x, y), self.n_dims, n_bits_x)

    def log_prob_per_level(self, x, y=None):
        """log p(x) of preprocessed x [B, H, W, C] split into one part per level -> [B, L] (nats).

        Level l's part is the log-det of its squeeze, K steps and split plus the log-density of
        the latent it factors out; the last level's part adds the top prior's log-det and
        log N(ε_L; 0, I):

            part_l     = log|det_l| + log N(ε_l; 0, I)                          (l < L-1)
            part_{L-1} = log|det_{L-1}| + log|det_top| + log N(ε_L; 0, I)
            Σ_l part_l = log p(x)                                                   (eq. 3)
        """
        return self._encode_per_level(x, y)[0]

    def _encode_per_level(self, x, y=None):
        """(`log_prob_per_level` [B, L], the top latent z_L)."""
        self._check_image(x)
        z, parts = x, []
        for level in self.levels:
            z, eps, log_det = level.forward(z)
            parts.append(log_det + (0.0 if eps is None else standard_normal_log_prob(eps)))
        z_top = z
        _, eps, log_det = self.top_prior.forward(z, y)
        parts[-1] = parts[-1] + log_det + standard_normal_log_prob(eps)
        return tf.stack(parts, axis=1), z_top

    def latent_dims_per_level(self):
        """d_l, the sub-pixels level l factors out (the top latent's for the last level);
        Σ d_l = D."""
        return [int(np.prod(shape)) for shape in self.latent_shapes]

    def bits_per_dim_per_level(self, x_uint8, y=None, n_bits_x=8, noise=True):
        """`bits_per_dim` of uint8 images [B, H, W, C] split into one part per level -> [B, L],
        the top level (with the top prior) last; the parts sum to the total bits/dim.

        With part_l from `log_prob_per_level` and d_l = `latent_dims_per_level()[l]`, the
        quantisation term D·log(n_bins) of `nats_to_bits_per_dim` is shared out by latent size:

            bits_l = -(part_l - d_l · log n_bins) / (D · log 2),     Σ_l bits_l = bits/dim

        `noise`: the dequantisation draw, as in `preprocess` (True: U[0, 1); 0.5: bin centres).
        """
        x = preprocess(x_uint8, n_bits_x, noise=noise)
        return self._parts_to_bits(self.log_prob_per_level(x, y), n_bits_x)

    def _parts_to_bits(self, parts, n_bits_x):
        dims = tf.constant(self.latent_dims_per_level(), tf.float32)
        n_bins = check_n_bits(n_bits_x)
        return -(parts - dims * math.log(n_bins)) / (self.n_dims * math.log(2.0))

    def class_logits(self, x, y_for_prior=None):
        """Classifier logits [B, n_classes] of preprocessed x (class-conditional models only)."""
        if not self.n_classes:
            raise ValueError("class_logits needs a class-conditional model (n_classes > 0)")
        return self.top_prior.class_logits(self.encode_with_log_det(x, y_for_prior)[2])

    # ---- initialisation and sampling ----------------------------------------------------------
    def actnorm_layers(self):
        """Every ActNorm in the model (flow steps and coupling networks), in forward order."""
        return [layer for level in self.levels for layer in level.actnorm_layers()]

    def initialize(self, x, y=None, reduce_mean=None, force=False):
        """Data-dependent init of every ActNorm from a batch of preprocessed x [B, H, W, C].

        `reduce_mean(t)` averages per-channel statistics across workers (Horovod); each ActNorm
        is initialised from the statistics of its input after the earlier layers were initialised.
        Runs eagerly in plain mode. Returns the batch's log p(x) after init, shape [B].

        A model whose ActNorms were already initialised (by an earlier `initialize`, or restored
        from a checkpoint / saved model: each ActNorm's `initialized` flag is a saved variable) is
        refused with a ValueError, since the init would overwrite trained scales and biases;
        `force=True` re-initialises anyway.
        """
        actnorms = self.actnorm_layers()
        done = [layer.name for layer in actnorms if bool(layer.initialized.numpy())]
        if done and not force:
            raise ValueError(
                f"Glow.initialize: {len(done)} of {len(actnorms)} ActNorm layers are already "
                f"initialised (e.g. {done[0]!r}; restored or trained weights): data-dependent init "
                "would overwrite them. Check `model.is_initialized` first, or pass force=True to "
                "re-initialise on purpose"
            )
        for layer in actnorms:
            layer.begin_data_init(reduce_mean)
        # the statistics are taken in plain mode and float32, whatever the model trains in
        mode, self.memory_mode = self.memory_mode, 'plain'
        precision, self.precision = self.precision, 'fp32'
        try:
            log_prob = self.log_prob(tf.convert_to_tensor(x, tf.float32), y)
        finally:
            self.memory_mode = mode
            self.precision = precision
        pending = [layer.name for layer in actnorms if layer.awaiting_data_init]
        if pending:
            raise RuntimeError(f"data-dependent init did not reach ActNorm layers {pending}")
        return log_prob

    def sample_latents(self, n, temperature=1.0, seed=None):
        """ε_l ~ N(0, T² I) for every level. With an int `seed` they follow the latent random
        scheme of `glow_tf.model.latents` (image i depends only on (seed, i, T)), the one
        sample.py, the training grids and exported models use."""
        if seed is not None:
            return block_latents(self.latent_shapes, int(seed), 0, int(n), temperature)
        return [tf.random.normal((n,) + tuple(shape)) * temperature for shape in self.latent_shapes]

    def sample(self, n, temperature=1.0, y=None, seed=None):
        """n samples at `temperature`, as preprocessed images [n, H, W, C] in about [-0.5, 0.5]."""
        if self.n_classes and y is None:
            raise ValueError(
                f"this model is class-conditional (n_classes={self.n_classes}): "
                "sample(n, y=labels) needs integer labels of shape [n]"
            )
        if self._decode_fn is None:
            self._decode_fn = tf.function(self.decode, reduce_retracing=True, autograph=False)
        eps = self.sample_latents(int(n), temperature, seed)
        return self._decode_fn(eps, y) if y is not None else self._decode_fn(eps)

    @property
    def is_initialized(self):
        """True once the data-dependent ActNorm init has run (or its result was restored)."""
        return all(bool(layer.initialized.numpy()) for layer in self.actnorm_layers())

    # ---- checks -------------------------------------------------------------------------------
    def _check_image(self, x):
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(
                f"expected images of shape [batch, {', '.join(map(str, self.image_shape))}]"
                f", got {tuple(x.shape)}"
            )

    def _check_latents(self, eps_list):
        got = [tuple(e.shape[1:]) for e in eps_list]
        if got != [tuple(s) for s in self.latent_shapes]:
            raise ValueError(
                f"expected latents of shapes {list(self.latent_shapes)} (per level, "
                f"without batch), got {got}"
            )

    # ---- TFP view and serialisation -----------------------------------------------------------
    @property
    def bijector(self):
        """The flow as a `tfp.bijectors.Bijector`: standard-normal ε (image-shaped) -> image."""
        from glow_tf.model.bijector import GlowBijector

        return GlowBijector(self)

    @property
    def distribution(self):
        """`tfd.TransformedDistribution(N(0, I) over image-shaped ε, self.bijector)`."""
        from glow_tf.model.bijector import glow_distribution

        return glow_distribution(self)

    def get_config(self):
        return {
            'image_shape': list(self.image_shape),
            'n_levels': self.n_levels,
            'depth': self.depth,
            'width': self.width,
            'flow_permutation': self.flow_permutation,
            'flow_coupling': self.flow_coupling,
            'lu_decomposed': self.lu_decomposed,
            'learntop': self.learntop,
            'n_classes': self.n_classes,
            'memory_mode': self.memory_mode,
            'seed': self.seed,
            'edge_bias': self.edge_bias,
            'learntop_form': self.learntop_form,
            'precision': self.precision,
            'conv_forms': self.conv_forms,
            'shared_steps': self.shared_steps,
            'coupling_network': serialize_network(self.coupling_network),
            'name': self.name,
        }

    @classmethod
    def from_config(cls, config):
        network = deserialize_network(config.get('coupling_network'))
        return cls(**{**config, 'coupling_network': network})
