"""Polyak averaging with warm-up (glow_tf.training.ema): the average after t updates equals its
closed form, and it follows recent weights at every run length instead of the initial ones."""

import math

import numpy as np
import pytest
import tensorflow as tf

from glow_tf.training.ema import EMA, warmed_up_decay


def _run(ema, var, values):
    for w in values:
        var.assign(w)
        ema.update()
    return ema.shadow[0].numpy()


def test_warm_up_average_equals_its_closed_form():
    """With decay_k = k / (k + 9) (the warm-up before the long-run decay caps it),
    avg_t = w_0 / C(t + 9, 9) + sum_k 9 · t! (k + 8)! / (k! (t + 9)!) · w_k."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 3))
    var = tf.Variable(w[0], dtype=tf.float32)
    ema = EMA([var], decay=0.9999)
    t = 7
    avg = _run(ema, var, w[1 : t + 1])
    weight0 = 1.0 / math.comb(t + 9, 9)
    weights = [
        9 * math.factorial(t) * math.factorial(k + 8) / (math.factorial(k) * math.factorial(t + 9))
        for k in range(1, t + 1)
    ]
    assert weight0 + sum(weights) == pytest.approx(1.0)
    np.testing.assert_allclose(
        avg, weight0 * w[0] + np.tensordot(weights, w[1 : t + 1], 1), rtol=1e-5
    )
    assert int(ema.num_updates.numpy()) == t


def test_long_run_decay_caps_the_warm_up_and_resume_continues_it():
    assert warmed_up_decay(0.5, 3) == pytest.approx(3 / 12)
    assert warmed_up_decay(0.5, 100) == 0.5
    var = tf.Variable([0.0])
    ema = EMA([var], decay=0.5)
    values = np.arange(1, 31, dtype=np.float64)[:, None]
    avg = _run(ema, var, values[:20])
    # a second average restored at the same point continues identically
    other = EMA([tf.Variable([0.0])], decay=0.5)
    other.shadow[0].assign(avg)
    other.set_num_updates(20)
    expected = avg.copy()
    for t, w in enumerate(values[20:], start=21):
        d = min(0.5, t / (t + 9))
        expected = d * expected + (1 - d) * w
    np.testing.assert_allclose(_run(ema, var, values[20:]), expected, rtol=1e-6)
    np.testing.assert_allclose(_run(other, other._targets[0], values[20:]), expected, rtol=1e-6)


def test_short_run_average_follows_recent_weights_not_the_initial_ones():
    """The failure the warm-up fixes: after 150 updates at the original's decay 1 - 1/200, a plain
    EMA still gives the initial weights 47% weight; the warmed-up one gives them almost none."""
    var = tf.Variable([0.0])
    warm, plain = EMA([var], decay=0.995), EMA([var], decay=0.995, warmup=False)
    for _ in range(150):
        var.assign([1.0])
        warm.update()
        plain.update()
    assert float(plain.shadow[0][0]) == pytest.approx(1 - 0.995**150, rel=1e-4)  # 0.53
    assert float(warm.shadow[0][0]) > 0.999999
