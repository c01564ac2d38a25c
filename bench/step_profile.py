"""Where a training step's time goes, for the small models (issue 21): tracing, graph size,
first run, and the host-overhead floor.

    python bench/step_profile.py                          # s_mnist and s_cifar128
    python bench/step_profile.py --cases s_mnist --batches 1,4,16,32 --iters 15

Per case (bench/common.py; the same tf.function training step as bench_glow.py) it measures:

- the Python trace of the training step (`get_concrete_function`), split into the forward pass
  (the objective alone, traced on its own) and the rest (the gradient tape and the optimiser);
- the graph: operations in the traced training step and in the forward pass, the most
  frequent operation types;
- the first run after tracing (Grappler's graph optimisation, kernel creation, one step);
- the steady step (median of --iters) at each batch size in --batches. The step at batch 1 is
  the floor that does not shrink with the data: per-op dispatch and the executor's overhead.
  `overhead share` = (step at batch 1) / (step at the case's batch).

It prints a table and one `JSON ` line per case, headed by the CPU's vector units. Run it on an
idle machine (pause long runs); the seconds move with the load, the shares less.

    python bench/step_profile.py --op_times --cases a_additive,a_affine

`--op_times` instead traces --calls training steps and sampling calls with `tf.profiler` (with
one inter-op thread, so operation times add up to the call) and splits each call's operation
time into convolutions and matrix products (every op type containing Conv2D or MatMul) and the
rest: their shares, the convolutions' FLOP rate inside the graph (the model's conv FLOPs,
`bench.common.train_flops_per_image` / `forward_flops_per_image`, over their time) and the
costliest other op types. Against the conv reference of `bench/bench_glow.py` (standalone fp32
1x1 and 3x3 convolutions, printed alongside), this bounds the "% conv" a step can reach:
(in-graph conv rate / reference) x (conv share).
"""

import argparse
import collections
import dataclasses
import os
import sys
import time
from pathlib import Path

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402
from bench.common import FULL_CASES, cpu_flags_line, dumps, make_runner, median  # noqa: E402

EXECUTOR_EVENTS = ('Run', 'Process')  # the executor's own annotations, not operations


def steady_step_s(runner, iters):
    for _ in range(3):
        runner.train()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        runner.train()
        times.append(time.perf_counter() - t0)
    return median(times)


def profile_case(case, batches, iters):
    import tensorflow as tf

    runner = make_runner('glow_tf', case)
    model = runner.model
    t0 = time.perf_counter()
    forward = tf.function(lambda x: model.objective(x)[0], autograph=False)
    forward_graph = forward.get_concrete_function(runner.x).graph
    t1 = time.perf_counter()
    step_graph = runner._train.get_concrete_function(runner.x).graph
    t2 = time.perf_counter()
    runner.train()
    t3 = time.perf_counter()
    step_ops = step_graph.get_operations()
    out = {
        'case': case.name,
        'config': case.as_dict(),
        'trace_forward_s': t1 - t0,
        'trace_step_s': t2 - t1,
        'first_run_s': t3 - t2,
        'forward_ops': len(forward_graph.get_operations()),
        'step_ops': len(step_ops),
        'step_ops_by_type': dict(collections.Counter(o.type for o in step_ops).most_common(8)),
        'step_s': {},
    }
    out['step_s'][case.batch] = steady_step_s(runner, iters)
    for batch in batches:
        if batch != case.batch:
            other = make_runner('glow_tf', dataclasses.replace(case, batch=batch))
            out['step_s'][batch] = steady_step_s(other, iters)
    floor = out['step_s'].get(1)
    out['overhead_share'] = None if floor is None else floor / out['step_s'][case.batch]
    return out


def op_times(fn, calls):
    """(wall ms per call of `fn`, op type -> ms per call) from a tf.profiler trace of `calls`
    calls: the host plane's operation events (type = the part of the event name after ':')."""
    import glob
    import tempfile

    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2  # the trace's format (no public reader)

    for _ in range(2):
        fn()
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        wall = time.perf_counter() - t0
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        trace = glob.glob(os.path.join(logdir, '**', '*.xplane.pb'), recursive=True)[0]
        space.ParseFromString(Path(trace).read_bytes())
    totals = collections.Counter()
    for plane in space.planes:
        if plane.name != '/host:CPU':
            continue
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                kind = name.rsplit(':', 1)[-1].strip()
                if ':' in name and kind not in EXECUTOR_EVENTS and not kind.startswith('__'):
                    totals[kind] += event.duration_ps / 1e9 / calls
    return 1000 * wall / calls, totals


