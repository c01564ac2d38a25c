"""Horovod allreduce time against the ring-allreduce cost model (docs/scaling.md).

    horovodrun -np 2 -H localhost:2 --gloo python bench/allreduce.py [--quick] [--out FILE]

Ring allreduce of S bytes over N workers sends and receives 2(N-1)/N · S bytes per worker in
2(N-1) steps, so with link bandwidth B and per-step latency a

    t(S, N) = 2(N-1) · a + 2(N-1)/N · S / B

Each rank allreduces float32 buffers of several sizes (warm-up, then the median of repeats);
rank 0 prints the CPU line, a table and one `JSON ` line per size, fits a and B to the
measurements by least squares, and writes the JSON to --out.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FULL_SIZES_MB = (0.004, 0.064, 0.5, 2.0, 8.0, 32.0, 128.0)
QUICK_SIZES_MB = (0.004, 0.5, 8.0)


def ring_allreduce_seconds(n_bytes, n_workers, bandwidth, latency=0.0):
    """t = 2(N-1)·latency + 2(N-1)/N · bytes / bandwidth (bytes/s); 0 for one worker."""
    if n_workers <= 1:
        return 0.0
    steps = 2 * (n_workers - 1)
    return steps * latency + steps / n_workers * n_bytes / bandwidth


def fit_latency_bandwidth(rows, n_workers):
    """(latency s, bandwidth bytes/s) of t = 2(N-1)·a + 2(N-1)/N · S / B, fitted by least
    squares on *relative* errors, so the small buffers (latency-bound) count as much as the
    large ones (bandwidth-bound)."""
    steps = 2 * (n_workers - 1)
    # minimise sum(((c + k·x) / y - 1)^2) over c = steps·a and k = 1/B, with x = steps/N · S
    u = [1.0 / r['seconds'] for r in rows]
    v = [steps / n_workers * r['bytes'] / r['seconds'] for r in rows]
    suu, svv = sum(a * a for a in u), sum(b * b for b in v)
    suv = sum(a * b for a, b in zip(u, v))
    su, sv = sum(u), sum(v)
    det = suu * svv - suv * suv
    c = (su * svv - sv * suv) / det
    k = (sv * suu - su * suv) / det
    if k <= 0 or c < 0:  # noise swamped one term: take each from the end where it dominates
        small = min(rows, key=lambda r: r['bytes'])
        large = max(rows, key=lambda r: r['bytes'])
        c = small['seconds']
        k = max(large['seconds'] - c, 1e-9) / (steps / n_workers * large['bytes'])
    return c / steps, 1.0 / k


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--quick', action='store_true', help='three sizes, 4 KB to 8 MB (tests)')
    p.add_argument('--repeats', type=int, default=None, help='timed repeats (default 9; 3 quick)')
    p.add_argument('--out', default=None, help='write the JSON summary here (rank 0)')
    args = p.parse_args(argv)
    import horovod.tensorflow as hvd
    import tensorflow as tf

    hvd.init()
    sizes = QUICK_SIZES_MB if args.quick else FULL_SIZES_MB
    repeats = args.repeats or (3 if args.quick else 9)
    rows = []
    for mb in sizes:
        n = max(1, int(mb * 2**20 / 4))
        x = tf.ones([n], tf.float32) * (hvd.rank() + 1)
        for _ in range(2):
            hvd.allreduce(x, op=hvd.Sum).numpy()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            y = hvd.allreduce(x, op=hvd.Sum).numpy()
            times.append(time.perf_counter() - start)
        expected = hvd.size() * (hvd.size() + 1) / 2
        assert abs(float(y[0]) - expected) < 1e-3, (y[0], expected)
        rows.append({'bytes': 4 * n, 'seconds': statistics.median(times), 'workers': hvd.size()})
    if hvd.rank() != 0:
        return 0
    from bench.common import cpu_flags_line

    latency, bandwidth = fit_latency_bandwidth(rows, hvd.size())
    import horovod

    print(f"# allreduce: Horovod {horovod.__version__}, Gloo, {hvd.size()} workers, one machine")
    print(f"# {cpu_flags_line()}")
    print('| MB | median ms | effective GB/s (2(N-1)/N·S/t) | model ms |')
    print('|---|---|---|---|')
    for r in rows:
        model = ring_allreduce_seconds(r['bytes'], hvd.size(), bandwidth, latency)
        steps = 2 * (hvd.size() - 1)
        effective = steps / hvd.size() * r['bytes'] / r['seconds'] / 1e9
        r['model_seconds'] = model
        print(
            f"| {r['bytes'] / 2**20:.3f} | {1e3 * r['seconds']:.3f} | {effective:.2f} | "
            f"{1e3 * model:.3f} |"
        )
        print('JSON ' + json.dumps(r), flush=True)
    summary = {
        'workers': hvd.size(),
        'latency_s': latency,
        'bandwidth_Bps': bandwidth,
        'rows': rows,
    }
    print(f"fit: latency {1e6 * latency:.1f} us per step, bandwidth {bandwidth / 1e9:.2f} GB/s")
    print('JSON ' + json.dumps({'fit': {'latency_s': latency, 'bandwidth_Bps': bandwidth}}))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(summary, indent=1) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
