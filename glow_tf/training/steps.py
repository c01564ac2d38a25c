"""The trainer's compiled steps, and the stateless randomness they draw.

    steps = TrainSteps(model, optimizer, ema, dist, cfg, plan, noise=noise_fn, eval_seed=seed)
    grads, stats, finite = steps.grad_step(x, y, step, stop)
    lr_t, ok = steps.apply_step(grads, lr)
    sums = steps.eval_step(x, y, index)

grad_step. x: uint8 images [B, H, W, C] (the worker's batch), y: int labels [B], step: int64 (the
0-based index of the batch; the dequantisation noise u ~ U[0, 1) is `noise(shape, step)`), stop: a
float signal number or 0. With bits_x, bits_y [B] the model's objective on (x + u) / 2^n_bits_x,

    loss = mean(bits_x) + weight_y * mean(bits_y)

and grads (one per `tvars`, zeros for unused variables) are averaged over the workers by
Horovod's DistributedGradientTape (taken w.r.t. the tf.Variables behind the Keras variables).
stats = allreduce_mean([loss, mean bits_x, mean bits_y, mean class error, stop]) [5], so a stop
request on any worker reaches all of them with no extra collective; finite is True iff stats and
every gradient are finite on all workers (so all skip a step alike).

apply_step. One update of the weights (weight decay, then the Keras optimiser with the
learning rate `step_learning_rate` folds the original's bias correction into), then the Polyak
EMA. If any weight or average comes out non-finite on any worker, weights, optimiser slots and
iteration count and the EMA are restored exactly from the pre-step copy: ok is False. lr_t is the
learning rate handed to the optimiser.

eval_step. The sums over a test batch of [loss, bits_x, bits_y, class error, batch size] [5]
followed by bits_x per level [L] (`Glow.bits_per_dim_per_level`)
(float32), with test-pass noise that is a stateless function of (eval_seed, index).

Randomness needs no saved state: `default_noise` is a stateless function of (seed, step) and the
per-worker seed `rank_noise_seed(seed, rank)` (so a resumed run draws the same noise).
"""

import tensorflow as tf

from glow_tf.model.glow import glow_loss
from glow_tf.training.loss_scale import DynamicLossScale
from glow_tf.training.optim import step_learning_rate
from glow_tf.training.stats import STOP, TEST_SUMS, TRAIN_STEP
from glow_tf.variables import tf_variables


