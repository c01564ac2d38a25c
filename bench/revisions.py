"""Speed of this tree against another git revision, step by step (a regression check).

    python bench/revisions.py --base 01bb441                  # the full cases, plain mode
    python bench/revisions.py --base HEAD~3 --cases a_affine --modes plain,reversible --iters 10
    python bench/revisions.py --base HEAD --quick --json out.json
    python bench/revisions.py --base 2181f7f --what trainer --models readme,cifar128 \
        --precision auto --base_precision fp32           # the trainer's own step, two precisions

The revision's package and bench harness are unpacked with `git archive` into a temporary
directory. For every (case, memory mode) two worker processes build the same model from the
same seed -- one imports this tree's `glow_tf`, the other the revision's, each through its own
`bench/common.py` (`make_runner('glow_tf', case, mode)`) -- and stay alive; the parent then asks
them for one training step (or one sampling batch) in turn, alternating which goes first, so both
see the same machine load. Reported: the median seconds per call of each and the median of the
per-round ratios `this / base` (below 1: this tree is faster). The machine is shared and noisy:
compare ratios, not the seconds, and prefer more iterations to a single run.

`--what trainer` times the trainer's own training step instead of the harness's: each worker
builds a `Trainer` for a model of `bench/update_step.py` (`--models`; the README job's, the
width-128 CIFAR one) with `--precision` (the base tree: `--base_precision`) and times its
gradient step and update on one batch; the first such step (tracing and graph optimisation
included) is reported as well.
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

# A trainer worker: builds one tree's Trainer and times its gradient step + update per line read.
TRAINER_WORKER = r"""
import json, sys, tempfile, time
tree, cfg_json = sys.argv[1], sys.argv[2]
sys.path.insert(0, tree)
import tensorflow as tf
import glow_tf
from glow_tf.runs.config import TrainConfig
from glow_tf.training.distributed import Distributed
from glow_tf.training.trainer import Trainer
cfg = TrainConfig(**json.loads(cfg_json), logdir=tempfile.mkdtemp(), progress=False)
tr = Trainer(cfg, dist=Distributed(use_horovod=False)).setup()
tr.initialize_or_restore()
x, y = next(tr.train_iterator(1))
lr, stop, i = tf.constant(1e-4), tf.constant(0.0), 0
def step():
    global i
    inputs = (x, y, tf.constant(i, tf.int64), stop)
    # the first step as the trainer takes it (trees that have it: the update traced meanwhile)
    first = i == 0 and hasattr(tr.steps, 'trace_first_step')
    wait = tr.steps.trace_first_step(*inputs) if first else None
    grads = tr.grad_step(*inputs)[0]
    if wait:
        wait()
    tr.apply_step(grads, lr)[1].numpy()
    i += 1
