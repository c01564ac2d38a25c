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
from glow_tf.flows.terms import FORWARD, INVERSE, WeightTerms


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
class InvertibleConv1x1(WeightTerms, FlowLayer):
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

    def weight_values(self):
        """{'w'} (plain) or {'p', 'sign_s', 'lower', 'upper', 'log_s'} (`glow_tf.flows.terms`)."""
        if not self.lu_decomposed:
            return {'w': self.w}
        names = ('p', 'sign_s', 'lower', 'upper', 'log_s')
        return {name: getattr(self, name) for name in names}

    def weight(self, values=None):
        """W as a [..., C, C] float32 tensor (of `values`, stacked or not; default: now's)."""
        values = self.weight_values() if values is None else values
        if not self.lu_decomposed:
            return tf.convert_to_tensor(values['w'])
        channels = int(values['lower'].shape[-1])
        lower = values['lower'] * self.lower_mask + tf.eye(channels)
        diagonal = tf.linalg.diag(values['sign_s'] * tf.exp(values['log_s']))
        return tf.matmul(
            values['p'], tf.matmul(lower, values['upper'] * self.upper_mask + diagonal)
        )

    def log_abs_det(self, values=None):
        """log |det W| (float32 [...]; computed in float64 for the plain form)."""
        values = self.weight_values() if values is None else values
        if self.lu_decomposed:
            return tf.reduce_sum(values['log_s'], axis=-1)
        w64 = tf.cast(values['w'], tf.float64)
        return tf.cast(tf.linalg.slogdet(w64)[1], tf.float32)

    def weight_terms(self, values, direction, input_shape):
        """{'kernel': the [..., 1, 1, C, C] kernel of W (forward) or W^{-1} (inverse, in float64),
        'log_abs_det': log |det W|}."""
        w = self.weight(values)
        if direction == INVERSE:
            w = tf.cast(tf.linalg.inv(tf.cast(w, tf.float64)), tf.float32)
        # y[..., i] = sum_j W[i, j] x[..., j]: a 1x1 convolution with kernel W^T
        kernel = tf.linalg.matrix_transpose(w)[..., None, None, :, :]
        return {'kernel': kernel, 'log_abs_det': self.log_abs_det(values)}

    def _forward(self, x):
        terms = self.current_terms(FORWARD, x.shape)
        y = tf.nn.conv2d(x, terms['kernel'], strides=1, padding='SAME')
        fldj = spatial_size(x) * terms['log_abs_det']
        return y, tf.fill([batch_size(x)], fldj)

    def _inverse(self, y):
        terms = self.current_terms(INVERSE, y.shape)
        x = tf.nn.conv2d(y, terms['kernel'], strides=1, padding='SAME')
        ildj = -spatial_size(y) * terms['log_abs_det']
        return x, tf.fill([batch_size(y)], ildj)

    def get_config(self):
        return {**super().get_config(), 'lu_decomposed': self.lu_decomposed, 'seed': self.seed}
