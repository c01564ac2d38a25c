"""Mixed precision of the coupling networks: the arithmetic that dominates a Glow step.

    precision   Keras dtype policy   variables   coupling-network arithmetic
    'fp32'      float32              float32     float32
    'bf16'      mixed_bfloat16       float32     bfloat16 (CPUs with AVX512_BF16 / AMX, TPUs, GPUs)
    'fp16'      mixed_float16        float32     float16 (GPUs; training needs loss scaling)
    'auto'      'bf16' where the hardware computes bfloat16 natively (a CPU with AVX512_BF16 or
                AMX-BF16, a GPU of compute capability >= 8.0), else 'fp32' (`resolve_precision`)

Only NN() of each coupling layer (`CouplingNetwork`: its three convolutions, the folded ActNorms
and the zero-initialised output layer) computes in the low precision; it casts its output back to
float32. ActNorm, the invertible 1x1 convolutions, the coupling's shift and scale arithmetic,
every log-determinant, the priors and the loss stay float32, so log p(x) is summed in float32.
The weights themselves are float32 in every precision: a checkpoint moves between precisions.

Invertibility: y_b = x_b + t(x_a) is inverted with t(y_a = x_a) from the same low-precision
network, but x_a itself is what float32 reconstructed (off by ~1e-6). bfloat16's coarse rounding
absorbs that: decode(encode(x)) is as exact as in float32 (max error ~1e-5). float16's finer grid
is crossed more often, each crossing moves an output by a float16 ulp and later levels inherit it:
errors up to ~1e-2 of a pixel (tests/test_precision.py). fp16 is a GPU training precision.
"""

import tensorflow as tf

from glow_tf.errors import ArgumentError
from glow_tf.nets.conv_forms import cpu_model_and_flags

POLICIES = {'fp32': 'float32', 'bf16': 'mixed_bfloat16', 'fp16': 'mixed_float16'}
PRECISIONS = ('fp32', 'bf16', 'fp16', 'auto')  # what --precision / Glow(precision=) accept
BF16_CPU_FLAGS = ('avx512_bf16', 'amx_bf16')  # /proc/cpuinfo flags of native bfloat16 units


def native_bf16():
    """True when this machine computes bfloat16 natively: a visible GPU of compute capability
    >= 8.0 (Ampere and later), else a CPU with one of BF16_CPU_FLAGS."""
    gpus = tf.config.list_physical_devices('GPU')
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return tuple(details.get('compute_capability') or (0, 0)) >= (8, 0)
    return bool(set(BF16_CPU_FLAGS) & cpu_model_and_flags()[1])


def resolve_precision(precision):
    """'auto' -> 'bf16' or 'fp32' for this machine (`native_bf16`); the others unchanged."""
    if precision not in PRECISIONS:
        raise ArgumentError(
            'precision', f"precision must be one of {PRECISIONS}, got {precision!r}"
        )
    if precision == 'auto':
        return 'bf16' if native_bf16() else 'fp32'
    return precision


def policy_name(precision):
    """The Keras dtype policy name of a precision ('fp32', 'bf16', 'fp16' or 'auto')."""
    return POLICIES[resolve_precision(precision)]


def precision_of(policy_name_):
    """The precision ('fp32', 'bf16', 'fp16') of a Keras dtype policy name."""
    for precision, name in POLICIES.items():
        if name == policy_name_:
            return precision
    raise ArgumentError('precision', f"no precision uses the Keras dtype policy {policy_name_!r}")