def op_split(case, calls):
    """Per direction (train, sample): where a call's operation time goes (see op_times)."""
    runner = make_runner('glow_tf', case)
    h, w, _ = case.image
    conv = common.ConvReference(case.batch, h // 2, w // 2, case.width)
    ref = common.interleaved(conv.fns(), 5)
    out = {
        'case': case.name,
        'conv_reference_gflops': {k: conv.gflops(k, median(t)) for k, t in ref.items()},
    }
    flops = {
        'train': common.train_flops_per_image(runner.model) * case.batch,
        'sample': common.forward_flops_per_image(runner.model) * case.batch,
    }
    for what, fn in (('train', runner.train), ('sample', runner.sample)):
        wall_ms, by_type = op_times(fn, calls)
        conv_ms = sum(ms for k, ms in by_type.items() if 'Conv2D' in k or 'MatMul' in k)
        total_ms = sum(by_type.values())
        rest = {k: ms for k, ms in by_type.items() if 'Conv2D' not in k and 'MatMul' not in k}
        out[what] = {
            'wall_ms': wall_ms,
            'op_ms': total_ms,
            'conv_ms': conv_ms,
            'conv_share': conv_ms / total_ms,
            'conv_gflops_in_graph': flops[what] / conv_ms / 1e6,
            'costliest_other_ops_ms': dict(collections.Counter(rest).most_common(8)),
        }
    return out


def print_op_splits(rows):
    print(
        '| case | call | wall ms | op ms | convolutions ms (share) | their GFLOP/s in the graph '
        '| conv reference 1x1 / 3x3 GFLOP/s | costliest other ops (ms) |'
    )
    print('|---|---|---|---|---|---|---|---|')
    for r in rows:
        ref = r['conv_reference_gflops']
        for what in ('train', 'sample'):
            d = r[what]
            others = ', '.join(f'{k} {ms:.1f}' for k, ms in d['costliest_other_ops_ms'].items())
            print(
                f"| {r['case']} | {what} | {d['wall_ms']:.0f} | {d['op_ms']:.0f} | "
                f"{d['conv_ms']:.0f} ({100 * d['conv_share']:.0f} %) | "
                f"{d['conv_gflops_in_graph']:.0f} | {ref['conv1x1']:.0f} / {ref['conv3x3']:.0f} | "
                f"{others} |"
            )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--cases', default='s_mnist,s_cifar128')
    parser.add_argument('--batches', default='1,8', help='batch sizes besides the case\'s own')
    parser.add_argument('--iters', type=int, default=12)
    parser.add_argument('--op_times', action='store_true', help='the op-time split instead')
    parser.add_argument('--calls', type=int, default=5, help='profiled calls (--op_times)')
    args = parser.parse_args(argv)
    batches = [int(b) for b in args.batches.split(',') if b]
    print(cpu_flags_line())
    if args.op_times:
        import tensorflow as tf

        tf.config.threading.set_inter_op_parallelism_threads(1)  # op times add up to the call
        rows = [op_split(FULL_CASES[name], args.calls) for name in args.cases.split(',')]
        for r in rows:
            print('JSON ' + dumps(r), flush=True)
        print_op_splits(rows)
        return
    rows = []
    for name in args.cases.split(','):
        result = profile_case(FULL_CASES[name], batches, args.iters)
        rows.append(result)
        print('JSON ' + dumps(result), flush=True)
    print()
    print(
        '| case | trace: forward s | trace: step s | first run s | ops: forward | ops: step '
        '| step ms by batch | overhead share |'
    )
    print('|---|---|---|---|---|---|---|---|')
    for r in rows:
        steps = ', '.join(f'b{b}: {1000 * s:.1f}' for b, s in sorted(r['step_s'].items()))
        share = '-' if r['overhead_share'] is None else f"{100 * r['overhead_share']:.0f} %"
        print(
            f"| {r['case']} | {r['trace_forward_s']:.2f} | {r['trace_step_s']:.2f} | "
            f"{r['first_run_s']:.2f} | {r['forward_ops']} | {r['step_ops']} | {steps} | {share} |"
        )
    for r in rows:
        print(f"{r['case']}: most frequent ops in the step graph: {r['step_ops_by_type']}")


if __name__ == '__main__':
    main()
