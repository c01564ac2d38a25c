"""glow_tf.nets.conv: every form of conv2d_same equals tf.nn.conv2d, values and gradients;
glow_tf.nets.conv_forms: the measured choice, its cache and the three policies."""

import json

import numpy as np
import pytest
import tensorflow as tf

from glow_tf.nets import conv_forms
from glow_tf.nets.conv import candidate_forms, conv2d_same, conv_form


@pytest.mark.parametrize(
    'kernel_shape,form',
    [
        ((1, 1, 16, 24), 'matmul'),
        ((3, 3, 32, 3), 'shift_add'),
        ((3, 3, 36, 4), 'shift_add'),  # kh·kw·C_out == C_in: the boundary case
        ((3, 3, 4, 16), 'conv2d'),
        ((3, 3, 7, 512), 'conv2d'),  # im2col only by measurement
    ],
)
def test_conv_form_chosen_from_the_kernel_shape(kernel_shape, form):
    assert conv_form(kernel_shape) == form


@pytest.mark.parametrize(
    'kernel_shape,forms',
    [
        ((1, 1, 16, 24), ('conv2d', 'matmul')),
        ((3, 3, 32, 3), ('conv2d', 'shift_add')),
        ((3, 3, 4, 36), ('conv2d', 'im2col')),  # kh·kw·C_in == C_out: the boundary case
        ((3, 3, 8, 16), ('conv2d',)),
    ],
)
def test_candidate_forms_of_a_shape(kernel_shape, forms):
    assert candidate_forms(kernel_shape) == forms


@pytest.mark.parametrize('form', ['matmul', 'shift_add', 'im2col', 'conv2d'])
@pytest.mark.parametrize('spatial', [(5, 7), (4, 4), (1, 3)])
def test_every_form_equals_tf_conv2d_with_gradients(form, spatial):
    k = 1 if form == 'matmul' else 3
    c_in, c_out = (2, 20) if form == 'im2col' else (20, 2)
    rng = np.random.default_rng(sum(spatial) + k)
    x = tf.constant(rng.standard_normal((2,) + spatial + (c_in,)), tf.float32)
    kernel = tf.constant(rng.standard_normal((k, k, c_in, c_out)), tf.float32)
    bias = tf.constant(rng.standard_normal(c_out), tf.float32)
    upstream = tf.constant(rng.standard_normal((2,) + spatial + (c_out,)), tf.float32)

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
    # the input layer's edge bias (a thin input, a wide output), both its forms
    kernel_in = tf.random.stateless_normal([3, 3, 3, 20], seed=[1, 5])

    @tf.function(input_signature=[tf.TensorSpec([None, 6, 6, 2])])
    def g(x):
        return [conv2d_same(x, kernel_in, form=f, edge_bias=True) for f in ('conv2d', 'im2col')]

    x = tf.random.stateless_normal([3, 6, 6, 2], seed=[1, 6])
    expected = conv2d_same(x, kernel_in, form='conv2d', edge_bias=True).numpy()  # static batch
    for y in g(x):
        np.testing.assert_allclose(y.numpy(), expected, atol=1e-5)


def test_bad_form_and_kernel_are_named():
    x = tf.zeros([1, 4, 4, 8])
    with pytest.raises(ValueError, match="form must be"):
        conv2d_same(x, tf.zeros([3, 3, 8, 1]), form='fft')
    with pytest.raises(ValueError, match="1x1 kernel"):
        conv2d_same(x, tf.zeros([3, 3, 8, 1]), form='matmul')


@pytest.mark.parametrize(
    'form,c_in,c_out',
    [('conv2d', 3, 8), ('im2col', 3, 32), ('shift_add', 16, 1), ('conv2d', 5, 4)],
)
def test_edge_bias_equals_the_originals_padding_by_hand(form, c_in, c_out):
    """conv2d_same(edge_bias=True) == zero padding + a border channel + 'VALID' conv, values
    and gradients (the border taps get a gradient only from the border pixels), in each form."""
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


@pytest.fixture
def fresh_form_cache(tmp_path, monkeypatch):
    """conv_forms with an empty cache directory and nothing measured in this process yet."""
    monkeypatch.setenv('GLOW_CACHE_DIR', str(tmp_path))
    monkeypatch.setattr(conv_forms, '_choices', {})
    monkeypatch.setattr(conv_forms, '_loaded', False)
    return tmp_path


