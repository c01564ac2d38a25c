"""The trainer's compiled steps, and the stateless randomness they draw.

    steps = TrainSteps(model, optimizer, ema, dist, cfg, plan, noise=noise_fn, eval_seed=seed)
    wait = steps.trace_first_step(x, y, step, stop)   # optional: the first step, sooner
    grads, stats, finite = steps.grad_step(x, y, step, stop)
    wait()
    lr_t, ok = steps.apply_step(grads, lr)
    sums = steps.eval_step(x, y, index)

grad_step. x: uint8 images [B, H, W, C] (the worker's batch), y: int labels [B], step: int64 (the
0-based index of the batch; the dequantisation noise u ~ U[0, 1) is `noise(shape, step)`), stop: a
float signal number or 0. With bits_x, bits_y [B] the model's objective on (x + u) / 2^n_bits_x,

    loss = mean(bits_x) + weight_y * mean(bits_y)

and grads [N] the gradient of every trainable variable (`tvars`, zeros for unused ones) averaged
over the workers by Horovod's DistributedGradientTape (taken w.r.t. the tf.Variables behind the
Keras variables), flattened and concatenated in `tvars` order (N = the number of weights).
stats = allreduce_mean([loss, mean bits_x, mean bits_y, mean class error, stop]) [5], so a stop
request on any worker reaches all of them with no extra collective; finite is True iff stats and
every gradient are finite on all workers (so all skip a step alike).

apply_step. One update of all weights at once, on flat [N] vectors (`FlatVariables`): weight
decay, the optimiser's rule with the learning rate `step_learning_rate` folds the original's bias
correction into (`optim.StepRule`, Keras's Adamax / Adam term for term, the state kept in the
Keras optimiser's slots), then the Polyak EMA (`EMA.update`'s rule). The new weights, slots and
averages are written only if every new weight and average is finite on every worker (ok);
otherwise nothing is written, not even the iteration count, and ok is False: a bad step is
dropped before it touches the state, so no copy of the state is needed to undo it. lr_t is the
learning rate of the step.

A few operations on flat vectors instead of several per variable (what remains per variable is
a read and a write of each state): the update's graph is a third of Keras's per-variable
`apply_gradients` with a per-variable EMA and pre-step copy, and tracing and optimising it takes
a quarter of the time, which halves the first training step (`bench/update_step.py`,
docs/performance.md). The vectors are the ranges of `update_ranges`: every run of small
variables is one vector, every large variable (>= ALONE weights) one of its own, read and
written without a concatenation and a split; per element the arithmetic is the same.

eval_step. The sums over a test batch of [loss, bits_x, bits_y, class error, batch size] [5]
followed by bits_x per level [L] (`Glow.bits_per_dim_per_level`)
(float32), with test-pass noise that is a stateless function of (eval_seed, index).

Randomness needs no saved state: `default_noise` is a stateless function of (seed, step) and the
per-worker seed `rank_noise_seed(seed, rank)` (so a resumed run draws the same noise).
"""

import threading

import tensorflow as tf

from glow_tf.model.glow import glow_loss
from glow_tf.training.loss_scale import DynamicLossScale
from glow_tf.training.optim import StepRule, optimizer_slots, step_learning_rate
from glow_tf.training.stats import STOP, TEST_SUMS, TRAIN_STEP
from glow_tf.variables import FlatVariables, tf_variables


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


ALONE = 1 << 17  # a variable of this many weights or more is updated as a vector of its own


def update_ranges(sizes, alone=None):
    """[(start, stop)]: consecutive ranges of variable indices covering `sizes` (the variables'
    sizes, in order); each variable of `alone` or more elements is a range by itself, each run of
    smaller ones one range. The update reads each range as one vector: a large variable is then
    read and written in place of a concatenation and a split (two passes over its state), and
    the many small ones (ActNorm, biases) stay a few operations. `alone`: ALONE if None."""
    alone = ALONE if alone is None else alone
    ranges, start = [], 0
    for i, size in enumerate(sizes):
        if size >= alone:
            ranges += [(start, i)] if start < i else []
            ranges.append((i, i + 1))
            start = i + 1
    return ranges + ([(start, len(sizes))] if start < len(sizes) else [])


def pick(predicate, a, b):
    """`a` if the scalar bool `predicate` else `b`, without a pass over either: TensorFlow's
    `Select` with a scalar condition hands on the chosen input, where `tf.where` (SelectV2)
    broadcasts and writes a new tensor (10 ms for each [N] vector of a 9.6 M-weight model)."""
    return tf.raw_ops.Select(condition=predicate, x=a, y=b)


