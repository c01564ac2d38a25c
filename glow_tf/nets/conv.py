"""'SAME' stride-1 convolutions of the coupling networks, in the form that runs fastest on a CPU.

    y[b, i, j, :] = sum_{p, q} x[b, i + p - kh//2, j + q - kw//2, :] · K[p, q]    (zero padding)

The same sum is computed in one of four ways (forms):

* 1x1 kernels (the coupling network's width x width hidden layer, most of its FLOPs):
  one matrix product over all pixels, y = x · K, with x as [B·H·W, C_in].
* 3x3 kernels with few output channels (kh·kw·C_out <= C_in: the network's zero-initialised
  output layer, width -> C or 2C): "product, then shift and add": z = x · K~ with
  K~ = K rearranged to [C_in, kh·kw·C_out] (one matrix product), then
  y[i, j] = sum_{p, q} z[i + p - kh//2, j + q - kw//2, (p, q)] (nine shifted slices of a padded z).
* 3x3 kernels with few input channels (kh·kw·C_in <= C_out: the network's input layer
  C/2 -> width): "im2col": the kh·kw shifted copies of the padded x side by side,
  [B·H·W, kh·kw·C_in], times K as [kh·kw·C_in, C_out] (one matrix product).
* `tf.nn.conv2d` (oneDNN on a CPU, cuDNN on a GPU), for any shape.

Each form is computed in two halves: `prepare_conv` lays the weights out for the form (the kernel
rearranged, the edge-bias map below added to the bias: a `PreparedConv`, which depends on the
weights alone and can be computed for kernels stacked along leading axes) and `apply_conv` runs
it on x; `conv2d_same` is the two in a row.

`conv_form(kernel_shape)` is the fixed rule tuned on an AVX2 CPU (`--conv_forms gemm`);
`glow_tf.nets.conv_forms` chooses among the forms by timing them on the running machine
(`--conv_forms auto`, the default).

On this project's CPU machine oneDNN's Conv2D ran the two rewritten shapes, forward and both
gradients, at 10-25 GFLOP/s against 100+ for large convolutions, which made the width -> C
output convolution take as long as the width x width layer with 1/40 of its FLOPs; the
rewritten forms use GEMMs (bench/RESULTS.md, "convolution forms"). Results equal
`tf.nn.conv2d` up to float32 summation order. With a GPU visible, every shape goes to
`tf.nn.conv2d` (cuDNN handles these shapes; the rewrite is unmeasured there).

Shapes: x [B, H, W, C_in], kernel [kh, kw, C_in, C_out] (odd kh, kw), bias [C_out] or None
-> [B, H, W, C_out].

Edge bias (the original code's `add_edge_padding`, on by default in every 3x3 convolution of
openai/glow): the input is zero-padded *and* gets one extra channel that is 1 on the padded border
and 0 inside, so the network can tell padding from a black pixel. With the kernel split as
K = [K_x, K_e] along its input channels (K_e: the border channel's taps),

    conv_valid(concat(pad(x), border), K) = conv_same(x, K_x) + conv_valid(border, K_e)

and the second term does not depend on x: one [H, W, C_out] map, added like a bias.
`edge_bias_map` computes it; `conv2d_same(..., edge_bias=True)` uses it.
"""

import functools
from typing import NamedTuple

import tensorflow as tf

from glow_tf.flows.base import batch_size


@functools.lru_cache(maxsize=1)
def gpu_visible():
    return bool(tf.config.list_physical_devices('GPU'))


FORMS = ('conv2d', 'matmul', 'shift_add', 'im2col')


def candidate_forms(kernel_shape):
    """The forms that can compute a kernel of this shape: 'conv2d' first, then its GEMM forms."""
    kh, kw, c_in, c_out = (int(d) for d in kernel_shape)
    if kh == kw == 1:
        return ('conv2d', 'matmul')
    forms = ['conv2d']
    if kh % 2 == 1 and kw % 2 == 1:
        if kh * kw * c_out <= c_in:
            forms.append('shift_add')
        if kh * kw * c_in <= c_out:
            forms.append('im2col')
    return tuple(forms)


def conv_form(kernel_shape):
    """The fixed rule (`--conv_forms gemm`, tuned on an AVX2 CPU): 'matmul' for 1x1 kernels,
    'shift_add' for few output channels, else 'conv2d' (and 'conv2d' for every shape when a
    GPU is visible). im2col is only ever chosen by measurement."""
    if gpu_visible():
        return 'conv2d'
    forms = candidate_forms(kernel_shape)
    return 'matmul' if 'matmul' in forms else 'shift_add' if 'shift_add' in forms else 'conv2d'


