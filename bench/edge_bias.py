"""Edge bias's cost, and additive against affine coupling, timed as peers in one process.

    python bench/edge_bias.py [--quick] [--iters 5] [--cases a_additive,a_affine,b_cifar]

For each case, glow_tf with edge-bias padding (the default, as openai/glow) and without it are
built side by side and their training steps and sampling calls timed interleaved; the ratio is the
median of per-round ratios (robust to the shared machine's load). A second table times the
additive and affine versions of case a against each other the same way, with and without edge
bias. Prints one `JSON ` line per comparison and a table.
"""

import argparse
import dataclasses
import os
import sys
from pathlib import Path

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import FULL_CASES, QUICK_CASES, GlowTFRunner, dumps, interleaved, median  # noqa: E402


def compare(runners, iters):
    """{name: {train_s, sample_s}} and per-round ratios of every runner to the first."""
    train = interleaved({k: r.train for k, r in runners.items()}, iters)
    sample = interleaved({k: r.sample for k, r in runners.items()}, max(2, iters // 2))
    first = next(iter(runners))
    out = {}
    for k in runners:
        out[k] = {
            'train_s': median(train[k]),
            'sample_s': median(sample[k]),
            'train_vs_first': median([a / b for a, b in zip(train[k], train[first])]),
            'sample_vs_first': median([a / b for a, b in zip(sample[k], sample[first])]),
        }
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--quick', action='store_true')
    p.add_argument('--iters', type=int, default=5)
    p.add_argument('--cases', default='a_additive,a_affine,b_cifar')
    args = p.parse_args(argv)
    cases = QUICK_CASES if args.quick else FULL_CASES
    rows = []
    for name in args.cases.split(','):
        if name not in cases:
            p.error(f"--cases: unknown case {name!r}; choose from {','.join(cases)}")
        case = cases[name]
        res = compare(
            {
                'edge_bias': GlowTFRunner(case, edge_bias=True),
                'no_edge_bias': GlowTFRunner(case, edge_bias=False),
            },
            args.iters,
        )
        rec = {
            'comparison': 'edge_bias',
            'case': name,
            'batch': case.batch,
            **{f'{k}_{m}': v for k, r in res.items() for m, v in r.items()},
        }
        print('JSON ' + dumps(rec), flush=True)
        rows.append(
            f"| {name} | {case.batch / res['edge_bias']['train_s']:.2f} | "
            f"{case.batch / res['no_edge_bias']['train_s']:.2f} | "
            f"{1 / res['no_edge_bias']['train_vs_first']:.3f} | "
            f"{1 / res['no_edge_bias']['sample_vs_first']:.3f} |"
        )
    print(
        '\n| case | train img/s, edge bias | without | step time edge / without | '
        'sample time edge / without |\n|---|---|---|---|---|\n' + '\n'.join(rows)
    )

    base = cases['a_additive']
    rows = []
    for edge in (True, False):
        runners = {
            c: GlowTFRunner(dataclasses.replace(base, coupling=c), edge_bias=edge)
            for c in ('additive', 'affine')
        }
        res = compare(runners, args.iters)
        print(
            'JSON '
            + dumps(
                {
                    'comparison': 'coupling',
                    'edge_bias': edge,
                    **{f'{k}_{m}': v for k, r in res.items() for m, v in r.items()},
                }
            ),
            flush=True,
        )
        rows.append(
            f"| {edge} | {base.batch / res['additive']['train_s']:.2f} | "
            f"{base.batch / res['affine']['train_s']:.2f} | "
            f"{res['affine']['train_vs_first']:.3f} | {res['affine']['sample_vs_first']:.3f} |"
        )
    print(
        '\n| edge bias | additive train img/s | affine train img/s | affine / additive step time | '
        'affine / additive sample time |\n|---|---|---|---|---|\n' + '\n'.join(rows)
    )


if __name__ == '__main__':
    main()
