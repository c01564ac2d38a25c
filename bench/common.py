"""Shared pieces of the benchmark harness: case definitions, model builders (glow_tf and
`tfp.bijectors.Glow` at the matching configuration), training/sampling steps, FLOP counting,
peak-RSS measurement and the fp32 conv-throughput microbenchmark.

Importing this module imports glow_tf's model module (for the memory-mode names, and with it
TensorFlow): the scripts set TensorFlow's environment (log level, BFC allocator) before they
import it. The builders import the rest lazily.
"""

import dataclasses
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from glow_tf.model.glow import MEMORY_MODES  # noqa: E402  (after the log level)


@dataclasses.dataclass
class Case:
    name: str
    image: tuple  # (H, W, C)
    levels: int
    depth: int
    width: int
    batch: int
    coupling: str = 'affine'
    lu: bool = True  # TFP's 1x1 conv is LU-parameterised (ScaleMatvecLU): match it
    description: str = ''

    def as_dict(self):
        d = dataclasses.asdict(self)
        d['image'] = list(self.image)
        return d

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        d['image'] = tuple(d['image'])
        return cls(**d)


FULL_CASES = {
    'a_additive': Case(
        'a_additive',
        (32, 32, 3),
        3,
        8,
        512,
        16,
        'additive',
        description='32x32x3, L=3, K=8, width 512, batch 16, additive',
    ),
    'a_affine': Case(
        'a_affine',
        (32, 32, 3),
        3,
        8,
        512,
        16,
        'affine',
        description='32x32x3, L=3, K=8, width 512, batch 16, affine',
    ),
    'b_cifar': Case(
        'b_cifar',
        (32, 32, 3),
        3,
        32,
        512,
        16,
        'affine',
        description='CIFAR-10 paper config: 32x32x3, L=3, K=32, width 512, batch 16, affine',
    ),
    'c_64': Case(
        'c_64',
        (64, 64, 3),
        4,
        16,
        512,
        8,
        'affine',
        description='64x64x3, L=4, K=16, width 512, batch 8, affine',
    ),
    # small models, where per-step overhead rather than convolution arithmetic sets the pace
    's_mnist': Case(
        's_mnist',
        (32, 32, 1),
        3,
        8,
        64,
        32,
        'affine',
        description="the README main job's model: 32x32x1, L=3, K=8, width 64, batch 32, affine",
    ),
    's_cifar128': Case(
        's_cifar128',
        (32, 32, 3),
        3,
        8,
        128,
        32,
        'affine',
        description='a small CIFAR model: 32x32x3, L=3, K=8, width 128, batch 32, affine',
    ),
}

QUICK_CASES = {
    'a_additive': Case('a_additive', (8, 8, 3), 2, 2, 16, 4, 'additive', description='quick'),
    'a_affine': Case('a_affine', (8, 8, 3), 2, 2, 16, 4, 'affine', description='quick'),
    'b_cifar': Case('b_cifar', (8, 8, 3), 2, 4, 16, 4, 'affine', description='quick'),
    'c_64': Case('c_64', (16, 16, 3), 3, 2, 16, 2, 'affine', description='quick'),
    's_mnist': Case('s_mnist', (8, 8, 1), 2, 2, 8, 4, 'affine', description='quick'),
    's_cifar128': Case('s_cifar128', (8, 8, 3), 2, 2, 16, 4, 'affine', description='quick'),
}

SWEEP_MODES = MEMORY_MODES


