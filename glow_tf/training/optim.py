"""Optimiser and learning-rate schedule, matching the original `optim.py`.

The original Adam / Adamax (openai/glow optim.py) use
    beta2   = 1 - 1 / (train_its * polyak_epochs)      (also the Polyak EMA decay)
    alpha_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
    adam:   w -= alpha_t * m / (sqrt(v) + 1e-8)
    adamax: u = max(beta2 * u, |g|);  w -= alpha_t * m / (u + 1e-8)
and a multiplicative weight decay `w <- weight_decay * w` (1 = off).

Keras' Adam implements exactly the adam line. Keras' Adamax lacks the sqrt(1 - beta2^t) factor,
so `step_learning_rate` folds it into the learning rate given to the optimiser for each step.

The trainer keeps the Keras optimiser as the owner of the state (its slots, `iterations` and
`learning_rate` are what checkpoints store) but computes the update itself, on all weights at
once as flat vectors (`StepRule`; the slots are found by Keras's names, `optimizer_slots`).
With m, u (adam: v) the slots and t = iterations + 1, the rules are Keras's, term for term:

    m <- m + (g - m) (1 - beta1)
    adamax: u <- max(beta2 u, |g|);            w <- w - lr m / ((1 - beta1^t) (u + eps))
    adam:   v <- v + (g^2 - v) (1 - beta2);    w <- w - m alpha / (sqrt(v) + eps),
            alpha = lr sqrt(1 - beta2^t) / (1 - beta1^t)
The schedule, `learning_rate(config, plan, n_processed)`: the original's linear warm-up over
`epochs_warmup` epochs counted in images, optionally scaled by the world size.
"""

import keras
import tensorflow as tf

EPSILON = 1e-8
# the Keras class behind each --optimizer name (`runs.config.OPTIMIZERS` declares and checks them)
OPTIMIZER_CLASSES = {'adamax': keras.optimizers.Adamax, 'adam': keras.optimizers.Adam}
# the names Keras gives each optimiser's two slots ('<variable path, / -> _>_<slot>')
SLOT_NAMES = {'adamax': ('momentum', 'norm'), 'adam': ('momentum', 'velocity')}


def learning_rate(config, plan, n_processed):
    """Original warm-up: lr · min(1, n_processed / (n_train · epochs_warmup)) (lr · world size
    with --lr_scale_by_size), where n_processed counts images (all workers, anchor batch) of the
    *applied* steps before this one: steps skipped as non-finite or rolled back do not advance
    the warm-up. `config`: a resolved TrainConfig, `plan`: its RunPlan (world size)."""
    base = config.lr * (plan.world_size if config.lr_scale_by_size else 1)
    if config.epochs_warmup <= 0:
        return base
    return base * min(1.0, n_processed / (config.n_train * float(config.epochs_warmup)))


def make_optimizer(config, plan):
    """A Keras optimiser for a resolved TrainConfig and its RunPlan (beta2). lr is set every
    step."""
    kw = dict(
        learning_rate=float(config.lr),
        beta_1=float(config.beta1),
        beta_2=float(plan.resolved_beta2),
        epsilon=EPSILON,
    )
    return OPTIMIZER_CLASSES[config.optimizer](**kw)  # the name was validated by the config


def step_learning_rate(optimizer, kind, lr, beta2):
    """The lr to hand to the Keras optimiser for its next step (a tensor; tf.function-safe).

    adamax: lr * sqrt(1 - beta2^t) with t = optimizer.iterations + 1 (original bias correction).
    adam:   lr (Keras applies sqrt(1 - beta2^t) / (1 - beta1^t) itself).
    """
    lr = tf.cast(lr, tf.float32)
    if kind != 'adamax':
        return lr
    t = tf.cast(optimizer.iterations + 1, tf.float32)
    return lr * tf.sqrt(tf.maximum(1.0 - tf.pow(tf.cast(beta2, tf.float32), t), 0.0))


def optimizer_slots(optimizer, kind, variables):
    """The Keras optimiser's two slot variables of each of `variables` (Keras variables, as
    given to `optimizer.build`): ([m_i], [u_i]) for adamax, ([m_i], [v_i]) for adam, each in the
    order of `variables`. KeyError if the optimiser was not built for them."""
    by_name = {v.path.split('/', 1)[-1]: v for v in optimizer.variables}
    return tuple(
        [by_name[f"{v.path.replace('/', '_')}_{slot}"] for v in variables]
        for slot in SLOT_NAMES[kind]
    )


class StepRule:
    """One step's adamax or adam update (module docstring): its scalars -- the bias corrections,
    the coefficients as float32 constants -- made once, then applied to any number of tensors,
    each of any one shape: `rule(w, g, m, u)` -> the new (w, m, u) (u is adam's v). Per element
    the arithmetic is Keras's, in Keras's order.

    Args:
        kind: 'adamax' or 'adam'.
        lr: the step's learning rate (a float32 scalar).
        t: the 1-based step number (a float32 scalar).
        beta1, beta2, epsilon: Python floats.
    """

    def __init__(self, kind, lr, t, beta1, beta2, epsilon=EPSILON):
        self.kind, self.lr = kind, lr
        self.one_minus_beta1 = tf.constant(1 - beta1, tf.float32)
        self.epsilon = tf.constant(epsilon, tf.float32)
        beta1_power = tf.pow(tf.constant(beta1, tf.float32), t)
        if kind == 'adamax':
            self.beta2 = tf.constant(beta2, tf.float32)
            self.correction = 1 - beta1_power
        else:
            self.one_minus_beta2 = tf.constant(1 - beta2, tf.float32)
            beta2_power = tf.pow(tf.constant(beta2, tf.float32), t)
            self.alpha = lr * tf.sqrt(1 - beta2_power) / (1 - beta1_power)

    def __call__(self, w, g, m, u):
        m = m + (g - m) * self.one_minus_beta1
        if self.kind == 'adamax':
            u = tf.maximum(self.beta2 * u, tf.abs(g))
            return w - (self.lr * m) / (self.correction * (u + self.epsilon)), m, u
        u = u + (tf.square(g) - u) * self.one_minus_beta2
        return w - (m * self.alpha) / (tf.sqrt(u) + self.epsilon), m, u
