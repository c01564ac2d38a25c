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

from bench.common import FULL_CASES, cpu_flags_line, dumps, make_runner, median  # noqa: E402


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--cases', default='s_mnist,s_cifar128')
    parser.add_argument('--batches', default='1,8', help='batch sizes besides the case\'s own')
    parser.add_argument('--iters', type=int, default=12)
    args = parser.parse_args(argv)
    batches = [int(b) for b in args.batches.split(',') if b]
    print(cpu_flags_line())
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
