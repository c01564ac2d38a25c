"""glow_tf.nets.conv: every form of conv2d_same equals tf.nn.conv2d, values and gradients."""

import numpy as np
import pytest
import tensorflow as tf

from glow_tf.nets.conv import conv2d_same, conv_form


@pytest.mark.parametrize(
    'kernel_shape,form',
    [
        ((1, 1, 16, 24), 'matmul'),
        ((3, 3, 32, 3), 'shift_add'),
        ((3, 3, 36, 4), 'shift_add'),  # kh·kw·C_out == C_in: the boundary case
        ((3, 3, 4, 16), 'conv2d'),
    ],
)
def test_conv_form_chosen_from_the_kernel_shape(kernel_shape, form):
    assert conv_form(kernel_shape) == form


@pytest.mark.parametrize('form', ['matmul', 'shift_add', 'conv2d'])
@pytest.mark.parametrize('spatial', [(5, 7), (4, 4), (1, 3)])
def test_every_form_equals_tf_conv2d_with_gradients(form, spatial):
    k = 1 if form == 'matmul' else 3
    rng = np.random.default_rng(sum(spatial) + k)
    x = tf.constant(rng.standard_normal((2,) + spatial + (20,)), tf.float32)
    kernel = tf.constant(rng.standard_normal((k, k, 20, 2)), tf.float32)
    bias = tf.constant(rng.standard_normal(2), tf.float32)
    upstream = tf.constant(rng.standard_normal((2,) + spatial + (2,)), tf.float32)

    def value_and_grads(fn):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel, bias])
            y = fn()
            loss = tf.reduce_sum(y * upstream)
        return [y] + tape.gradient(loss, [x, kernel, bias])

    ours = value_and_grads(lambda: conv2d_same(x, kernel, bias, relu=True, form=form))
    ref = value_and_grads(lambda: tf.nn.relu(tf.nn.conv2d(x, kernel, 1, 'SAME') + bias))
    assert float(tf.reduce_mean(tf.cast(ref[0] > 0, tf.float32))) > 0.2  # relu not all-zero
    for name, a, b in zip(['y', 'dx', 'dkernel', 'dbias'], ours, ref):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5, err_msg=name)


def test_forms_work_with_an_unknown_batch_size_in_a_graph():
    kernel_1x1 = tf.random.stateless_normal([1, 1, 18, 5], seed=[1, 2])
    kernel_out = tf.random.stateless_normal([3, 3, 18, 2], seed=[1, 3])

    @tf.function(input_signature=[tf.TensorSpec([None, 6, 6, 18])])
    def f(x):
        return conv2d_same(x, kernel_1x1), conv2d_same(x, kernel_out)

    x = tf.random.stateless_normal([3, 6, 6, 18], seed=[1, 4])
    a, b = f(x)
    np.testing.assert_allclose(a.numpy(), tf.nn.conv2d(x, kernel_1x1, 1, 'SAME').numpy(), atol=1e-5)
    np.testing.assert_allclose(b.numpy(), tf.nn.conv2d(x, kernel_out, 1, 'SAME').numpy(), atol=1e-5)


def test_bad_form_and_kernel_are_named():
    x = tf.zeros([1, 4, 4, 8])
    with pytest.raises(ValueError, match="form must be"):
        conv2d_same(x, tf.zeros([3, 3, 8, 1]), form='fft')
    with pytest.raises(ValueError, match="1x1 kernel"):
        conv2d_same(x, tf.zeros([3, 3, 8, 1]), form='matmul')


@pytest.mark.parametrize(
    'form,c_in,c_out', [('conv2d', 3, 8), ('shift_add', 16, 1), ('conv2d', 5, 4)]
)
def test_edge_bias_equals_the_originals_padding_by_hand(form, c_in, c_out):
    """conv2d_same(edge_bias=True) == zero padding + a border channel + 'VALID' conv, values
    and gradients (the border taps get a gradient only from the border pixels)."""
    from tests.flow_testing import edge_padded_conv_by_hand

    rng = np.random.default_rng(3)
    x = tf.constant(rng.standard_normal((2, 5, 6, c_in)), tf.float32)
    kernel = tf.Variable(rng.standard_normal((3, 3, c_in + 1, c_out)), dtype=tf.float32)
    bias = tf.constant(rng.standard_normal(c_out), tf.float32)
    with tf.GradientTape() as tape:
        y = conv2d_same(x, kernel, bias, form=form, edge_bias=True)
        loss = tf.reduce_sum(y * tf.cos(y))
    expected = edge_padded_conv_by_hand(x, kernel) + bias.numpy()
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-4, atol=1e-4)
    # the border channel matters: without it the result differs at the border only
    plain = conv2d_same(x, kernel[:, :, :-1], bias, form='conv2d').numpy()
    diff = np.abs(plain - expected).max(-1)
    assert diff[:, 1:-1, 1:-1].max() < 1e-4 and diff[:, 0, :].min() > 1e-3
    # gradient of the border taps, by hand: d loss / d K_e[p, q] = sum over positions whose
    # receptive field tap (p, q) lands on the border
    grad = tape.gradient(loss, kernel).numpy()
    dy = (tf.cos(y) - y * tf.sin(y)).numpy()
    border = np.ones((7, 8))
    border[1:-1, 1:-1] = 0
    for p in range(3):
        for q in range(3):
            by_hand = np.einsum('hw,bhwc->c', border[p : p + 5, q : q + 6], dy)
            np.testing.assert_allclose(grad[p, q, -1], by_hand, rtol=1e-3, atol=1e-3)


def test_edge_bias_skips_1x1_kernels():
    """A 1x1 convolution pads nothing, so (as in the original) it gets no border channel."""
    x = tf.ones([1, 3, 3, 4])
    kernel = tf.ones([1, 1, 4, 2])
    np.testing.assert_array_equal(
        conv2d_same(x, kernel, edge_bias=True).numpy(), conv2d_same(x, kernel).numpy()
    )
