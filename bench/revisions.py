"""Speed of this tree against another git revision, step by step (a regression check).

    python bench/revisions.py --base 01bb441                  # the full cases, plain mode
    python bench/revisions.py --base HEAD~3 --cases a_affine --modes plain,reversible --iters 10
    python bench/revisions.py --base HEAD --quick --json out.json

The revision's package and bench harness are unpacked with `git archive` into a temporary
directory. For every (case, memory mode) two worker processes build the same model from the
same seed -- one imports this tree's `glow_tf`, the other the revision's, each through its own
`bench/common.py` (`make_runner('glow_tf', case, mode)`) -- and stay alive; the parent then asks
them for one training step (or one sampling batch) in turn, alternating which goes first, so both
see the same machine load. Reported: the median seconds per call of each and the median of the
per-round ratios `this / base` (below 1: this tree is faster). The machine is shared and noisy:
compare ratios, not the seconds, and prefer more iterations to a single run.
"""

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from common import FULL_CASES, QUICK_CASES, REPO, dumps, median

# A worker: imports the harness of one tree, builds the runner, then times one call per line read.
WORKER = r"""
import json, sys, time
tree, case_json, mode = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, tree)
sys.path.insert(0, tree + '/bench')
from common import Case, make_runner
runner = make_runner('glow_tf', Case.from_dict(json.loads(case_json)), memory_mode=mode)
import glow_tf
print('ready', glow_tf.__file__, flush=True)
for line in sys.stdin:
    fn = runner.train if line.strip() == 'train' else runner.sample
    t0 = time.perf_counter()
    fn()
    print(time.perf_counter() - t0, flush=True)
"""


def unpack_revision(rev, dest):
    """`git archive REV glow_tf bench` extracted into `dest`; the revision's commit id."""
    commit = subprocess.run(
        ['git', 'rev-parse', '--verify', f'{rev}^{{commit}}'],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if commit.returncode != 0:
        sys.exit(f"revisions.py: --base {rev!r} is not a commit of {REPO}")
    archive = Path(dest) / 'rev.tar'
    with open(archive, 'wb') as f:
        subprocess.run(['git', 'archive', rev, 'glow_tf', 'bench'], cwd=REPO, stdout=f, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter='data')
    return commit.stdout.strip()


class Worker:
    """One long-lived process timing `train` / `sample` calls of one tree's model."""

    def __init__(self, tree, case, mode):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', GLOW_NO_HOROVOD='1')
        env.pop('PYTHONPATH', None)
        self.proc = subprocess.Popen(
            [sys.executable, '-c', WORKER, str(tree), json.dumps(case.as_dict()), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tempfile.gettempdir(),  # no stray glow_tf on the path but the tree's
        )
        ready = self.proc.stdout.readline().split()
        if not ready or ready[0] != 'ready':
            raise RuntimeError(f"worker for {tree} did not start (see its stderr above)")
        if not Path(ready[1]).resolve().is_relative_to(Path(tree).resolve()):
            raise RuntimeError(f"worker for {tree} imported glow_tf from {ready[1]}")

    def call(self, what):
        self.proc.stdin.write(what + '\n')
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def compare(trees, case, mode, what, iters, warmup):
    """{'this': [s], 'base': [s]} over `iters` alternating rounds after `warmup` calls each."""
    workers = {name: Worker(tree, case, mode) for name, tree in trees.items()}
    try:
        for _ in range(warmup):
            for w in workers.values():
                w.call(what)
        times = {name: [] for name in workers}
        for i in range(iters):
            order = list(workers) if i % 2 == 0 else list(workers)[::-1]
            for name in order:
                times[name].append(workers[name].call(what))
        return times
    finally:
        for w in workers.values():
            w.close()


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument('--base', required=True, help='git revision to compare against (e.g. HEAD~1)')
    p.add_argument('--cases', default='a_affine', help='comma-separated bench/common.py cases')
    p.add_argument('--modes', default='plain', help='comma-separated memory modes')
    p.add_argument('--what', default='train', help="comma-separated: 'train' and/or 'sample'")
    p.add_argument('--iters', type=int, default=10, help='timed rounds per comparison')
    p.add_argument('--warmup', type=int, default=2, help='untimed calls per worker first')
    p.add_argument('--quick', action='store_true', help='tiny models (a smoke test)')
    p.add_argument('--json', help='also write the results to this file')
    args = p.parse_args(argv)
    cases = QUICK_CASES if args.quick else FULL_CASES
    for name in args.cases.split(','):
        if name not in cases:
            p.error(f"--cases: unknown case {name!r}; choose from {', '.join(cases)}")
    for what in args.what.split(','):
        if what not in ('train', 'sample'):
            p.error(f"--what: {what!r} is neither 'train' nor 'sample'")
    return args, cases


def main(argv=None):
    args, cases = parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix='glow_rev_') as tmp:
        base_commit = unpack_revision(args.base, tmp)
        trees = {'this': REPO, 'base': Path(tmp)}
        for case_name in args.cases.split(','):
            for mode in args.modes.split(','):
                for what in args.what.split(','):
                    t = compare(trees, cases[case_name], mode, what, args.iters, args.warmup)
                    ratios = [a / b for a, b in zip(t['this'], t['base'])]
                    row = {
                        'case': case_name,
                        'mode': mode,
                        'what': what,
                        'this_s': median(t['this']),
                        'base_s': median(t['base']),
                        'ratio_this_over_base': median(ratios),
                        'iters': args.iters,
                    }
                    results.append(row)
                    print(
                        f"{case_name:11s} {mode:10s} {what:6s} this {row['this_s'] * 1e3:8.1f} ms"
                        f"  base {row['base_s'] * 1e3:8.1f} ms  this/base "
                        f"{row['ratio_this_over_base']:.3f}",
                        flush=True,
                    )
    out = {'base': args.base, 'base_commit': base_commit, 'quick': args.quick, 'rows': results}
    print(dumps(out))
    if args.json:
        Path(args.json).write_text(dumps(out) + '\n')


if __name__ == '__main__':
    main()
