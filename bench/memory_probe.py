"""Peak memory of training steps, one configuration per process.

    python bench/memory_probe.py --spec '{"impl": "glow_tf", "memory_mode": "reversible",
                                          "steps": 2, "case": {...Case fields...}}'

Builds the model (and the optimiser's slots), runs the data-dependent init on 2 images and one
warm-up training step (tracing, graph optimisation and kernel selection allocate memory that has
nothing to do with the step), then measures `steps` more training steps. Prints one JSON line
(prefixed `PROBE `) with

    tensor_peak_mb   peak bytes held by TensorFlow's CPU allocator during the measured steps
                     minus what it held before them (parameters, optimiser slots): activations
                     kept for the backward pass, gradients and temporaries. TensorFlow keeps CPU
                     allocator statistics only with its BFC allocator, which this script turns on
                     (TF_CPU_ALLOCATOR_USE_BFC=true) before importing TensorFlow.
    process_peak_rss_mb  the process's peak RSS (VmHWM) over its whole life, for context: it
                     also holds the libraries (~0.5 GB), the traced graph and Grappler's work,
                     which grow with depth but are not stored activations. (The BFC pool never
                     shrinks, so a per-step RSS delta after the warm-up would read ~0.)
    param_mb, step_s (median measured step, BFC allocator), loss.

A process per configuration keeps peaks from mixing.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ['TF_CPU_ALLOCATOR_USE_BFC'] = 'true'  # must precede the TensorFlow import
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Case, dumps, make_runner, peak_rss_mb  # noqa: E402


def probe(spec):
    import tensorflow as tf

    case = Case.from_dict(spec['case'])
    mode = spec.get('memory_mode', 'plain')
    runner = make_runner(spec.get('impl', 'glow_tf'), case, mode)
    for _ in range(int(spec.get('warmup', 1))):
        runner.train()
    tf.config.experimental.reset_memory_stats('CPU:0')
    before = tf.config.experimental.get_memory_info('CPU:0')['current']
    times = []
    for _ in range(int(spec.get('steps', 1))):
        t0 = time.perf_counter()
        loss = runner.train()
        times.append(time.perf_counter() - t0)
    info = tf.config.experimental.get_memory_info('CPU:0')
    mb = 2.0**20
    return {
        'impl': runner.impl,
        'memory_mode': mode,
        'case': case.as_dict(),
        'tensor_peak_mb': round((info['peak'] - before) / mb, 1),
        'process_peak_rss_mb': round(peak_rss_mb(), 1),
        'param_mb': round(runner.n_params() * 4 / mb, 1),
        'step_s': round(statistics.median(times), 3),
        'loss': round(loss, 4),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--spec', required=True, help='JSON: impl, memory_mode, warmup, steps, case (Case fields)'
    )
    args = parser.parse_args(argv)
    print('PROBE ' + dumps(probe(json.loads(args.spec))), flush=True)


if __name__ == '__main__':
    main()
