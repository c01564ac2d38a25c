"""Learning curves: test bits/dim against training steps and training seconds, raw and averaged.

    python bench/learning_curves.py                       # both runs (~25 min on 2 CPU cores)
    python bench/learning_curves.py --runs main --every 100
    python bench/learning_curves.py --runs cifar --json-out /tmp/c.json --plot /tmp/c.png
    python bench/learning_curves.py --from-json /tmp/m.json /tmp/c.json   # merge + re-plot only

Each run trains with `train.py` (in this process) and writes a checkpoint every `--every` steps;
afterwards every checkpoint is evaluated on the run's full test set with its raw and with its
Polyak-averaged weights, by the trainer's own evaluation code (`Trainer.evaluate`). The x axes
are the step and the training time stored in the checkpoint (wall-clock seconds spent in
training steps, without the evaluations). Prints a table and one `JSON ` line per run, writes
all points as JSON and a PNG plot. The plot needs matplotlib, which scripts/install.sh does not
install (`pip install -e '.[bench]'`); without it the script stops at once with that advice, and
`--plot ''` writes the JSON only.

Runs:
  main   the README's main job (MNIST, 3 levels x depth 8, width 64, 600 steps of 32)
  cifar  the CIFAR-10 subset in ../shared/data (5,085 train images; the first 1,000 of its
         1,017 test images), 3 levels x depth 8, width 128, affine coupling, 800 steps of 32
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The README main job's flags (README.md, "Set up"), without --logdir.
MAIN_JOB = [
    '--problem',
    'mnist',
    '--n_levels',
    '3',
    '--depth',
    '8',
    '--width',
    '64',
    '--n_batch_train',
    '32',
    '--n_train',
    '6400',
    '--epochs',
    '3',
    '--epochs_warmup',
    '0.5',
    '--lr',
    '0.002',
    '--gradient_checkpointing',
    '0',
    '--test_at_init',
    '--epochs_full_valid',
    '3',
    '--epochs_full_sample',
    '3',
]
CIFAR = [
    '--problem',
    'cifar10',
    '--n_levels',
    '3',
    '--depth',
    '8',
    '--width',
    '128',
    '--flow_coupling',
    '1',
    '--n_batch_train',
    '32',
    '--n_train',
    '3200',
    '--epochs',
    '8',
    '--n_test',
    '1000',
    '--test_at_init',
    '--epochs_warmup',
    '1',
    '--lr',
    '0.001',
    '--gradient_checkpointing',
    '0',
    '--epochs_full_valid',
    '8',
    '--epochs_full_sample',
    '8',
]
RUNS = {'main': MAIN_JOB, 'cifar': CIFAR}


def train(argv, logdir, every):
    from glow_tf.cli.train import main

    t0 = time.time()
    main(
        argv
        + [
            '--logdir',
            logdir,
            '--ckpt_every_steps',
            str(every),
            '--keep_checkpoints',
            '1000',
            '--no_progress',
        ]
    )
    return time.time() - t0


def checkpoints(logdir):
    import tensorflow as tf

    state = tf.train.get_checkpoint_state(os.path.join(logdir, 'checkpoints'))
    prefixes = list(state.all_model_checkpoint_paths) if state else []
    return sorted(prefixes, key=lambda p: int(p.rsplit('-', 1)[1]))


def evaluate_checkpoints(logdir, scratch):
    """[{step, train_time, raw, ema}] for every checkpoint of `logdir` (bits/dim), after the
    run's own step-0 test pass when it made one (--test_at_init: raw == averaged there)."""
    from glow_tf.runs.config import TrainConfig
    from glow_tf.training.trainer import Trainer

    cfg = TrainConfig.load(os.path.join(logdir, 'config.json'))
    prefixes = checkpoints(logdir)
    trainer = Trainer(
        cfg.replace(inference=True, restore_path=prefixes[0], logdir=scratch, progress=False)
    )
    trainer.setup()
    with open(os.path.join(logdir, 'test.jsonl')) as f:
        points = [
            {
                'step': 0,
                'train_time': 0.0,
                'raw': r['bits_x_raw'],
                'ema': r['bits_x_ema'],
                'n_test': r['n_test'],
            }
            for r in map(json.loads, f)
            if r['step'] == 0
        ]
    for prefix in prefixes:
        trainer.restore_prefix = prefix
        trainer.initialize_or_restore()
        raw = trainer.tests.evaluate(use_ema=False)
        ema = trainer.tests.evaluate(use_ema=True)
        points.append(
            {
                'step': trainer.counters.step,
                'train_time': trainer.counters.train_time,
                'raw': raw['bits_x'],
                'ema': ema['bits_x'],
                'n_test': raw['n_test'],
            }
        )
        print(
            f"  step {trainer.counters.step:5d}  {trainer.counters.train_time:7.1f} s  "
            f"raw {raw['bits_x']:.4f}  "
            f"averaged {ema['bits_x']:.4f}",
            flush=True,
        )
    return points