def edge_bias_map(edge_kernel, height, width):
    """conv_valid(border, K_e) -> [..., H, W, C_out]: the border channel's contribution.

    border is [H + kh - 1, W + kw - 1], 1 on the kh//2, kw//2 wide padding ring and 0 inside;
    edge_kernel is K_e, [..., kh, kw, 1, C_out] (leading axes: kernels stacked, one map each).
    """
    lead = [int(d) for d in edge_kernel.shape[:-4]]
    kh, kw, c_out = (
        int(edge_kernel.shape[-4]),
        int(edge_kernel.shape[-3]),
        int(edge_kernel.shape[-1]),
    )
    n = len(lead)
    if n:  # the stacked kernels side by side as output channels: one convolution for all
        order = [n, n + 1, n + 2] + list(range(n)) + [n + 3]
        edge_kernel = tf.reshape(tf.transpose(edge_kernel, order), [kh, kw, 1, -1])
    inside = tf.ones([1, height, width, 1], edge_kernel.dtype)
    border = 1.0 - tf.pad(inside, [[0, 0], [kh // 2, kh // 2], [kw // 2, kw // 2], [0, 0]])
    edge = tf.nn.conv2d(border, edge_kernel, strides=1, padding='VALID')
    if not n:
        return tf.reshape(edge, [height, width, c_out])
    edge = tf.reshape(edge, [height, width] + lead + [c_out])
    return tf.transpose(edge, list(range(2, 2 + n)) + [0, 1, 2 + n])


class PreparedConv(NamedTuple):
    """A convolution's weights laid out for its form (`prepare_conv`): all that depends on the
    weights alone, so it can be computed once for several calls or for stacked kernels.

    form: one of FORMS. kernel: 'matmul' [C_in, C_out], 'shift_add' [C_in, kh·kw·C_out],
    'im2col' [kh·kw·C_in, C_out], 'conv2d' [kh, kw, C_in, C_out]. bias: [C_out], an edge-bias
    map [H, W, C_out] (plus the bias) or None. kernel_size: (kh, kw). Tensors may carry leading
    axes (stacked kernels); `apply_conv` takes one convolution's.
    """

    form: str
    kernel: object
    bias: object
    kernel_size: tuple


def prepare_conv(kernel, bias=None, form=None, edge_bias=False, spatial=None):
    """`PreparedConv` of kernel [..., kh, kw, C_in, C_out] (C_in + 1 with edge_bias: the border
    channel's taps last) and bias [..., C_out] or None. `form` None: `conv_form`. `spatial`:
    (H, W) of the input, needed by edge_bias (module docstring; 1x1 kernels have no border)."""
    kh, kw, c_in, c_out = (int(d) for d in kernel.shape[-4:])
    lead = [int(d) for d in kernel.shape[:-4]]
    if edge_bias and (kh > 1 or kw > 1):
        height, width = spatial if spatial is not None else (None, None)
        if height is None or width is None:
            raise ValueError(
                f"edge_bias needs a static height and width, got input spatial size {spatial}"
            )
        kernel, edge_kernel = tf.split(kernel, [c_in - 1, 1], axis=-2)
        c_in -= 1
        edge = edge_bias_map(edge_kernel, int(height), int(width))
        bias = edge if bias is None else edge + bias[..., None, None, :]
    form = form or conv_form((kh, kw, c_in, c_out))
    if form == 'matmul':
        if kh != 1 or kw != 1:
            raise ValueError(
                f"the matmul form needs a 1x1 kernel, got shape {tuple(kernel.shape[-4:])}"
            )
        kernel = tf.reshape(kernel, lead + [c_in, c_out])
    elif form == 'shift_add':
        n = len(lead)
        kernel = tf.transpose(kernel, list(range(n)) + [n + 2, n, n + 1, n + 3])
        kernel = tf.reshape(kernel, lead + [c_in, kh * kw * c_out])
    elif form == 'im2col':
        kernel = tf.reshape(kernel, lead + [kh * kw * c_in, c_out])
    elif form != 'conv2d':
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    return PreparedConv(form, kernel, bias, (kh, kw))


def apply_conv(x, prepared, relu=False):
    """relu?(conv(x) + bias) for x [B, H, W, C_in] with one `PreparedConv` (no leading axes)."""
    form, kernel, bias, (kh, kw) = prepared
    if form == 'matmul':
        return _matmul_1x1(x, kernel, bias, relu)
    if form == 'shift_add':
        y = _shift_add(x, kernel, kh, kw)
    elif form == 'im2col':
        y = _im2col(x, kernel, kh, kw)
    else:
        y = tf.nn.conv2d(x, kernel, strides=1, padding='SAME')
    if bias is not None and len(bias.shape) == 1 and relu and form == 'conv2d':
        return bias_relu(y, bias)
    if bias is not None:
        y = tf.nn.bias_add(y, bias) if len(bias.shape) == 1 else y + bias
    return tf.nn.relu(y) if relu else y


def conv2d_same(x, kernel, bias=None, relu=False, form=None, edge_bias=False):
    """relu?(conv(x, kernel) + bias), 'SAME' padding, stride 1. `form` overrides conv_form().

    edge_bias=True: the kernel has one more input channel than x, the border channel (module
    docstring); its contribution is added as a per-position bias. 1x1 kernels have no padding and
    therefore no border channel (as in the original).
    """
    prepared = prepare_conv(kernel, bias, form, edge_bias, tuple(x.shape[1:3]))
    return apply_conv(x, prepared, relu)


@tf.custom_gradient
def bias_relu(y, bias):
    """relu(y + bias), bias [C] -> y's shape. Forward: BiasAdd then Relu, which Grappler fuses
    with the convolution producing y. Backward: dz = dy · [z > 0], d bias = Σ_{b,h,w} dz, the
    bias gradient as a row of ones times dz as [B·H·W, C] (a matrix-vector product, twice as
    fast here as a sum over three axes). As a BiasAddGrad, oneDNN's rewrite fuses it into the
    kernel's gradient (Conv2DBackpropFilterWithBias), which took 8.5 ms a call on the width x
    width 1x1 layer of the P1 case a, where the kernel gradient alone takes 6.5 ms
    (docs/performance.md)."""
    z = tf.nn.relu(tf.nn.bias_add(y, bias))

    def grad(dz_out):
        dz = tf.raw_ops.ReluGrad(gradients=dz_out, features=z)
        channels = int(z.shape[-1])
        rows = tf.reshape(dz, [-1, channels])  # [B·H·W, C]
        ones = tf.ones([1, batch_size(rows)], dz.dtype)
        return dz, tf.reshape(tf.matmul(ones, rows), [channels])

    return z, grad


def _matmul_1x1(x, kernel, bias, relu):
    c_in, c_out = (int(d) for d in kernel.shape)
    y = tf.matmul(tf.reshape(x, [-1, c_in]), kernel)
    if bias is not None:
        y = tf.nn.bias_add(y, bias)  # on the 2-D product, where Grappler fuses it
    if relu:
        y = tf.nn.relu(y)
    return tf.reshape(y, _nhw_shape(x, c_out))


def _shift_add(x, taps, kh, kw):
    c_in, n_taps = (int(d) for d in taps.shape)
    z = tf.matmul(tf.reshape(x, [-1, c_in]), taps)  # [B·H·W, kh·kw·C_out]
    z = tf.reshape(z, _nhw_shape(x, n_taps))
    return _sum_of_shifted_taps(z, kh, kw, n_taps // (kh * kw))


def _im2col(x, kernel, kh, kw):
    c_in, c_out = int(x.shape[-1]), int(kernel.shape[-1])
    height, width = x.shape[1], x.shape[2]
    if height is None or width is None:
        raise ValueError(f"the im2col form needs a static height and width, got {x.shape}")
    padded = tf.pad(x, [[0, 0], [kh // 2, kh // 2], [kw // 2, kw // 2], [0, 0]])
    columns = tf.concat(
        [padded[:, p : p + height, q : q + width, :] for p in range(kh) for q in range(kw)],
        axis=-1,
    )  # [B, H, W, kh·kw·C_in], (p, q, c) order = the kernel's row-major order
    y = tf.matmul(tf.reshape(columns, [-1, kh * kw * c_in]), kernel)
    return tf.reshape(y, _nhw_shape(x, c_out))


def _nhw_shape(x, channels):
    """[B, H, W, channels] for an NHWC `x`: a constant when x's static shape knows B, H and W."""
    height, width = x.shape[1], x.shape[2]
    if height is None or width is None:
        return tf.concat([tf.shape(x)[:3], [channels]], axis=0)
    return [batch_size(x), height, width, channels]


def _sum_of_shifted_taps(z, kh, kw, c_out):
    """y[i, j] = sum_{p, q} z[i + p - kh//2, j + q - kw//2, (p, q)]  (zero outside), with the
    adjoint written out: dz[i, j, (p, q)] = dy[i - p + kh//2, j - q + kw//2]. (Autodiff of the
    nine slices would materialise nine padded z-sized gradients before summing them.)"""
    height, width = z.shape[1], z.shape[2]
    if height is None or width is None:
        raise ValueError(f"the shift_add form needs a static height and width, got {z.shape}")
    pad = [[0, 0], [kh // 2, kh // 2], [kw // 2, kw // 2], [0, 0]]

    @tf.custom_gradient
    def shift_sum(z):
        padded = tf.pad(z, pad)
        y = None
        for p in range(kh):
            for q in range(kw):
                first = (p * kw + q) * c_out
                tap = padded[:, p : p + height, q : q + width, first : first + c_out]
                y = tap if y is None else y + tap

        def grad(dy):
            padded_dy = tf.pad(dy, pad)
            return tf.concat(
                [
                    padded_dy[
                        :, kh - 1 - p : kh - 1 - p + height, kw - 1 - q : kw - 1 - q + width, :
                    ]
                    for p in range(kh)
                    for q in range(kw)
                ],
                axis=-1,
            )

        return y, grad

    return shift_sum(z)