def test_auto_times_every_candidate_once_and_caches_the_fastest(fresh_form_cache, monkeypatch):
    timed = []
    real_time_form = conv_forms._time_form

    def counting(form, *args):
        timed.append(form)
        return real_time_form(form, *args)

    monkeypatch.setattr(conv_forms, '_time_form', counting)
    kernel = (3, 3, 2, 40)
    form = conv_forms.choose_form('auto', (None, 6, 6, 2), kernel)
    assert sorted(timed) == sorted(candidate_forms(kernel)) == ['conv2d', 'im2col']
    ((x, k, dtype, direction, ms, chosen),) = conv_forms.measured_choices()
    assert (x, k, dtype) == ('16x6x6x2', '3x3x2x40', 'float32')  # unknown batch timed at 16
    assert direction == 'forward'  # no gradient tape records: the forward pass alone is timed
    assert chosen == form == min(ms, key=ms.get) and all(t > 0 for t in ms.values())
    # the choice is in the per-machine file; a new process (simulated) reads it, timing nothing
    stored = json.loads(conv_forms.cache_path().read_text())
    assert stored['choices']['16x6x6x2|3x3x2x40|float32|forward']['form'] == form
    monkeypatch.setattr(conv_forms, '_choices', {})
    monkeypatch.setattr(conv_forms, '_loaded', False)
    timed.clear()
    assert conv_forms.choose_form('auto', (16, 6, 6, 2), kernel) == form
    assert timed == []


def test_auto_times_the_direction_the_convolution_runs_in(fresh_form_cache, monkeypatch):
    """Under a gradient tape a shape is timed forward + both gradients, otherwise the forward
    pass alone; the two are separate choices, and either computes the same convolution."""
    timed = []
    real_time_form = conv_forms._time_form

    def recording(form, shape, kernel, dtype, training):
        timed.append((form, training))
        return real_time_form(form, shape, kernel, dtype, training)

    monkeypatch.setattr(conv_forms, '_time_form', recording)
    x = tf.random.stateless_normal([4, 6, 6, 2], seed=[4, 1])
    kernel = tf.random.stateless_normal([3, 3, 2, 40], seed=[4, 2])
    expected = tf.nn.conv2d(x, kernel, 1, 'SAME').numpy()
    forward = conv_forms.conv2d(x, kernel, policy='auto')
    assert sorted(timed) == [('conv2d', False), ('im2col', False)]
    with tf.GradientTape() as tape:
        tape.watch(x)
        trained = conv_forms.conv2d(x, kernel, policy='auto')
    assert sorted(timed[2:]) == [('conv2d', True), ('im2col', True)]
    assert tape.gradient(trained, x) is not None
    directions = [row[3] for row in conv_forms.measured_choices()]
    assert sorted(directions) == ['forward', 'train']
    for y in (forward, trained):
        np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-5)
    timed.clear()  # both are remembered
    conv_forms.conv2d(x, kernel, policy='auto')
    with tf.GradientTape():
        conv_forms.conv2d(x, kernel, policy='auto')
    assert timed == []


def test_auto_measures_inside_a_trace_and_under_a_custom_gradient(fresh_form_cache):
    """The first use may come while a tf.function is traced, inside a custom gradient's
    forward pass (the reversible mode): timing still sees real gradients."""
    kernel = tf.random.stateless_normal([1, 1, 8, 8], seed=[2, 1])

    @tf.function(autograph=False)
    def f(x):
        @tf.custom_gradient
        def inner(x):
            y = conv_forms.conv2d(x, kernel, policy='auto')
            return y, lambda dy: dy

        return inner(x)

    x = tf.random.stateless_normal([2, 5, 5, 8], seed=[2, 2])
    np.testing.assert_allclose(
        f(x).numpy(), tf.nn.conv2d(x, kernel, 1, 'SAME').numpy(), rtol=1e-5, atol=1e-5
    )
    assert len(conv_forms.measured_choices()) == 1


def test_policies_gemm_and_native_measure_nothing(fresh_form_cache):
    assert conv_forms.choose_form('native', (4, 8, 8, 64), (1, 1, 64, 64)) == 'conv2d'
    assert conv_forms.choose_form('gemm', (4, 8, 8, 64), (1, 1, 64, 64)) == 'matmul'
    assert conv_forms.choose_form('gemm', (4, 8, 8, 64), (3, 3, 64, 6)) == 'shift_add'
    assert conv_forms.measured_choices() == []
    with pytest.raises(ValueError, match='conv_forms must be one of'):
        conv_forms.choose_form('fastest', (4, 8, 8, 64), (1, 1, 64, 64))


