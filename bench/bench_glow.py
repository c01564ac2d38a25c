"""Speed and memory benchmark: glow_tf against tfp.bijectors.Glow, and the memory modes.

    python bench/bench_glow.py                       # every case, full sizes (~20 min, 2 cores)
    python bench/bench_glow.py --quick               # tiny sizes, for CI / development
    python bench/bench_glow.py --cases a_affine,mem_sweep --iters 5
    python bench/bench_glow.py --cases a_additive,s_mnist --variants bf16,gemm,native

Cases (see bench/common.py and bench/README.md):
  a_additive, a_affine  32x32x3, L=3, K=8,  width 512, batch 16
  b_cifar               32x32x3, L=3, K=32, width 512, batch 16 (the paper's CIFAR-10 model)
  c_64                  64x64x3, L=4, K=16, width 512, batch 8
  s_mnist               32x32x1, L=3, K=8,  width 64,  batch 32 (the README main job's model)
  s_cifar128            32x32x3, L=3, K=8,  width 128, batch 32 (a small CIFAR model)
  mem_sweep             64x64x3, L=4, K in --sweep-depths, every memory mode (width --sweep-width)

Per comparison case, glow_tf and TFP's Glow at the matching configuration are built in this
process and their steps are timed *interleaved* (A B B A A B ...), so the ratios are robust to the
load of the shared machine. Per case it prints a table row and a JSON line (prefixed `JSON `):
training images/s, sampling images/s and seconds per batch, peak training-step tensor memory,
the ratios glow_tf / TFP, training FLOPs per image, achieved GFLOP/s and the fraction of this
machine's measured fp32 conv throughput.

Memory: TensorFlow's CPU allocator statistics (BFC allocator, enabled below before TensorFlow is
imported): peak bytes allocated during one training step minus the bytes held before it
(parameters, optimiser slots), i.e. activations kept for the backward pass + gradients +
temporaries. Measured per step, so models of several modes can share the process;
`--memory subprocess` cross-checks with one process per configuration (bench/memory_probe.py).
"""

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ['TF_CPU_ALLOCATOR_USE_BFC'] = 'true'  # CPU allocator statistics; before importing TF
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    FULL_CASES,
    QUICK_CASES,
    REPO,
    SWEEP_MODES,
    Case,  # noqa: E402
    ConvReference,
    conv_throughput,
    cpu_flags_line,
    dumps,
    forward_flops_per_image,
    interleaved,
    make_runner,
    median,
    train_flops_per_image,
)

COMPARISON_CASES = ('a_additive', 'a_affine', 'b_cifar', 'c_64', 's_mnist', 's_cifar128')
# --variants: glow_tf at other settings, timed interleaved with the default (fp32, conv_forms auto)
VARIANTS = {
    'bf16': {'precision': 'bf16'},
    'fp16': {'precision': 'fp16'},
    'gemm': {'conv_forms': 'gemm'},
    'native': {'conv_forms': 'native'},
    'shared': {'shared_steps': 'always'},  # the training step through shared step functions too
    'one_by_one': {'shared_steps': 'never'},  # sampling without them as well
}
ALL_CASES = COMPARISON_CASES + ('mem_sweep',)


def step_memory_mb(runner):
    """Peak tensor memory (MiB) of one training step of `runner` above what it held before."""
    import tensorflow as tf

    tf.config.experimental.reset_memory_stats('CPU:0')
    before = tf.config.experimental.get_memory_info('CPU:0')['current']
    runner.train()
    return (tf.config.experimental.get_memory_info('CPU:0')['peak'] - before) / 2**20


def subprocess_memory_mb(impl, case, mode='plain', timeout=1800):
    spec = json.dumps(
        {'impl': impl, 'memory_mode': mode, 'warmup': 1, 'steps': 1, 'case': case.as_dict()}
    )
    proc = subprocess.run(
        [sys.executable, str(REPO / 'bench' / 'memory_probe.py'), '--spec', spec],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(REPO),
    )
    for line in proc.stdout.splitlines():
        if line.startswith('PROBE '):
            return json.loads(line[6:])['tensor_peak_mb']
    raise RuntimeError(f"memory probe failed ({impl}, {mode}, {case.name}):\n{proc.stderr[-2000:]}")


