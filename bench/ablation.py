"""Ablation of the coupling-network speedups: each variant against the previous implementation.

    python bench/ablation.py [--quick] [--iters 5] [--cases a_additive,a_affine]

Variants of the same glow_tf model (same weights), traced and timed interleaved in one process:

  reference  conv -> ActNorm -> ReLU with tf.nn.conv2d everywhere (the implementation before
             glow_tf/nets/conv.py and ActNorm folding; also how tfp.bijectors.Glow's networks run)
  folded     ActNorm folded into the convolutions: conv(x, K·s) + b·s -> ReLU, tf.nn.conv2d
  current    folded, and the convolutions in glow_tf.nets.conv's forms (GEMM for 1x1, product-then-
             shift-add for the width -> C output layer): what glow_tf runs

Prints one JSON line per case, then a table of training-step and sampling time per variant, the
speedup over `reference` (median of per-round ratios), peak step memory, and the relative L2
difference of the gradients against `reference` (the variants compute the same function).
"""

import argparse
import contextlib
import os
import sys
import types
from pathlib import Path

os.environ['TF_CPU_ALLOCATOR_USE_BFC'] = 'true'  # CPU allocator statistics; before importing TF
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import FULL_CASES, QUICK_CASES, GlowTFRunner, dumps, interleaved, median  # noqa: E402

VARIANTS = ('reference', 'folded', 'current')


@contextlib.contextmanager
def conv_forms(variant):
    """While tracing: force tf.nn.conv2d for every conv unless the variant is 'current'."""
    import glow_tf.nets.conv

    original = glow_tf.nets.conv.conv_form
    if variant != 'current':
        glow_tf.nets.conv.conv_form = lambda kernel_shape: 'conv2d'
    try:
        yield
    finally:
        glow_tf.nets.conv.conv_form = original


def _use_variant(model, variant):
    if variant == 'reference':
        for step in model.flow_steps:
            nn = step.coupling.nn
            nn.call = types.MethodType(type(nn)._call_unfolded, nn)


def _copy_weights(src, dst):
    """Same weights in every variant (the ActNorm init sees fresh dequantisation noise)."""
    for a, b in zip(src.model.weights, dst.model.weights):
        b.assign(a)


def make_variant(case, variant, weights_from=None):
    runner = GlowTFRunner(case, seed=0)
    if weights_from is not None:
        _copy_weights(weights_from, runner)
    _use_variant(runner.model, variant)
    with conv_forms(variant):  # the first calls trace the step and the sampler
        runner.train()
        runner.sample()
    return runner


def gradient_difference(case, variant):
    """Relative L2 difference of the loss gradients of `variant` against 'reference'."""
    import numpy as np
    import tensorflow as tf

    grads, first = {}, None
    for v in ('reference', variant):
        runner = GlowTFRunner(case, seed=0)
        if first is None:  # move every weight off its init (zero convs included)
            rng = np.random.default_rng(0)
            for w in runner.model.trainable_variables:
                w.assign(w + 0.02 * rng.standard_normal(w.shape).astype(np.float32))
            first = runner
        else:
            _copy_weights(first, runner)
        model = runner.model
        _use_variant(model, v)
        with conv_forms(v), tf.GradientTape() as tape:
            loss = tf.reduce_mean(model.objective(runner.x, noise=False)[0])
        grads[v] = tape.gradient(loss, model.trainable_variables)
    num = sum(
        float(tf.reduce_sum(tf.square(a - b))) for a, b in zip(grads[variant], grads['reference'])
    )
    den = sum(float(tf.reduce_sum(tf.square(a))) for a in grads['reference'])
    return (num / den) ** 0.5


def run(case, iters, quick_case):
    from bench.bench_glow import step_memory_mb

    runners = {'reference': make_variant(case, 'reference')}
    for v in VARIANTS[1:]:
        runners[v] = make_variant(case, v, weights_from=runners['reference'])
    train = interleaved({v: r.train for v, r in runners.items()}, iters, warmup=0)
    sample = interleaved({v: r.sample for v, r in runners.items()}, iters, warmup=0)
    out = {'case': case.name, 'config': case.as_dict(), 'iters': iters, 'variants': {}}
    for v, r in runners.items():
        out['variants'][v] = {
            'train_step_s': median(train[v]),
            'train_speedup': median([a / b for a, b in zip(train['reference'], train[v])]),
            'sample_s': median(sample[v]),
            'sample_speedup': median([a / b for a, b in zip(sample['reference'], sample[v])]),
            'peak_step_mb': step_memory_mb(r),
            # equality is a property of the code: checked on the small configuration
            'grad_rel_l2_vs_reference': gradient_difference(quick_case, v)
            if v != 'reference'
            else 0.0,
        }
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--quick', action='store_true', help='tiny sizes (development)')
    p.add_argument('--iters', type=int, default=5)
    p.add_argument('--cases', default='a_additive,a_affine')
    args = p.parse_args(argv)
    cases = QUICK_CASES if args.quick else FULL_CASES
    rows = []
    for name in args.cases.split(','):
        if name not in cases or name not in QUICK_CASES:
            p.error(f"--cases: unknown case {name!r}; choose from {','.join(QUICK_CASES)}")
        r = run(cases[name], args.iters, QUICK_CASES[name])
        print('JSON ' + dumps(r), flush=True)
        rows.append(r)
    print(
        '| case | variant | train step s | train speedup | sample s/batch | sample speedup '
        '| peak step MB | grad rel L2 vs reference |'
    )
    print('|---|---|---|---|---|---|---|---|')
    for r in rows:
        for v, d in r['variants'].items():
            print(
                f"| {r['case']} | {v} | {d['train_step_s']:.3f} | {d['train_speedup']:.2f}x | "
                f"{d['sample_s']:.3f} | {d['sample_speedup']:.2f}x | {d['peak_step_mb']:.0f} | "
                f"{d['grad_rel_l2_vs_reference']:.1e} |"
            )


if __name__ == '__main__':
    main()
