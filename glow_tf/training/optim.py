"""Optimiser and learning-rate schedule, matching the original `optim.py`.

The original Adam / Adamax (openai/glow optim.py) use
    beta2   = 1 - 1 / (train_its * polyak_epochs)      (also the Polyak EMA decay)
    alpha_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
    adam:   w -= alpha_t * m / (sqrt(v) + 1e-8)
    adamax: u = max(beta2 * u, |g|);  w -= alpha_t * m / (u + 1e-8)
and a multiplicative weight decay `w <- weight_decay * w` (1 = off).

Keras' Adam implements exactly the adam line. Keras' Adamax lacks the sqrt(1 - beta2^t) factor,
so `step_learning_rate` folds it into the learning rate given to the optimiser for each step.
The schedule, `learning_rate(config, plan, n_processed)`: the original's linear warm-up over
`epochs_warmup` epochs counted in images, optionally scaled by the world size.
"""

import keras
import tensorflow as tf

EPSILON = 1e-8
# the Keras class behind each --optimizer name (`runs.config.OPTIMIZERS` declares and checks them)
OPTIMIZER_CLASSES = {'adamax': keras.optimizers.Adamax, 'adam': keras.optimizers.Adam}


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