MATPLOTLIB_MISSING = (
    "--plot needs matplotlib, which scripts/install.sh does not install: "
    "pip install -e '.[bench]' (matplotlib==3.10.9), or pass --plot '' for the JSON only"
)


def have_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def plot(results, path):
    """Plot every run's raw and averaged test bits/dim against steps and seconds; write `path`."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(results), 2, figsize=(10, 3.6 * len(results)), squeeze=False)
    for row, (name, res) in zip(axes, results.items()):
        pts = res['points']
        for ax, key, label in (
            (row[0], 'step', 'training step'),
            (row[1], 'train_time', 'training time (s, from the run\'s train_time)'),
        ):
            x = [p[key] for p in pts]
            ax.plot(x, [p['raw'] for p in pts], 'o-', label='raw weights')
            ax.plot(x, [p['ema'] for p in pts], 's--', label='Polyak-averaged')
            ax.set_xlabel(label)
            ax.set_ylabel('test bits/dim')
            ax.set_title(f"{name}: {res['title']}", fontsize=9)
            low = min(min(p['raw'], p['ema']) for p in pts)
            ax.set_ylim(low - 0.2, min(max(max(p['raw'], p['ema']) for p in pts), low + 3.0) + 0.1)
            ax.grid(alpha=0.3)
            ax.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=90)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument('--runs', default='main,cifar', help="comma-separated: main, cifar")
    p.add_argument(
        '--every', type=int, default=100, help="checkpoint / evaluation interval (steps)"
    )
    p.add_argument('--json-out', default='bench/results/learning_curves.json')
    p.add_argument('--plot', default='docs/images/learning_curves.png')
    p.add_argument(
        '--workdir', default='', help="keep the training runs here (default: a temp dir)"
    )
    p.add_argument(
        '--from-json',
        nargs='+',
        default=[],
        metavar='FILE',
        help="no training: merge these JSON outputs and re-plot them",
    )
    args = p.parse_args(argv)
    if args.plot and not have_matplotlib():  # before any training, not after it
        p.error(MATPLOTLIB_MISSING)
    if args.from_json:
        results = {}
        for path in args.from_json:
            try:
                with open(path) as f:
                    results.update(json.load(f))
            except (OSError, ValueError) as e:
                p.error(f"--from-json {path}: not a readable JSON output of this script ({e})")
        if args.json_out:
            with open(args.json_out, 'w') as f:
                json.dump(results, f, indent=1)
            print(f"wrote {args.json_out}")
        if args.plot:
            print(f"wrote {plot(results, args.plot)}")
        return
    names = [n for n in args.runs.split(',') if n]
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        p.error(f"--runs: unknown {unknown}; choose from {sorted(RUNS)}")
    work = args.workdir or tempfile.mkdtemp(prefix='glow_curves_')
    results = {}
    for name in names:
        logdir = os.path.join(work, name)
        if os.path.exists(logdir):
            shutil.rmtree(logdir)
        print(f"== {name}: python train.py {' '.join(RUNS[name])}", flush=True)
        wall = train(RUNS[name], logdir, args.every)
        points = evaluate_checkpoints(logdir, os.path.join(work, name + '_eval'))
        final = points[-1]
        results[name] = {
            'flags': RUNS[name],
            'every': args.every,
            'train_wall_s': wall,
            'points': points,
            'title': f"{' '.join(RUNS[name][:2])}, final raw {final['raw']:.3f} / "
            f"averaged {final['ema']:.3f}",
        }
        print('JSON ' + json.dumps({'run': name, **results[name]}), flush=True)
    if args.json_out:
        os.makedirs(os.path.dirname(os.path.abspath(args.json_out)), exist_ok=True)
        with open(args.json_out, 'w') as f:
            json.dump(results, f, indent=1)
        print(f"wrote {args.json_out}")
    if args.plot:
        print(f"wrote {plot(results, args.plot)}")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