def mix_seed(*parts):
    """A deterministic non-negative int63 from integers (splitmix-style)."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h ^= (int(p) + 0x9E3779B97F4A7C15 + ((h << 6) & (2**64 - 1)) + (h >> 2)) & (2**64 - 1)
        h = (h * 0xBF58476D1CE4E5B9) & (2**64 - 1)
        h ^= h >> 31
    return h & (2**63 - 1)


def rank_noise_seed(seed, rank):
    return mix_seed(seed, rank, 0x6E6F697365)  # 'noise'


def default_noise(shape, step, rank_seed):
    """Uniform [0, 1) dequantisation noise, a stateless function of (rank_seed, step)."""
    s = tf.stack([tf.constant(rank_seed % (2**62), tf.int64), tf.cast(step, tf.int64)])
    return tf.random.stateless_uniform(shape, seed=s)


class TrainSteps:
    """The gradient, update and test steps of one trainer, as tf.functions (module docstring;
    `apply_step` runs the compiled update, then the compiled rollback if the verdict says so).

    Args:
        model: the `Glow` model being trained.
        optimizer: its built Keras optimiser (`optim.make_optimizer`).
        ema: the `EMA` of the model's trainable variables.
        dist: the `Distributed` (collectives; identities on one process).
        cfg: the resolved `TrainConfig` (n_bits_x, weight_y, optimizer, weight_decay).
        plan: its `RunPlan` (resolved_beta2).
        noise: callable(shape, step) -> uniform [0, 1) dequantisation noise of the training step.
        eval_seed: int seed of the test-pass noise.
        loss_hook: None, or callable(loss, step) -> loss traced into grad_step
            (`FaultInjection.loss`, tests only).
    """

    def __init__(self, model, optimizer, ema, dist, cfg, plan, noise, eval_seed, loss_hook=None):
        self.model, self.optimizer, self.ema, self.dist, self.cfg = model, optimizer, ema, dist, cfg
        self.beta2 = plan.resolved_beta2
        self.noise, self.eval_seed, self.loss_hook = noise, eval_seed, loss_hook
        self.tvars = tf_variables(model.trainable_variables)
        # float16 coupling networks: gradients of S·loss, divided by S (training/loss_scale.py)
        self.loss_scale = DynamicLossScale() if model.precision == 'fp16' else None
        self._build_backup()
        # autograph=False: no tensor-dependent Python control flow here or in the model, and
        # AutoGraph's conversion of every layer call doubled the trace time (docs/performance.md)
        compile_ = lambda f: tf.function(f, reduce_retracing=True, autograph=False)
        self.grad_step = compile_(self._grad_step)
        self._update = compile_(self._update_step)
        # traced at the first rollback, not before the first step (it is a large graph: one
        # assign per variable, optimiser slot and average)
        self._roll_back = compile_(self._restore)
        self.eval_step = compile_(self._eval_step)

    def objective(self, x_uint8, y, noise):
        """(bits_x, bits_y, error), each [B], with the explicit dequantisation draw u ~ U[0,1)
        `noise`; error is the class head's 0/1 error (the original's pred_loss)."""
        model = self.model
        return model.objective(
            x_uint8,
            y if model.n_classes else None,
            int(self.cfg.n_bits_x),
            noise=noise,
            with_error=True,
        )

    # ------------------------------------------------------------------ gradient step
    def _grad_step(self, x, y, step, stop):
        noise = self.noise(tf.shape(x), step)
        with tf.GradientTape() as tape:
            bits_x, bits_y, error = self.objective(x, y, noise)
            loss = tf.reduce_mean(glow_loss(bits_x, bits_y, float(self.cfg.weight_y)))
            if self.loss_hook is not None:
                loss = self.loss_hook(loss, step)
            target = loss if self.loss_scale is None else self.loss_scale.scaled(loss)
        grads = self.dist.gradient_tape(tape).gradient(target, self.tvars)
        grads = [
            tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
            for g, v in zip(grads, self.tvars)
        ]
        if self.loss_scale is not None:
            grads = self.loss_scale.unscaled(grads)
        means = {
            'loss': loss,
            'bits_x': tf.reduce_mean(bits_x),
            'bits_y': tf.reduce_mean(bits_y),
            'error': tf.reduce_mean(error),
            STOP: stop,
        }
        stats = self.dist.allreduce_mean(tf.stack([means[k] for k in TRAIN_STEP]))
        finite = tf.reduce_all(tf.math.is_finite(stats))
        for g in grads:
            finite = tf.logical_and(finite, tf.reduce_all(tf.math.is_finite(g)))
        if self.loss_scale is not None:
            with tf.control_dependencies(self.loss_scale.update(finite)):
                finite = tf.identity(finite)
        return grads, stats, finite

    # ------------------------------------------------------------------ guarded update
    def _build_backup(self):
        """The pre-step copy: float32 state in one flat buffer (one concat + one assign per step
        instead of one assign per variable), the few others (iteration counter) one by one."""
        guarded = (
            self.tvars
            + tf_variables(self.optimizer.variables)
            + list(self.ema.shadow)
            + [self.ema.num_updates]
        )
        self._flat = [v for v in guarded if v.dtype == tf.float32]
        self._other = [v for v in guarded if v.dtype != tf.float32]
        self._sizes = [int(v.shape.num_elements()) for v in self._flat]
        with tf.init_scope():
            self._flat_backup = tf.Variable(
                tf.zeros([sum(self._sizes)], tf.float32), trainable=False
            )
            self._other_backup = [tf.Variable(v.read_value(), trainable=False) for v in self._other]

    def _back_up(self):
        self._flat_backup.assign(tf.concat([tf.reshape(v, [-1]) for v in self._flat], 0))
        for b, v in zip(self._other_backup, self._other):
            b.assign(v)

    def _restore(self):
        parts = tf.split(self._flat_backup.read_value(), self._sizes)
        for v, p in zip(self._flat, parts):
            v.assign(tf.reshape(p, v.shape))
        for b, v in zip(self._other_backup, self._other):
            v.assign(b)

    def apply_step(self, grads, lr):
        """The guarded update (module docstring): (lr_t, ok); rolled back when ok is False."""
        lr_t, ok = self._update(grads, lr)
        if not bool(ok.numpy()):  # the same verdict on every worker (it was allreduced)
            self._roll_back()
        return lr_t, ok

    def _update_step(self, grads, lr):
        cfg, optimizer = self.cfg, self.optimizer
        self._back_up()
        lr_t = step_learning_rate(optimizer, cfg.optimizer, lr, self.beta2)
        optimizer.learning_rate.assign(lr_t)
        if cfg.weight_decay != 1.0:
            for v in self.tvars:
                v.assign(v * cfg.weight_decay)
        optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
        self.ema.update()
        # one reduction per variable: a sum is non-finite if any element is (or if finite
        # weights sum past 3e38, which deserves a rollback as well)
        total = tf.add_n([tf.reduce_sum(v) for v in self.tvars + list(self.ema.shadow)])
        bad = tf.cast(~tf.math.is_finite(total), tf.float32)
        return lr_t, tf.equal(self.dist.allreduce_sum(bad), 0.0)

    # ------------------------------------------------------------------ test step
    def _eval_step(self, x, y, index):
        noise = default_noise(tf.shape(x), index, self.eval_seed)
        model = self.model
        bits_x, bits_y, error, levels = model.objective(
            x,
            y if model.n_classes else None,
            int(self.cfg.n_bits_x),
            noise=noise,
            with_error=True,
            with_levels=True,
        )
        loss = glow_loss(bits_x, bits_y, float(self.cfg.weight_y))
        sums = {
            'loss': tf.reduce_sum(loss),
            'bits_x': tf.reduce_sum(bits_x),
            'bits_y': tf.reduce_sum(bits_y),
            'error': tf.reduce_sum(error),
            'n': tf.cast(tf.shape(x)[0], tf.float32),
        }
        named = tf.stack([sums[k] for k in TEST_SUMS])
        return tf.concat([named, tf.reduce_sum(levels, axis=0)], axis=0)