# ------------------------------------------------------------------------------------------------
# Memory: peak resident set size of this process (the probes use TF allocator stats instead)
# ------------------------------------------------------------------------------------------------
def _status_kb(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise KeyError(field)


def peak_rss_mb():
    """Peak resident set size of this process so far (MiB)."""
    try:
        return _status_kb('VmHWM') / 1024.0
    except (OSError, KeyError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ------------------------------------------------------------------------------------------------
# Optimiser: the same minimal Adam for both implementations (so the comparison is of the flows)
# ------------------------------------------------------------------------------------------------
class Adam:
    """Adam with TensorFlow's fused ResourceApplyAdam kernel, one op per variable.

    The fused kernel keeps no per-variable temporaries, so each gradient can be applied (and
    freed) as soon as the backward pass produces it: the step's peak memory then reflects the
    activations rather than the optimiser's arithmetic.
    """

    def __init__(self, variables, lr=1e-4, beta1=0.9, beta2=0.999, eps=1e-8):
        import tensorflow as tf

        self.vars = list(variables)
        self.lr, self.b1, self.b2, self.eps = lr, beta1, beta2, eps
        self.m = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.vars]
        self.v = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.vars]
        self.t = tf.Variable(0.0, trainable=False)

    def apply(self, grads):
        import tensorflow as tf

        t = self.t.assign_add(1.0)
        b1_power, b2_power = tf.pow(self.b1, t), tf.pow(self.b2, t)
        for var, g, m, v in zip(self.vars, grads, self.m, self.v):
            if g is None:
                continue
            tf.raw_ops.ResourceApplyAdam(
                var=var.handle,
                m=m.handle,
                v=v.handle,
                beta1_power=b1_power,
                beta2_power=b2_power,
                lr=self.lr,
                beta1=self.b1,
                beta2=self.b2,
                epsilon=self.eps,
                grad=g,
            )


# ------------------------------------------------------------------------------------------------
# Builders
# ------------------------------------------------------------------------------------------------
def random_images(case, n=None, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n or case.batch,) + tuple(case.image), dtype=np.uint8)


class GlowTFRunner:
    """glow_tf.Glow with a tf.function training step (forward, backward, Adam) and sampler."""

    impl = 'glow_tf'

    def __init__(self, case, memory_mode='plain', seed=0, edge_bias=True, **model_options):
        import tensorflow as tf

        import glow_tf
        from glow_tf.variables import tf_variables

        self.case = case
        self.model = glow_tf.Glow(
            image_shape=case.image,
            n_levels=case.levels,
            depth=case.depth,
            width=case.width,
            flow_coupling=case.coupling,
            lu_decomposed=case.lu,
            seed=seed,
            memory_mode=memory_mode,
            edge_bias=edge_bias,
            **model_options,
        )
        x_init = glow_tf.preprocess(tf.constant(random_images(case, 2, seed + 1)))
        self.model.initialize(x_init)  # data-dependent ActNorm init (plain mode, 2 images)
        self.variables = tf_variables(self.model.trainable_variables)
        self.opt = Adam(self.variables)
        self.x = tf.constant(random_images(case, seed=seed))
        model, opt, variables = self.model, self.opt, self.variables

        @tf.function(autograph=False)
        def train_step(x):
            with tf.GradientTape() as tape:
                bits_x, _ = model.objective(x)
                loss = tf.reduce_mean(bits_x)
            grads = tape.gradient(loss, variables)
            opt.apply(grads)
            return loss

        self._train = train_step

    def train(self):
        return float(self._train(self.x))

    def sample(self):
        return self.model.sample(self.case.batch).numpy()

    def n_params(self):
        return int(sum(v.shape.num_elements() for v in self.variables))


def _tfp_additive_network(width):
    """GlowDefaultNetwork with C (not 2C) outputs, which TFP's GlowBlock turns into a Shift."""
    from tensorflow_probability.python.internal import tf_keras

    tfkl = tf_keras.layers

    def make(input_shape, num_hidden=width, kernel_shape=3):
        return tf_keras.Sequential(
            [
                tfkl.Input(shape=input_shape),
                tfkl.Conv2D(
                    num_hidden,
                    kernel_shape,
                    padding='same',
                    kernel_initializer=tf_keras.initializers.he_normal(),
                    activation='relu',
                ),
                tfkl.Conv2D(
                    num_hidden,
                    1,
                    padding='same',
                    kernel_initializer=tf_keras.initializers.he_normal(),
                    activation='relu',
                ),
                tfkl.Conv2D(
                    input_shape[-1],
                    kernel_shape,
                    padding='same',
                    kernel_initializer=tf_keras.initializers.zeros(),
                    bias_initializer=tf_keras.initializers.zeros(),
                ),
            ]
        )

    return make