print('ready', glow_tf.__file__, flush=True)
for line in sys.stdin:
    t0 = time.perf_counter()
    step()
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
    """One long-lived process timing `train` / `sample` calls of one tree's model (`case`: a
    bench/common.py Case), or the trainer's steps (`case`: TrainConfig keyword arguments)."""

    def __init__(self, tree, case, mode):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', GLOW_NO_HOROVOD='1')
        env.pop('PYTHONPATH', None)
        shared = REPO.parent / 'shared' / 'data'  # an unpacked revision is not beside it
        if shared.is_dir():
            env.setdefault('GLOW_DATA_DIR', str(shared))
        if isinstance(case, dict):
            argv = [TRAINER_WORKER, str(tree), json.dumps(case)]
        else:
            argv = [WORKER, str(tree), json.dumps(case.as_dict()), mode]
        self.proc = subprocess.Popen(
            [sys.executable, '-c', *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tempfile.gettempdir(),  # no stray glow_tf on the path but the tree's
        )
        self.tree = tree

    def wait_ready(self):
        """Block until the worker has built its model (it prints where its glow_tf came from)."""
        ready = self.proc.stdout.readline().split()
        if not ready or ready[0] != 'ready':
            raise RuntimeError(f"worker for {self.tree} did not start (see its stderr above)")
        if not Path(ready[1]).resolve().is_relative_to(Path(self.tree).resolve()):
            raise RuntimeError(f"worker for {self.tree} imported glow_tf from {ready[1]}")

    def call(self, what):
        self.proc.stdin.write(what + '\n')
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def compare(trees, case, mode, what, iters, warmup):
    """{'this': [s], 'base': [s], 'first_this': s, 'first_base': s}: `iters` alternating rounds
    after `warmup` (>= 1) calls each, and each worker's first call (tracing and graph
    optimisation included; timed while the other worker waits). `case`: a Case, or {tree name:
    TrainConfig kwargs} for the trainer."""
    workers = {}
    try:
        for name, tree in trees.items():  # the workers import and build at the same time
            workers[name] = Worker(tree, case[name] if isinstance(case, dict) else case, mode)
        for w in workers.values():
            w.wait_ready()
        first = {f'first_{name}': w.call(what) for name, w in workers.items()}
        for _ in range(warmup - 1):
            for w in workers.values():
                w.call(what)
        times = {name: [] for name in workers}
        for i in range(iters):
            order = list(workers) if i % 2 == 0 else list(workers)[::-1]
            for name in order:
                times[name].append(workers[name].call(what))
        return {**times, **first}
    finally:
        for w in workers.values():
            w.close()


def summary(t, **labels):
    """A result row: `labels`, the medians of `compare`'s times and of their per-round ratios,
    the first calls and the number of rounds."""
    ratios = [a / b for a, b in zip(t['this'], t['base'])]
    return {
        **labels,
        'this_s': median(t['this']),
        'base_s': median(t['base']),
        'ratio_this_over_base': median(ratios),
        'first_this_s': t['first_this'],
        'first_base_s': t['first_base'],
        'iters': len(t['this']),
    }


def compare_trainers(trees, args):
    """--what trainer: one row per --models model (module docstring)."""
    rows = []
    from update_step import trainer_config

    precision = {'this': args.precision, 'base': args.base_precision}
    for model in args.models.split(','):
        configs = {name: trainer_config(model, precision=precision[name]) for name in trees}
        t = compare(trees, configs, 'plain', 'step', args.iters, args.warmup)
        row = summary(t, model=model, what='trainer', precision=precision)
        rows.append(row)
        print(
            f"{model:9s} trainer this ({args.precision}) {row['this_s'] * 1e3:7.1f} ms, first "
            f"{row['first_this_s']:5.1f} s; base ({args.base_precision}) "
            f"{row['base_s'] * 1e3:7.1f} ms, first {row['first_base_s']:5.1f} s; this/base "
            f"{row['ratio_this_over_base']:.3f}, first "
            f"{row['first_this_s'] / row['first_base_s']:.3f}",
            flush=True,
        )
    return rows


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument('--base', required=True, help='git revision to compare against (e.g. HEAD~1)')
    p.add_argument('--cases', default='a_affine', help='comma-separated bench/common.py cases')
    p.add_argument('--modes', default='plain', help='comma-separated memory modes')
    p.add_argument(
        '--what', default='train', help="comma-separated: 'train' and/or 'sample', or 'trainer'"
    )
    p.add_argument('--models', default='readme', help="--what trainer: bench/update_step.py models")
    p.add_argument('--precision', default='fp32', help="--what trainer: this tree's --precision")
    p.add_argument('--base_precision', help="--what trainer: the base's (default: --precision)")
    p.add_argument('--iters', type=int, default=10, help='timed rounds per comparison')
    p.add_argument(
        '--warmup', type=int, default=2, help='calls per worker before the rounds (>= 1)'
    )
    p.add_argument('--quick', action='store_true', help='tiny models (a smoke test)')
    p.add_argument('--json', help='also write the results to this file')
    args = p.parse_args(argv)
    cases = QUICK_CASES if args.quick else FULL_CASES
    for name in args.cases.split(','):
        if name not in cases:
            p.error(f"--cases: unknown case {name!r}; choose from {', '.join(cases)}")
    for what in args.what.split(','):
        if what not in ('train', 'sample', 'trainer'):
            p.error(f"--what: {what!r} is not 'train', 'sample' or 'trainer'")
    from update_step import MODELS

    for name in args.models.split(','):
        if name not in MODELS:
            p.error(f"--models: unknown model {name!r}; choose from {', '.join(MODELS)}")
    args.base_precision = args.base_precision or args.precision
    if args.warmup < 1:
        p.error("--warmup: at least 1 (the first call, timed on its own, traces the step)")
    return args, cases


def main(argv=None):
    args, cases = parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix='glow_rev_') as tmp:
        base_commit = unpack_revision(args.base, tmp)
        trees = {'this': REPO, 'base': Path(tmp)}
        if args.what == 'trainer':
            results = compare_trainers(trees, args)
        for case_name in args.cases.split(',') if args.what != 'trainer' else []:
            for mode in args.modes.split(','):
                for what in args.what.split(','):
                    t = compare(trees, cases[case_name], mode, what, args.iters, args.warmup)
                    row = summary(t, case=case_name, mode=mode, what=what)
                    results.append(row)
                    print(
                        f"{case_name:11s} {mode:10s} {what:6s} this {row['this_s'] * 1e3:8.1f} ms"
                        f"  base {row['base_s'] * 1e3:8.1f} ms  this/base "
                        f"{row['ratio_this_over_base']:.3f}; first call this "
                        f"{row['first_this_s']:.1f} s base {row['first_base_s']:.1f} s",
                        flush=True,
                    )
    out = {'base': args.base, 'base_commit': base_commit, 'quick': args.quick, 'rows': results}
    if args.what == 'trainer':
        out['precision'] = {'this': args.precision, 'base': args.base_precision}
    print(dumps(out))
    if args.json:
        Path(args.json).write_text(dumps(out) + '\n')


if __name__ == '__main__':
    main()