def test_an_unreadable_cache_file_is_measured_again(fresh_form_cache):
    path = conv_forms.cache_path()
    path.parent.mkdir(parents=True)
    path.write_text('{not json')
    form = conv_forms.choose_form('auto', (2, 4, 4, 8), (1, 1, 8, 8))
    assert form in ('conv2d', 'matmul')
    assert json.loads(path.read_text())['choices']  # rewritten whole


@pytest.mark.parametrize('policy', ['auto', 'gemm', 'native'])
def test_a_model_computes_the_same_function_under_every_policy(policy, fresh_form_cache):
    """log p(x) and its gradients of a Glow with random (non-zero) weights are equal, within
    float32 summation order, whichever forms compute the convolutions."""
    from glow_tf.model.glow import Glow
    from tests.flow_testing import perturb_weights

    x = tf.random.stateless_uniform([3, 8, 8, 3], seed=[3, 1], minval=-0.5, maxval=0.5)

    def value_and_grads(model):
        with tf.GradientTape() as tape:
            lp = model.log_prob(x)
            loss = tf.reduce_mean(lp)
        return [lp] + tape.gradient(loss, [v.value for v in model.trainable_variables])

    def model_with(conv_forms_policy):
        model = Glow((8, 8, 3), n_levels=2, depth=2, width=16, conv_forms=conv_forms_policy)
        model.initialize(x)
        perturb_weights(model, scale=0.05, seed=4)
        return model

    ours, ref = value_and_grads(model_with(policy)), value_and_grads(model_with('native'))
    for i, (a, b) in enumerate(zip(ours, ref)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=2e-5, err_msg=str(i))


def test_bias_relu_gradients_equal_autodiff_in_float32_and_bfloat16():
    """The bias + ReLU with its gradient written out (the bias gradient a plain sum, not
    BiasAddGrad) gives autodiff's gradients: in float32 to summation order, in bfloat16 to
    bfloat16's rounding of the same inputs."""
    from glow_tf.nets.conv import bias_relu

    rng = np.random.default_rng(5)
    y = rng.standard_normal((4, 16, 16, 8)).astype(np.float32)
    bias = rng.standard_normal(8).astype(np.float32)
    upstream = rng.standard_normal((4, 16, 16, 8)).astype(np.float32)
    grads = {}
    for dtype in (tf.float32, tf.bfloat16):
        yy, bb = tf.constant(y, dtype), tf.constant(bias, dtype)
        with tf.GradientTape() as tape:
            tape.watch([yy, bb])
            loss = tf.reduce_sum(tf.cast(bias_relu(yy, bb), tf.float32) * upstream)
        grads[dtype] = [tf.cast(g, tf.float32).numpy() for g in tape.gradient(loss, [yy, bb])]

    def reference(y, bias):  # autodiff of relu(y + bias) in float32
        with tf.GradientTape() as tape:
            yy, bb = tf.constant(y), tf.constant(bias)
            tape.watch([yy, bb])
            loss = tf.reduce_sum(tf.nn.relu(yy + bb) * upstream)
        return [g.numpy() for g in tape.gradient(loss, [yy, bb])]

    for ours, ref in zip(grads[tf.float32], reference(y, bias)):
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)
    rounded = [tf.cast(tf.cast(a, tf.bfloat16), tf.float32).numpy() for a in (y, bias)]
    for ours, ref in zip(grads[tf.bfloat16], reference(*rounded)):
        np.testing.assert_allclose(ours, ref, rtol=2**-7, atol=0.02)


def test_bias_relu_gradient_with_an_unknown_batch_size():
    """In a graph whose batch size is unknown (a served model's), the bias gradient's row of
    ones takes its length from the running tensor."""
    from glow_tf.nets.conv import bias_relu

    bias = tf.constant([0.5, -0.5, 0.0])

    @tf.function(input_signature=[tf.TensorSpec([None, 4, 4, 3])])
    def grads(y):
        with tf.GradientTape() as tape:
            tape.watch([y, bias])
            loss = tf.reduce_sum(bias_relu(y, bias) ** 2)
        return tape.gradient(loss, [y, bias])

    y = tf.random.stateless_normal([5, 4, 4, 3], seed=[2, 7])
    dy, dbias = grads(y)
    z = tf.nn.relu(y + bias)
    np.testing.assert_allclose(dy.numpy(), (2 * z).numpy(), rtol=1e-6)
    np.testing.assert_allclose(dbias.numpy(), tf.reduce_sum(2 * z, [0, 1, 2]).numpy(), rtol=1e-5)
