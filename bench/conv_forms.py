"""The coupling network's convolutions, one shape at a time: tf.nn.conv2d vs glow_tf.nets.conv's
form.

    python bench/conv_forms.py [--batch 16] [--width 512] [--iters 7]

For case a (32x32x3, 3 levels, width 512, batch 16) every level's three coupling-network
convolutions -- input conv3x3 C/2 -> width, hidden conv1x1 width -> width, output conv3x3
width -> C (additive) or 2C (affine) -- are timed as a training step (forward + gradients for
input and kernel) and forward only, once through `tf.nn.conv2d` and once through the form
`glow_tf.nets.conv.conv_form` picks, interleaved. Prints a table (GFLOP/s from the multiply-adds)
and one JSON line per shape.
"""

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import median  # noqa: E402


def shapes(width, image=32, channels=3, levels=3):
    """(level, name, spatial, C_in, C_out, k) of each coupling-network convolution."""
    out, size, c = [], image, channels
    for level in range(levels):
        size, c = size // 2, c * 4
        out += [
            (level, 'in3x3', size, c // 2, width, 3),
            (level, 'hidden1x1', size, width, width, 1),
            (level, 'out3x3 additive', size, width, c - c // 2, 3),
            (level, 'out3x3 affine', size, width, 2 * (c - c // 2), 3),
        ]
        c = c // 2
    return out


def timer(fn, x, kernel, train, iters):
    import tensorflow as tf

    @tf.function(autograph=False)
    def step(x):
        if not train:
            return tf.reduce_sum(fn(x, kernel))
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x, kernel)
            loss = tf.reduce_sum(y * y)
        dx, dk = tape.gradient(loss, [x, kernel])
        return tf.reduce_sum(dx) + tf.reduce_sum(dk)

    def call():
        step(x).numpy()

    call()
    return call


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--width', type=int, default=512)
    p.add_argument('--iters', type=int, default=7)
    args = p.parse_args(argv)
    import tensorflow as tf

    from bench.common import interleaved
    from glow_tf.nets.conv import conv2d_same, conv_form

    rows = []
    for level, name, size, c_in, c_out, k in shapes(args.width):
        x = tf.random.stateless_normal([args.batch, size, size, c_in], seed=[0, level])
        kernel = tf.Variable(
            tf.random.stateless_normal([k, k, c_in, c_out], seed=[1, level]) * 0.03
        )
        form = conv_form(kernel.shape)
        fns = {}
        for mode in ('train', 'forward'):
            fns[f'conv2d {mode}'] = timer(
                lambda a, b: tf.nn.conv2d(a, b, 1, 'SAME'), x, kernel, mode == 'train', args.iters
            )
            fns[f'form {mode}'] = timer(
                lambda a, b: conv2d_same(a, b, form=form), x, kernel, mode == 'train', args.iters
            )
        t = {key: median(v) for key, v in interleaved(fns, args.iters, warmup=0).items()}
        macs = args.batch * size * size * k * k * c_in * c_out
        row = {
            'level': level,
            'conv': name,
            'shape': [args.batch, size, size, c_in],
            'kernel': [k, k, c_in, c_out],
            'form': form,
            'ms': {key: 1e3 * v for key, v in t.items()},
            'gflops': {key: (6 if 'train' in key else 2) * macs / v / 1e9 for key, v in t.items()},
        }
        rows.append(row)
        print('JSON ' + json.dumps(row), flush=True)
    print(
        '| level | conv | input | form | train ms conv2d -> form | speedup '
        '| train GFLOP/s conv2d -> form | forward ms conv2d -> form | speedup |'
    )
    print('|---|---|---|---|---|---|---|---|---|')
    for r in rows:
        ms, gf = r['ms'], r['gflops']
        print(
            f"| {r['level']} | {r['conv']} | {'x'.join(map(str, r['shape']))} | {r['form']} | "
            f"{ms['conv2d train']:.2f} -> {ms['form train']:.2f} | "
            f"{ms['conv2d train'] / ms['form train']:.2f}x | "
            f"{gf['conv2d train']:.0f} -> {gf['form train']:.0f} | "
            f"{ms['conv2d forward']:.2f} -> {ms['form forward']:.2f} | "
            f"{ms['conv2d forward'] / ms['form forward']:.2f}x |"
        )


if __name__ == '__main__':
    main()
