"""Helpers shared by the flow tests: random weights and brute-force Jacobian log-determinants."""

import numpy as np
import tensorflow as tf


def perturb_weights(layer, scale=0.1, seed=0):
    """Move every trainable weight off its init, so the tests do not only see the identity map."""
    rng = np.random.default_rng(seed)
    for v in layer.trainable_variables:
        v.assign(v.numpy() + scale * rng.standard_normal(v.shape).astype(np.float32))


def brute_force_log_det(fn, x):
    """log|det d fn(x)/dx| for ONE example x [1, ...], with fn returning a tensor or a list.

    The Jacobian is taken with GradientTape in float32 (the layers' dtype) and its slogdet in
    float64. Returns a Python float.
    """
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = fn(x)
        if isinstance(out, (list, tuple)):
            out = tf.concat([tf.reshape(o, [-1]) for o in out], axis=0)
        out = tf.reshape(out, [-1])
    jac = tape.jacobian(out, x)
    n = int(np.prod(x.shape))
    jac = tf.reshape(tf.cast(jac, tf.float64), [out.shape[0], n])
    assert jac.shape[0] == n, f"map is not dimension-preserving: {jac.shape}"
    sign, log_abs = tf.linalg.slogdet(jac)
    assert float(sign) != 0.0, "Jacobian is singular"
    return float(log_abs)


def assert_rel_close(actual, expected, rtol=1e-4, atol=1e-5):
    actual, expected = float(actual), float(expected)
    assert abs(actual - expected) <= atol + rtol * abs(expected), (
        f"{actual} != {expected} (rtol {rtol})"
    )


def edge_padded_conv_by_hand(x, kernel):
    """The original openai/glow 3x3 convolution with edge bias, written out in numpy:
    zero-pad x, append a channel that is 1 on the padded border and 0 inside, 'VALID' conv.

    x [B, H, W, C] and kernel [kh, kw, C + 1, C_out] -> [B, H, W, C_out] (float64).
    """
    x, kernel = np.asarray(x, np.float64), np.asarray(kernel, np.float64)
    kh, kw = kernel.shape[:2]
    a, b = kh // 2, kw // 2
    batch, height, width, _ = x.shape
    padded = np.pad(x, [(0, 0), (a, a), (b, b), (0, 0)])
    border = np.ones(padded.shape[:3] + (1,))
    border[:, a : a + height, b : b + width] = 0.0
    padded = np.concatenate([padded, border], axis=-1)
    out = np.zeros((batch, height, width, kernel.shape[-1]))
    for p in range(kh):
        for q in range(kw):
            out += padded[:, p : p + height, q : q + width, :] @ kernel[p, q]
    return out
