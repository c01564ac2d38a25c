"""Invertible 1x1 convolution (paper section 3.2; Table 1, line 2).

    y_{i,j} = W x_{i,j}                    W: [C, C], the same at every pixel
    x_{i,j} = W^{-1} y_{i,j}
    log-det = h · w · log |det W|

Plain form: W is a free matrix, initialised to a random rotation; log|det W| and W^{-1} are
computed in float64 (the float32 slogdet of a 512x512 matrix is not accurate enough).

LU-decomposed form (section 3.2, "LU decomposition"): W = P L (U + diag(s)), with P a fixed
permutation, L unit lower-triangular, U strictly upper-triangular and s = sign(s) exp(log|s|)
with sign(s) fixed. Then log |det W| = sum(log|s|), O(C) instead of O(C^3).
"""

import keras
import numpy as np
import tensorflow as tf

from glow_tf.flows.base import FlowLayer, batch_size, spatial_size


def random_rotation(channels, seed):
    """A [C, C] random orthogonal matrix (QR of a Gaussian), float64."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((channels, channels)))
    return q * np.sign(np.diag(r))  # make the decomposition unique: a Haar-distributed rotation


def lu_factors(w):
    """Doolittle LU with partial pivoting of a float64 matrix: w = P @ L @ U."""
    n = w.shape[0]
    u = w.copy()
    lower = np.eye(n)
    perm = np.arange(n)
    for k in range(n - 1):
        pivot = k + int(np.argmax(np.abs(u[k:, k])))
        if pivot != k:
            u[[k, pivot], :] = u[[pivot, k], :]
            lower[[k, pivot], :k] = lower[[pivot, k], :k]
            perm[[k, pivot]] = perm[[pivot, k]]
        factors = u[k + 1 :, k] / u[k, k]
        lower[k + 1 :, k] = factors
        u[k + 1 :, :] -= np.outer(factors, u[k, :])
    p = np.zeros((n, n))
    p[perm, np.arange(n)] = 1.0  # rows were swapped as w[perm] = lower @ u, so w = p @ lower @ u
    return p, lower, np.triu(u)


@keras.saving.register_keras_serializable(package='glow_tf')
class InvertibleConv1x1(FlowLayer):
    """Learned channel mixing y = W x at every pixel. Input/output: [B, H, W, C].

    Args:
        lu_decomposed: W = P L (U + diag(s)) with P fixed (module docstring), else a free W.
        seed: seed of the random rotation W starts from (the same rotation in both forms).
    """

    def __init__(self, lu_decomposed=False, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.lu_decomposed = bool(lu_decomposed)
        self.seed = int(seed)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        w_init = random_rotation(channels, self.seed)
        const = lambda value: keras.initializers.Constant(value.astype(np.float32))
        if not self.lu_decomposed:
            self.w = self.add_weight(
                name='w', shape=(channels, channels), initializer=const(w_init)
            )
            return
        p, lower, upper = lu_factors(w_init)
        s = np.diag(upper)
        self.p = self.add_weight(
            name='p', shape=(channels, channels), initializer=const(p), trainable=False
        )
        self.sign_s = self.add_weight(
            name='sign_s', shape=(channels,), initializer=const(np.sign(s)), trainable=False
        )
        self.lower = self.add_weight(
            name='lower', shape=(channels, channels), initializer=const(lower)
        )
        self.upper = self.add_weight(
            name='upper', shape=(channels, channels), initializer=const(np.triu(upper, 1))
        )
        self.log_s = self.add_weight(
            name='log_s', shape=(channels,), initializer=const(np.log(np.abs(s)))
        )
        self.lower_mask = np.tril(np.ones((channels, channels), np.float32), -1)
        self.upper_mask = self.lower_mask.T

    def weight(self):
        """W as a [C, C] float32 tensor."""
        if not self.lu_decomposed:
            return tf.convert_to_tensor(self.w)
        eye = tf.eye(int(self.lower.shape[0]))
        lower = self.lower * self.lower_mask + eye
        upper = self.upper * self.upper_mask + tf.linalg.diag(self.sign_s * tf.exp(self.log_s))
        return tf.matmul(self.p, tf.matmul(lower, upper))

    def log_abs_det(self):
        """log |det W| (float32 scalar; computed in float64 for the plain form)."""
        if self.lu_decomposed:
            return tf.reduce_sum(self.log_s)
        w64 = tf.cast(self.w, tf.float64)
        return tf.cast(tf.linalg.slogdet(w64)[1], tf.float32)

    def _mix(self, x, w):
        # y[..., i] = sum_j W[i, j] x[..., j]: a 1x1 convolution with kernel W^T.
        return tf.nn.conv2d(x, tf.transpose(w)[None, None], strides=1, padding='SAME')

    def _forward(self, x):
        y = self._mix(x, self.weight())
        fldj = spatial_size(x) * self.log_abs_det()
        return y, tf.fill([batch_size(x)], fldj)

    def _inverse(self, y):
        w_inv = tf.cast(tf.linalg.inv(tf.cast(self.weight(), tf.float64)), tf.float32)
        x = self._mix(y, w_inv)
        ildj = -spatial_size(y) * self.log_abs_det()
        return x, tf.fill([batch_size(y)], ildj)

    def get_config(self):
        return {**super().get_config(), 'lu_decomposed': self.lu_decomposed, 'seed': self.seed}