class TFPRunner:
    """tfp.bijectors.Glow at the matching configuration, same step and optimiser."""

    impl = 'tfp'

    def __init__(self, case, seed=0):
        import functools

        import tensorflow as tf
        import tensorflow_probability as tfp

        tfb, tfd = tfp.bijectors, tfp.distributions
        self.case = case
        if case.coupling == 'affine':
            coupling_fn = functools.partial(tfb.GlowDefaultNetwork, num_hidden=case.width)
        else:
            coupling_fn = _tfp_additive_network(case.width)
        self.bijector = tfb.Glow(
            output_shape=case.image,
            num_glow_blocks=case.levels,
            num_steps_per_block=case.depth,
            coupling_bijector_fn=coupling_fn,
            exit_bijector_fn=tfb.GlowDefaultExitNetwork,
            seed=seed,
        )
        z_shape = self.bijector.inverse_event_shape(case.image)
        self.dist = tfd.TransformedDistribution(
            tfd.Sample(tfd.Normal(0.0, 1.0), z_shape), self.bijector
        )
        n_dims = float(math.prod(case.image))
        dist = self.dist
        x0 = tf.constant(random_images(case, 2, seed + 1), tf.float32) / 256.0 - 0.5
        dist.log_prob(x0)  # data-dependent ActNorm init, builds the Keras nets
        self.variables = list(self.bijector.trainable_variables)
        self.opt = Adam(self.variables)
        self.x = tf.constant(random_images(case, seed=seed))
        opt, variables = self.opt, self.variables

        @tf.function(autograph=False)
        def train_step(x_uint8):
            x = (
                tf.cast(x_uint8, tf.float32) / 256.0
                - 0.5
                + tf.random.uniform(tf.shape(x_uint8)) / 256.0
            )
            with tf.GradientTape() as tape:
                log_prob = dist.log_prob(x)
                loss = tf.reduce_mean(
                    -(log_prob - n_dims * math.log(256.0)) / (n_dims * math.log(2.0))
                )
            grads = tape.gradient(loss, variables)
            opt.apply(grads)
            return loss

        @tf.function(autograph=False)
        def sample(n):
            return dist.sample(n)

        self._train, self._sample = train_step, sample

    def train(self):
        return float(self._train(self.x))

    def sample(self):
        return self._sample(self.case.batch).numpy()

    def n_params(self):
        return int(sum(v.shape.num_elements() for v in self.variables))


def make_runner(impl, case, memory_mode='plain', seed=0, **model_options):
    """A runner of `impl` ('glow_tf' or 'tfp'); model_options (precision, conv_forms) go to
    glow_tf.Glow."""
    if impl == 'glow_tf':
        return GlowTFRunner(case, memory_mode=memory_mode, seed=seed, **model_options)
    if impl == 'tfp':
        return TFPRunner(case, seed=seed)
    raise ValueError(impl)


