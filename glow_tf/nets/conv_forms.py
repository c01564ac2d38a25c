"""Which form computes each convolution: measured on the running machine, cached per machine.

    conv2d(x, kernel, bias, relu, edge_bias, policy) = conv2d_same(..., form=choose_form(...))

The forms of `glow_tf.nets.conv` compute the same sum; which is fastest depends on the CPU (its
vector units, oneDNN's kernels for that shape), the TF version and the shapes. Policies:

    'auto'    time every candidate form of the shape the first time the shape is met, in the
              direction it will run: forward + both gradients when a gradient tape records (a
              training step), the forward pass alone otherwise (sampling, encoding, a test pass;
              `glow_tf.internals.gradients_recorded`); use the fastest. The two directions often
              pick differently (im2col computes the input layer's forward pass fastest, oneDNN
              its gradients). The choice is kept in memory and in a JSON file per machine (CPU
              model + flags + TF version) under `glow_tf.cachedir.cache_root()`/conv_forms/, so
              later runs pay nothing.
    'gemm'    the fixed rule `conv.conv_form` (GEMM forms for the 1x1 and output layers), tuned on
              an AVX2 CPU: what glow_tf used before it measured.
    'native'  `tf.nn.conv2d` everywhere.

With a GPU visible every policy uses `tf.nn.conv2d` (cuDNN has its own autotuner). A shape is
[B, H, W, C_in] x [kh, kw, C_in, C_out], a dtype and a direction; an unknown batch is timed at
16. Every direction and form computes the same sum (up to float32 summation order), so a
function traced in one direction and differentiated later is still exact, only not the fastest.
`measured_choices()` lists what was measured in this process and why it was chosen.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from concurrent.futures import ThreadPoolExecutor

import tensorflow as tf

from glow_tf.cachedir import cache_root
from glow_tf.fileio import atomic_write_bytes
from glow_tf.internals import gradients_recorded
from glow_tf.nets.conv import (
    apply_conv,
    candidate_forms,
    conv2d_same,
    conv_form,
    gpu_visible,
    prepare_conv,
)

POLICIES = ('auto', 'gemm', 'native')
FORWARD = 'forward'  # the key suffix of forward-only choices (training choices have none)
NOMINAL_BATCH = 16  # the batch a shape with an unknown batch size is timed at
_REPEATS = 5

_choices: dict[str, dict] = {}  # this process's measured shapes: key -> record
_loaded = False


def check_policy(policy):
    if policy not in POLICIES:
        raise ValueError(f"conv_forms must be one of {POLICIES}, got {policy!r}")
    return policy


def conv2d(x, kernel, bias=None, relu=False, edge_bias=False, policy='auto'):
    """`conv2d_same` in the form `policy` picks for x's shape and the kernel's (see module)."""
    prepared = prepare_conv2d(x.shape, kernel, bias, edge_bias, policy, x.dtype)
    return apply_conv(x, prepared, relu)


def prepare_conv2d(x_shape, kernel, bias=None, edge_bias=False, policy='auto', dtype=tf.float32):
    """`conv.prepare_conv` in the form `policy` picks for inputs [B, H, W, C_in] of `x_shape`:
    the weights-only half of `conv2d` (kernel and bias may carry leading, stacked axes)."""
    shape = tuple(kernel.shape[-4:])
    if edge_bias and (shape[0] > 1 or shape[1] > 1):
        shape = shape[:2] + (shape[2] - 1,) + shape[3:]  # the border channel is not convolved
    form = choose_form(policy, x_shape, shape, dtype)
    return prepare_conv(kernel, bias, form, edge_bias, tuple(x_shape[1:3]))


def choose_form(policy, x_shape, kernel_shape, dtype=tf.float32):
    """The form of `glow_tf.nets.conv` that `policy` uses for this convolution."""
    check_policy(policy)
    if policy == 'native' or gpu_visible():
        return 'conv2d'
    if policy == 'gemm':
        return conv_form(kernel_shape)
    candidates = candidate_forms(kernel_shape)
    if len(candidates) == 1:
        return candidates[0]
    batch = x_shape[0] if x_shape[0] is not None else NOMINAL_BATCH
    shape = (int(batch), int(x_shape[1]), int(x_shape[2]), int(kernel_shape[2]))
    kernel = tuple(int(d) for d in kernel_shape)
    training = gradients_recorded()
    key = f"{'x'.join(map(str, shape))}|{'x'.join(map(str, kernel))}|{tf.as_dtype(dtype).name}"
    key += '' if training else f'|{FORWARD}'
    _load_cache()
    if key not in _choices:
        # timed in a thread of its own: eagerly, and outside any tape or trace of the caller
        # (the shape may be met while a tf.function is traced, or under stop_recording)
        with ThreadPoolExecutor(1) as pool:
            ms = {
                f: pool.submit(_time_form, f, shape, kernel, dtype, training).result()
                for f in candidates
            }
        _choices[key] = {'ms': ms, 'form': min(ms, key=ms.get)}
        _save_cache()
    return _choices[key]['form']


def measured_choices():
    """[(input shape, kernel shape, dtype, direction, {form: ms per call}, chosen form)];
    direction is 'train' (forward + both gradients) or 'forward'."""
    _load_cache()
    rows = []
    for key, record in sorted(_choices.items()):
        x, k, dtype, *forward = key.split('|')
        direction = FORWARD if forward else 'train'
        rows.append((x, k, dtype, direction, dict(record['ms']), record['form']))
    return rows


def cpu_model_and_flags():
    """(CPU model name, set of its /proc/cpuinfo flags); the flags are empty off Linux."""
    model, flags = platform.processor() or 'unknown', set()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                key = line.split(':', 1)[0].strip()
                if key == 'model name':
                    model = line.split(':', 1)[1].strip()
                elif key == 'flags':
                    flags = set(line.split(':', 1)[1].split())
                    break
    except OSError:
        pass
    return model, flags


def machine_key():
    """What the timings depend on: CPU model and flags, TF version (one cache file each)."""
    model, flags = cpu_model_and_flags()
    text = f"{platform.machine()}|{model}|{' '.join(sorted(flags))}|tf {tf.__version__}"
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def cache_path():
    return cache_root() / 'conv_forms' / f'{machine_key()}.json'


def _load_cache():
    global _loaded
    if _loaded:
        return
    _loaded = True
    try:
        stored = json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return  # no cache yet, or an unreadable one: measure again
    for key, record in stored.get('choices', {}).items():
        if isinstance(record, dict) and record.get('form') in record.get('ms', {}):
            _choices.setdefault(key, record)


def _save_cache():
    payload = {'tensorflow': tf.__version__, 'choices': _choices}
    try:
        text = json.dumps(payload, indent=1, sort_keys=True).encode()
        atomic_write_bytes(cache_path(), lambda f: f.write(text))
    except OSError:
        pass  # a read-only cache directory costs a re-measurement next time, nothing else


def _time_form(form, x_shape, kernel_shape, dtype, training=True):
    """Milliseconds of one forward + backward (input and kernel gradients) pass in `form`, or of
    the forward pass alone (`training=False`): the best of _REPEATS after a warm-up call, as a
    compiled graph."""
    x = tf.cast(tf.random.stateless_normal(x_shape, seed=[0, 1]), dtype)
    kernel = tf.cast(tf.random.stateless_normal(kernel_shape, seed=[0, 2]) * 0.05, dtype)

    @tf.function(autograph=False)
    def step(x, kernel):
        if not training:
            return tf.reduce_sum(tf.cast(conv2d_same(x, kernel, form=form), tf.float32))
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = conv2d_same(x, kernel, form=form)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 2)
        dx, dk = tape.gradient(loss, [x, kernel])
        return tf.reduce_sum(tf.cast(dx, tf.float32)) + tf.reduce_sum(tf.cast(dk, tf.float32))

    step(x, kernel).numpy()
    best = float('inf')
    for _ in range(_REPEATS):
        start = time.perf_counter()
        step(x, kernel).numpy()
        best = min(best, time.perf_counter() - start)
    return 1e3 * best