def timed_first_call(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run_comparison(case, args):
    """glow_tf vs TFP at one configuration: interleaved timing, memory, FLOPs."""
    runners = {'glow_tf': make_runner('glow_tf', case)}
    for variant in args.variants:  # e.g. glow_tf[bf16], glow_tf[native]
        runners[f'glow_tf[{variant}]'] = make_runner('glow_tf', case, **VARIANTS[variant])
    if not args.no_tfp:
        runners['tfp'] = make_runner('tfp', case)
    out = {'case': case.name, 'config': case.as_dict(), 'iters': args.iters}
    first = {k: timed_first_call(r.train) for k, r in runners.items()}  # trace + first run
    h, w, _ = case.image
    conv = ConvReference(case.batch, h // 2, w // 2, case.width)
    train = interleaved(
        {**{k: r.train for k, r in runners.items()}, **conv.fns()}, args.iters, warmup=0
    )
    for r in runners.values():
        r.sample()  # trace the samplers
    sample = interleaved(
        {**{k: r.sample for k, r in runners.items()}, **conv.fns()}, args.iters, warmup=0
    )
    if args.memory == 'inprocess':
        mem = {k: step_memory_mb(r) for k, r in runners.items()}
    elif args.memory == 'subprocess':
        mem = {k: subprocess_memory_mb(k, case) for k in runners}
    else:
        mem = {k: float('nan') for k in runners}
    flops = train_flops_per_image(runners['glow_tf'].model)
    # the machine's conv throughput in each round (same load as that round's model steps)
    conv_rounds = [max(conv.gflops(k, train[k][i]) for k in conv.shapes) for i in range(args.iters)]
    out['conv_gflops'] = {k: median([conv.gflops(k, t) for t in train[k]]) for k in conv.shapes}
    out['conv_peak_gflops'] = median(conv_rounds)
    conv_rounds_sampling = [
        max(conv.gflops(k, sample[k][i]) for k in conv.shapes) for i in range(args.iters)
    ]
    sample_flops = forward_flops_per_image(runners['glow_tf'].model)  # sampling = one decode
    for k, r in runners.items():
        step_s, sample_s = median(train[k]), median(sample[k])
        out[k] = {
            'train_img_s': case.batch / step_s,
            'train_step_s': step_s,
            'train_step_s_all': train[k],
            'first_step_s': first[k],
            'sample_img_s': case.batch / sample_s,
            'sample_s_per_batch': sample_s,
            'peak_step_mb': mem[k],
            'n_params': r.n_params(),
            'achieved_gflops': flops * case.batch / step_s / 1e9,
        }
        out[k]['fraction_of_conv_peak'] = median(
            [flops * case.batch / t / 1e9 / c for t, c in zip(train[k], conv_rounds)]
        )
        out[k]['sample_gflops'] = sample_flops * case.batch / sample_s / 1e9
        out[k]['sample_fraction_of_conv_peak'] = median(
            [
                sample_flops * case.batch / t / 1e9 / c
                for t, c in zip(sample[k], conv_rounds_sampling)
            ]
        )
    out['train_gflop_per_image'] = flops / 1e9
    for k in runners:
        if k.startswith('glow_tf['):  # a variant against the default, per round (same load)
            out[k]['over_default'] = {
                'train_throughput': median([d / v for d, v in zip(train['glow_tf'], train[k])]),
                'sample_throughput': median([d / v for d, v in zip(sample['glow_tf'], sample[k])]),
            }
    if 'tfp' in runners:
        # per-round paired ratios (same round, adjacent in time), then the median
        pairs = [t / g for g, t in zip(train['glow_tf'], train['tfp'])]
        spairs = [t / g for g, t in zip(sample['glow_tf'], sample['tfp'])]
        out['ratio_glow_tf_over_tfp'] = {
            'train_throughput': median(pairs),
            'sample_throughput': median(spairs),
            'peak_memory': mem['glow_tf'] / mem['tfp'] if mem['tfp'] else float('nan'),
        }
    del runners
    gc.collect()
    return out


def run_sweep(args, quick):
    """Memory modes x depths at 64x64, L=4: peak step memory and time relative to plain."""
    if quick:
        base = dict(image=(8, 8, 3), levels=2, width=8, batch=2)
    else:
        base = dict(image=(64, 64, 3), levels=4, width=args.sweep_width, batch=args.sweep_batch)
    rows = []
    for depth in args.sweep_depths:
        case = Case(f'mem_d{depth}', depth=depth, coupling='affine', **base)
        print(
            f'# mem_sweep depth {depth}: building {args.sweep_modes}', file=sys.stderr, flush=True
        )
        runners = {m: make_runner('glow_tf', case, memory_mode=m) for m in args.sweep_modes}
        first = {m: timed_first_call(r.train) for m, r in runners.items()}
        times = interleaved({m: r.train for m, r in runners.items()}, args.sweep_iters, warmup=0)
        if args.memory == 'subprocess':
            mem = {m: subprocess_memory_mb('glow_tf', case, m) for m in runners}
        else:
            mem = {m: step_memory_mb(r) for m, r in runners.items()}
        ref = 'plain' if 'plain' in times else next(iter(times))
        for m in runners:
            paired = [t / p for t, p in zip(times[m], times[ref])]
            rows.append(
                {
                    'case': 'mem_sweep',
                    'config': case.as_dict(),
                    'memory_mode': m,
                    'depth': depth,
                    'peak_step_mb': mem[m],
                    'param_mb': runners[m].n_params() * 4 / 2**20,
                    'train_step_s': median(times[m]),
                    'train_step_s_all': times[m],
                    'first_step_s': first[m],
                    f'time_over_{ref}': median(paired),
                }
            )
        del runners
        gc.collect()
    by = {(r['memory_mode'], r['depth']): r for r in rows}
    d_lo, d_hi = min(args.sweep_depths), max(args.sweep_depths)
    for r in rows:
        lo = by.get((r['memory_mode'], d_lo))
        r[f'memory_over_depth{d_lo}'] = (
            r['peak_step_mb'] / lo['peak_step_mb'] if lo else float('nan')
        )
    summary = {
        m: by[(m, d_hi)]['peak_step_mb'] / by[(m, d_lo)]['peak_step_mb']
        for m in args.sweep_modes
        if (m, d_hi) in by and (m, d_lo) in by
    }
    return rows, summary


def fmt(x, spec='.2f'):
    try:
        return format(x, spec)
    except (TypeError, ValueError):
        return str(x)


def print_tables(results, sweep_rows, conv, conv_end):
    print()
    print(
        f"fp32 conv throughput, standalone [16,16,16,512]x512 (GFLOP/s): start 1x1 "
        f"{conv['conv1x1']:.0f} / 3x3 {conv['conv3x3']:.0f}, end 1x1 {conv_end['conv1x1']:.0f} / "
        f"3x3 {conv_end['conv3x3']:.0f}. '% conv' below is against the conv reference timed "
        f"interleaved with each case's steps (column 'conv GFLOP/s')."
    )
    if results:
        head = (
            'case',
            'impl',
            'train img/s',
            'step s',
            'sample img/s',
            's/batch',
            'peak MB',
            'GFLOP/img',
            'GFLOP/s',
            'conv GFLOP/s',
            '% conv',
            'sample GFLOP/s',
            'sample % conv',
            'first step s',
        )
        print('| ' + ' | '.join(head) + ' |')
        print('|' + '---|' * len(head))
        for r in results:
            impls = [k for k in r if k == 'tfp' or k.startswith('glow_tf')]
            for impl in sorted(impls, key=lambda k: (k == 'tfp', k)):
                d = r[impl]
                pct = fmt(100 * d['fraction_of_conv_peak'], '.0f')
                print(
                    f"| {r['case']} | {impl} | {fmt(d['train_img_s'])} | "
                    f"{fmt(d['train_step_s'], '.3f')} | "
                    f"{fmt(d['sample_img_s'])} | {fmt(d['sample_s_per_batch'], '.3f')} | "
                    f"{fmt(d['peak_step_mb'], '.1f')} | {fmt(r['train_gflop_per_image'], '.2f')} | "
                    f"{fmt(d['achieved_gflops'], '.1f')} | {fmt(r['conv_peak_gflops'], '.0f')} | "
                    f"{pct} | {fmt(d.get('sample_gflops'), '.1f')} | "
                    f"{fmt(100 * d.get('sample_fraction_of_conv_peak', float('nan')), '.0f')} | "
                    f"{fmt(d['first_step_s'], '.1f')} |"
                )
            if 'ratio_glow_tf_over_tfp' in r:
                q = r['ratio_glow_tf_over_tfp']
                print(
                    f"| {r['case']} | **glow_tf / TFP** | **{fmt(q['train_throughput'])}x** | | "
                    f"**{fmt(q['sample_throughput'])}x** | | {fmt(q['peak_memory'])}x | "
                    "| | | | | | |"
                )
            for impl in impls:
                if 'over_default' in r[impl]:
                    q = r[impl]['over_default']
                    print(
                        f"| {r['case']} | **{impl} / glow_tf** | "
                        f"**{fmt(q['train_throughput'])}x** | | "
                        f"**{fmt(q['sample_throughput'])}x** | | | | | | | | | |"
                    )
    if sweep_rows:
        print()
        ref = [k for k in sweep_rows[0] if k.startswith('time_over_')][0]
        lo = [k for k in sweep_rows[0] if k.startswith('memory_over_depth')][0]
        head = (
            'mode',
            'depth',
            'peak step MB',
            lo.replace('_', ' '),
            'step s',
            ref.replace('_', ' '),
            'param MB',
        )
        print('| ' + ' | '.join(head) + ' |')
        print('|' + '---|' * len(head))
        for r in sorted(
            sweep_rows, key=lambda r: (SWEEP_MODES.index(r['memory_mode']), r['depth'])
        ):
            print(
                f"| {r['memory_mode']} | {r['depth']} | {fmt(r['peak_step_mb'], '.1f')} | "
                f"{fmt(r[lo])} | {fmt(r['train_step_s'], '.3f')} | {fmt(r[ref])} | "
                f"{fmt(r['param_mb'], '.1f')} |"
            )


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument('--quick', action='store_true', help='tiny sizes (CI / development)')
    p.add_argument(
        '--cases',
        default=','.join(ALL_CASES),
        help=f'comma-separated subset of {",".join(ALL_CASES)}',
    )
    p.add_argument(
        '--iters',
        type=int,
        default=None,
        help='timed iterations per implementation (default 5; 2 with --quick)',
    )
    p.add_argument('--no-tfp', action='store_true', help='skip the TFP baseline')
    p.add_argument(
        '--variants',
        default='',
        help=f'comma-separated glow_tf variants timed beside the default: {",".join(VARIANTS)}',
    )
    p.add_argument(
        '--memory',
        choices=('inprocess', 'subprocess', 'off'),
        default='inprocess',
        help='peak-memory measurement (default: per-step allocator stats in-process)',
    )
    p.add_argument('--sweep-depths', default=None, help='memory sweep depths (default 8,16,32)')
    p.add_argument(
        '--sweep-modes', default=','.join(SWEEP_MODES), help=f'subset of {",".join(SWEEP_MODES)}'
    )
    p.add_argument(
        '--sweep-width',
        type=int,
        default=128,
        help='coupling width of the memory sweep (default 128 to fit the time budget)',
    )
    p.add_argument('--sweep-batch', type=int, default=16)
    p.add_argument('--sweep-iters', type=int, default=None, help='timed steps per mode (default 3)')
    p.add_argument('--json-out', default=None, help='also append the JSON lines to this file')
    args = p.parse_args(argv)
    args.cases = [c.strip() for c in args.cases.split(',') if c.strip()]
    args.variants = [v.strip() for v in args.variants.split(',') if v.strip()]
    if set(args.variants) - set(VARIANTS):
        p.error(f'unknown variant(s) {sorted(set(args.variants) - set(VARIANTS))}')
    bad = [c for c in args.cases if c not in ALL_CASES]
    if bad:
        p.error(f'unknown case(s) {bad}; choose from {ALL_CASES}')
    if args.iters is None:
        args.iters = 2 if args.quick else 5
    if args.sweep_iters is None:
        args.sweep_iters = 2 if args.quick else 3
    if args.sweep_depths is None:
        args.sweep_depths = '1,2' if args.quick else '8,16,32'
    args.sweep_depths = [int(d) for d in args.sweep_depths.split(',')]
    args.sweep_modes = [m for m in args.sweep_modes.split(',') if m]
    return args


def main(argv=None):
    args = parse_args(argv)
    t_start = time.perf_counter()
    import tensorflow as tf

    cases = QUICK_CASES if args.quick else FULL_CASES
    print(
        f"# bench_glow: tf {tf.__version__}, {os.cpu_count()} CPUs, quick={args.quick}, "
        f"cases={args.cases}, iters={args.iters}, memory={args.memory}",
        flush=True,
    )
    print(f"# {cpu_flags_line()}", flush=True)
    conv_before = conv_throughput(quick=args.quick)
    emit = []

    def record(d):
        line = dumps(d)
        print('JSON ' + line, flush=True)
        emit.append(line)

    results = []
    for name in args.cases:
        if name == 'mem_sweep':
            continue
        print(f'# case {name}', file=sys.stderr, flush=True)
        r = run_comparison(cases[name], args)
        results.append(r)
        record(r)
    sweep_rows, summary = [], {}
    if 'mem_sweep' in args.cases:
        sweep_rows, summary = run_sweep(args, args.quick)
        for row in sweep_rows:
            record(row)
    conv_after = conv_throughput(quick=args.quick)
    record(
        {
            'case': 'machine',
            'conv_gflops_start': conv_before,
            'conv_gflops_end': conv_after,
            'memory_sweep_depth_ratio': summary,
            'elapsed_s': time.perf_counter() - t_start,
        }
    )
    print_tables(results, sweep_rows, conv_before, conv_after)
    if summary:
        d_lo, d_hi = min(args.sweep_depths), max(args.sweep_depths)
        print(
            '\npeak step memory, depth %d / depth %d: ' % (d_hi, d_lo)
            + ', '.join(f'{m} {v:.2f}' for m, v in summary.items())
        )
    print(f'\nelapsed {time.perf_counter() - t_start:.0f} s')
    if args.json_out:
        with open(args.json_out, 'a') as f:
            f.write('\n'.join(emit) + '\n')


if __name__ == '__main__':
    main()