def cpu_flags_line():
    """'CPU: <model>; vector units: avx2 avx512f avx512_bf16 amx_bf16 ...' (the flags that decide
    which kernels run), for the head of every benchmark table."""
    from glow_tf.nets.conv_forms import cpu_model_and_flags

    model, flags = cpu_model_and_flags()
    wanted = ('avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'avx512_fp16', 'amx_bf16')
    units = [f for f in wanted if f in flags] + sorted(f for f in flags if f.startswith('amx_'))
    return f"CPU: {model}; vector units: {' '.join(dict.fromkeys(units)) or 'none listed'}"


# ------------------------------------------------------------------------------------------------
# FLOPs
# ------------------------------------------------------------------------------------------------
def forward_flops_per_image(model):
    """Multiply-add FLOPs (2 per MAC) of one image's encoding pass, from the model's layer shapes.

    Counts the convolutions/matmuls: the coupling networks' conv3x3 / conv1x1 / zero-conv3x3,
    the invertible 1x1 convolutions (C^2 per pixel) and the split priors' zero-conv3x3. Element-
    wise work (ActNorm, sigmoid, squeeze, log-dets) and the per-batch C^3 weight algebra of the
    1x1 convolution are not counted.
    """
    height, width, _ = model.image_shape
    macs = 0
    for level in range(model.n_levels):
        height, width = height // 2, width // 2
        pixels = height * width
        layers = list(model.levels[level].steps)
        if level < model.n_levels - 1:
            layers.append(model.splits[level])
        for layer in layers:
            for v in layer.weights:
                shape = tuple(v.shape)
                name = v.path.split('/')[-1]
                if len(shape) == 4:  # conv kernel [kh, kw, cin, cout]
                    kh, kw, c_in, c_out = shape
                    if model.edge_bias and kh * kw > 1:  # the border channel is a bias map,
                        c_in -= 1  # computed once per batch (glow_tf.nets.conv)
                    macs += pixels * kh * kw * c_in * c_out
                elif name in ('w', 'lower') and len(shape) == 2:  # 1x1 conv: C x C per pixel
                    macs += pixels * shape[0] * shape[1]
    return 2 * macs


def train_flops_per_image(model):
    """Training step ~ 3x forward (forward + gradients w.r.t. activations and weights)."""
    return 3 * forward_flops_per_image(model)


# ------------------------------------------------------------------------------------------------
# Machine fp32 conv throughput
# ------------------------------------------------------------------------------------------------
class ConvReference:
    """fp32 tf.nn.conv2d microbenchmark at a shape representative of the coupling network.

    Two convolutions on the level-0 hidden activation [B, H/2, W/2, width]: the 1x1 width->width
    conv (most of the coupling network's FLOPs) and a 3x3 width->width conv (the most efficient
    common conv shape; an upper reference). `fns()` gives callables to interleave with the model
    steps, so the machine's throughput is measured under the same load as the models;
    `gflops(name, seconds)` converts a timing.
    """

    def __init__(self, batch, height, width, channels, inner=2):
        import tensorflow as tf

        self.shapes = {'conv1x1': 1, 'conv3x3': 3}
        self.x = tf.random.normal([batch, height, width, channels])
        self.kernels = {
            k: tf.random.normal([n, n, channels, channels]) * 0.01 for k, n in self.shapes.items()
        }
        self.inner = inner
        self.flops = {
            k: 2.0 * batch * height * width * n * n * channels * channels * inner
            for k, n in self.shapes.items()
        }

        @tf.function(autograph=False)
        def run(x, kernel):
            acc = tf.zeros([])
            for _ in range(inner):  # chained so the convs cannot run concurrently
                acc += tf.reduce_sum(tf.nn.conv2d(x + acc * 0.0, kernel, 1, 'SAME')[0, 0, 0, :1])
            return acc

        self._run = run
        for k in self.shapes:
            self.call(k)

    def call(self, name):
        return self._run(self.x, self.kernels[name]).numpy()

    def fns(self):
        return {k: (lambda k=k: self.call(k)) for k in self.shapes}

    def gflops(self, name, seconds):
        return self.flops[name] / seconds / 1e9


def conv_throughput(quick=False, repeats=5):
    """Best-of-`repeats` GFLOP/s of the ConvReference convs on [16, 16, 16, 512] (quick: tiny)."""
    ref = ConvReference(4, 8, 8, 64) if quick else ConvReference(16, 16, 16, 512)
    out = {}
    for k, fn in ref.fns().items():
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        out[k] = ref.gflops(k, min(times))
    out['peak'] = max(out.values())
    return out


# ------------------------------------------------------------------------------------------------
# Timing helpers
# ------------------------------------------------------------------------------------------------
def interleaved(fns, iters, warmup=1):
    """Call every fn in `fns` (dict name -> fn) `warmup` times, then `iters` rounds in turn.

    Returns name -> list of seconds. Interleaving makes the ratios robust to the machine's load
    changing during the run (it is shared).
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {k: [] for k in fns}
    for i in range(iters):
        order = list(fns) if i % 2 == 0 else list(fns)[::-1]
        for k in order:
            t0 = time.perf_counter()
            fns[k]()
            times[k].append(time.perf_counter() - t0)
    return times


def median(xs):
    return statistics.median(xs) if xs else float('nan')


def dumps(d):
    return json.dumps(d, sort_keys=False, default=float)
