"""Prototypes of model-layer speedups, measured against the current layers (not used by the model).

    python bench/prototypes.py [--quick] [--iters 5] [--cases a_additive,a_affine]

fold_actnorm(model): in every coupling network, fold each ActNorm (and the zero-conv's output
scale) into the preceding convolution:

    (conv(x, K) + b) * s  ==  conv(x, K * s) + b * s          (s = exp(logscale_factor * logs))

so Grappler/oneDNN fuse Conv2D + BiasAdd + Relu (and the backward Conv2DBackpropFilterWithBias)
instead of running two extra elementwise passes, and their gradients, over every width-512
hidden activation, and keep fewer of those activations for the backward pass. Same function,
same parameters, same gradients (up to float round-off); the data-dependent init still takes the
unfolded path. Proposed for glow_tf/coupling.py and
glow_tf/zero_conv.py.

The script checks equality (log p and gradients) and times train steps and sampling of the
original and folded models interleaved and their peak step memory (allocator statistics, as
bench_glow.py), printing a table and one JSON line per case.
"""
import argparse
import os
import sys
import types
from pathlib import Path

os.environ['TF_CPU_ALLOCATOR_USE_BFC'] = 'true'   # CPU allocator statistics; before importing TF
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import FULL_CASES, QUICK_CASES, GlowTFRunner, dumps, interleaved, median  # noqa: E402


def _folded_nn_call(self, x):
    import tensorflow as tf
    if self.norm1._ddi_reduce is not None or self.norm2._ddi_reduce is not None:
        return type(self).call(self, x)     # data-dependent init needs the unfolded statistics
    s1 = tf.exp(self.norm1._log_scale())
    h = tf.nn.conv2d(x, self.kernel1 * s1, strides=1, padding='SAME')
    h = tf.nn.relu(tf.nn.bias_add(h, self.norm1.bias * s1))
    s2 = tf.exp(self.norm2._log_scale())
    h = tf.nn.conv2d(h, self.kernel2 * s2, strides=1, padding='SAME')
    h = tf.nn.relu(tf.nn.bias_add(h, self.norm2.bias * s2))
    out = self.out
    s3 = tf.exp(out.logs * out.logscale_factor)
    return tf.nn.bias_add(tf.nn.conv2d(h, out.kernel * s3, strides=1, padding='SAME'), out.bias * s3)


def fold_actnorm(model):
    """Patch every coupling network of `model` (instance-level) to the folded form."""
    for step in model.flow_steps:
        nn = step.coupling.nn
        nn.call = types.MethodType(_folded_nn_call, nn)
    return model


def check_equal(case):
    import numpy as np
    import tensorflow as tf
    a, b = GlowTFRunner(case, seed=0), GlowTFRunner(case, seed=0)
    for va, vb in zip(a.model.weights, b.model.weights):   # identical weights, random (non-init)
        vb.assign(va)
    rng = np.random.default_rng(0)
    for va, vb in zip(a.model.trainable_variables, b.model.trainable_variables):
        value = va.numpy() + 0.02 * rng.standard_normal(va.shape).astype(np.float32)
        va.assign(value)
        vb.assign(value)
    fold_actnorm(b.model)
    x = tf.cast(a.x, tf.float32) / 256.0 - 0.5

    def grads(m):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(m.log_prob(x))
        return loss, tape.gradient(loss, m.trainable_variables)
    la, ga = grads(a.model)
    lb, gb = grads(b.model)
    num = sum(float(tf.reduce_sum(tf.square(p - q))) for p, q in zip(ga, gb))
    den = sum(float(tf.reduce_sum(tf.square(p))) for p in ga)
    return {'loss_rel_diff': abs(float(la - lb)) / abs(float(la)), 'grad_rel_l2': (num / den) ** 0.5}


def run(case, iters, quick_case):
    check = check_equal(quick_case)   # equality is a property of the code: check it small
    base, folded = GlowTFRunner(case, seed=0), GlowTFRunner(case, seed=0)
    fold_actnorm(folded.model)
    base.train(), folded.train()
    t = interleaved({'base': base.train, 'folded': folded.train}, iters, warmup=0)
    base.sample(), folded.sample()
    s = interleaved({'base': base.sample, 'folded': folded.sample}, iters, warmup=0)
    from bench.bench_glow import step_memory_mb
    mem = {'base': step_memory_mb(base), 'folded': step_memory_mb(folded)}
    return {'case': case.name, 'config': case.as_dict(), 'equality': check,
            'train_step_s': {k: median(v) for k, v in t.items()},
            'train_speedup': median([b / f for b, f in zip(t['base'], t['folded'])]),
            'sample_s': {k: median(v) for k, v in s.items()},
            'sample_speedup': median([b / f for b, f in zip(s['base'], s['folded'])]),
            'peak_step_mb': mem}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--quick', action='store_true')
    p.add_argument('--iters', type=int, default=5)
    p.add_argument('--cases', default='a_additive,a_affine')
    args = p.parse_args(argv)
    cases = QUICK_CASES if args.quick else FULL_CASES
    rows = []
    for name in args.cases.split(','):
        r = run(cases[name], args.iters, QUICK_CASES[name])
        print('JSON ' + dumps(r), flush=True)
        rows.append(r)
    print('| case | train step s (base -> folded) | train speedup | sample s/batch (base -> folded) '
          '| sample speedup | peak step MB (base -> folded) | grad rel L2 diff |')
    print('|---|---|---|---|---|---|---|')
    for r in rows:
        print(f"| {r['case']} | {r['train_step_s']['base']:.3f} -> {r['train_step_s']['folded']:.3f} | "
              f"{r['train_speedup']:.2f}x | {r['sample_s']['base']:.3f} -> {r['sample_s']['folded']:.3f} | "
              f"{r['sample_speedup']:.2f}x | {r['peak_step_mb']['base']:.0f} -> "
              f"{r['peak_step_mb']['folded']:.0f} | {r['equality']['grad_rel_l2']:.1e} |")


if __name__ == '__main__':
    main()