class TrainSteps:
    """The gradient, update and test steps of one trainer, as tf.functions (module docstring).

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
        # the gradient as one flat [N] vector; the update's state (weights, the optimiser's two
        # slots, the averages) as a few flat vectors, one per range of `update_ranges`
        self.weights = FlatVariables(self.tvars)
        slots = optimizer_slots(optimizer, cfg.optimizer, model.trainable_variables)
        shadow = list(ema.shadow)
        self.state = [
            (
                FlatVariables(self.tvars[a:b]),
                [FlatVariables(slot[a:b]) for slot in slots],
                FlatVariables(shadow[a:b]),
            )
            for a, b in update_ranges(self.weights.sizes)
        ]
        # autograph=False: no tensor-dependent Python control flow here or in the model, and
        # AutoGraph's conversion of every layer call doubled the trace time (docs/performance.md)
        compile_ = lambda f: tf.function(f, reduce_retracing=True, autograph=False)
        self.grad_step = compile_(self._grad_step)
        self.apply_step = compile_(self._update_step)
        self.eval_step = compile_(self._eval_step)

    def trace_first_step(self, x, y, step, stop):
        """Trace `grad_step` for these inputs now and `apply_step` in a background thread.

        The caller's first `grad_step` call then spends its seconds optimising and running the
        graph in C++, without Python's GIL, while the thread traces the update (Python): the
        two overlap instead of following each other (bench/revisions.py: the README job's first
        step about 0.8x the time). Returns `wait()`, which joins the thread and re-raises its
        error; call it before the first `apply_step`.
        """
        self.grad_step.get_concrete_function(x, y, step, stop)
        failure = []

        def trace_update():
            try:
                self.apply_step.get_concrete_function(
                    tf.TensorSpec([self.weights.size], tf.float32), tf.TensorSpec([], tf.float32)
                )
            except BaseException as e:  # handed to the caller by wait()
                failure.append(e)

        thread = threading.Thread(target=trace_update, name='trace-update', daemon=True)
        thread.start()

        def wait():
            thread.join()
            if failure:
                raise failure[0]

        return wait

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
        grads = self.weights.flatten(grads)
        means = {
            'loss': loss,
            'bits_x': tf.reduce_mean(bits_x),
            'bits_y': tf.reduce_mean(bits_y),
            'error': tf.reduce_mean(error),
            STOP: stop,
        }
        stats = self.dist.allreduce_mean(tf.stack([means[k] for k in TRAIN_STEP]))
        finite = tf.reduce_all(tf.math.is_finite(stats)) & tf.reduce_all(tf.math.is_finite(grads))
        if self.loss_scale is not None:
            with tf.control_dependencies(self.loss_scale.update(finite)):
                finite = tf.identity(finite)
        return grads, stats, finite

    # ------------------------------------------------------------------ guarded update
    def _update_step(self, grads, lr):
        cfg, optimizer, ema = self.cfg, self.optimizer, self.ema
        iterations, lr_var = tf_variables([optimizer.iterations, optimizer.learning_rate])
        lr_t = step_learning_rate(optimizer, cfg.optimizer, lr, self.beta2)
        t = tf.cast(iterations + 1, tf.float32)
        rule = StepRule(cfg.optimizer, lr_t, t, float(cfg.beta1), self.beta2)  # scalars once
        d = ema.current_decay()
        one_minus_d = 1.0 - d
        decay = tf.constant(cfg.weight_decay, tf.float32) if cfg.weight_decay != 1.0 else None
        grads = tf.split(grads, [weights.size for weights, _, _ in self.state])
        updates, finite = [], []
        for (weights, slots, averages), g in zip(self.state, grads):
            w0, slots0, avg0 = weights.read(), [slot.read() for slot in slots], averages.read()
            w = w0 * decay if decay is not None else w0
            w, m, u = rule(w, g, *slots0)
            avg = d * avg0 + one_minus_d * w
            finite += [tf.reduce_all(tf.math.is_finite(w)), tf.reduce_all(tf.math.is_finite(avg))]
            updates.append(((weights, w, w0), *zip(slots, (m, u), slots0), (averages, avg, avg0)))
        bad = tf.cast(~tf.reduce_all(tf.stack(finite)), tf.float32)
        ok = tf.equal(self.dist.allreduce_sum(bad), 0.0)  # the same verdict on every worker
        for update in updates:
            for variables, new, old in update:
                variables.assign(pick(ok, new, old))
        lr_var.assign(pick(ok, lr_t, lr_var.value()))
        iterations.assign_add(tf.cast(ok, tf.int64))
        ema.num_updates.assign_add(tf.cast(ok, tf.int64))
        return lr_t, ok

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
