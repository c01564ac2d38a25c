"""Sample quality of a trained Glow, scored by two judges (docs/sample_quality.md).

    python bench/sample_quality.py digits --model logs/quickstart --temperatures 0.7 --n 200 \\
        --out bench/results/sample_quality/
    python bench/sample_quality.py faces --model models/celeba64 \\
        --temperatures 0.5,0.6,0.7,0.8,0.9,1.0 --out bench/results/sample_quality/

digits: the share of samples a small MNIST CNN (bench/digit_judge.py) classifies with p >= 0.9
and how many of the 10 digits those cover; real test digits are scored in the same run.
faces: a Frechet distance in the penultimate layer of a small CelebA-attribute CNN
(bench/face_judge.py) between samples and the 900 held-out faces -- not Inception FID -- with
calibration rows (real training faces, real faces blurred to 32x32 and 16x16) in the same run.

Prints a table, writes <out>/<judge>_<model name>.json and PNG grids (one per temperature and
one per reference). Exit status 2 on a bad flag (the message names it).
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from glow_tf.errors import InputError  # noqa: E402

GRID_IMAGES = 100  # a 10x10 grid of the first samples per temperature / reference


def cpu_model():
    """The CPU model name from /proc/cpuinfo (platform.processor() elsewhere)."""
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def parse_temperatures(text):
    """'0.5,0.7' -> [0.5, 0.7]; InputError naming --temperatures otherwise."""
    try:
        ts = [float(t) for t in text.split(',') if t.strip()]
    except ValueError:
        ts = []
    if not ts or any(not t >= 0 for t in ts):
        raise InputError(
            f'--temperatures: expected comma-separated numbers >= 0 (e.g. 0.5,0.7), got {text!r}'
        )
    return ts


def load_model_flow(path, batch):
    """The `--model` as a glow_tf TrainedModel (sample.py's default weights); InputError naming
    --model."""
    from glow_tf.tools.trained import load_trained_model

    if not os.path.exists(path) and not os.path.exists(path + '.index'):
        raise InputError(
            f'--model {path}: no such file or directory (expected a training log dir, a '
            'packaged model dir like models/celeba64, or a checkpoint)'
        )
    try:
        return load_trained_model(path, batch_size=batch)
    except InputError as e:
        raise InputError(f'--model {path}: {e}') from None


def model_samples(flow, n, temperatures, seed, y=None):
    """uint8 [T, n, H, W, C]: glow_tf's own sampling, seeded (same base latents at every T);
    y: the labels [n] of a class-conditional model."""
    from glow_tf.tools.sampling import sample_images

    t0 = time.perf_counter()
    x = sample_images(flow, n, temperatures, seed, y)
    print(
        f'sampled {len(temperatures)} x {n} images in {time.perf_counter() - t0:.0f}s',
        file=sys.stderr,
        flush=True,
    )
    return x


def save_grid(images, path):
    """A 10x10 PNG grid of the first GRID_IMAGES images."""
    from glow_tf.tools.images import save_image_grid

    save_image_grid(images[:GRID_IMAGES], path, n_cols=10)
    return str(path)


def run_digits(args, out_dir, stem):
    import numpy as np

    from bench.digit_judge import (
        RECIPE,
        digit_judge,
        digit_probabilities,
        load_mnist,
        score_probabilities,
    )
    from bench.judge_cache import judge_path, recipe_hash

    flow = load_model_flow(args.model, args.batch)
    if tuple(flow.image_shape) != (32, 32, 3):
        raise InputError(
            f'--model {args.model}: images are {flow.image_shape}, the digit judge '
            'needs an MNIST model (32x32x3)'
        )
    judge = digit_judge()
    # a class-conditional model draws the labels 0, 1, 2, ... in turn (as its sample grids do);
    # `label_agreement` is then the share of confident samples the judge reads as their label
    labels = np.arange(args.n) % flow.n_classes if flow.n_classes else None
    samples = model_samples(flow, args.n, args.temperatures, args.seed, labels)
    rows = []
    for t, x in zip(args.temperatures, samples):
        p = digit_probabilities(x, judge)
        row = {'what': f'samples T={t:g}', 'temperature': t, **score_probabilities(p)}
        if labels is not None:
            confident = p.max(axis=1) >= row['threshold']
            agree = (p.argmax(axis=1) == labels) & confident
            row['label_agreement'] = float(agree.sum() / max(1, confident.sum()))
        row['grid'] = save_grid(x, out_dir / f'{stem}_t{t:g}.png')
        rows.append(row)
    real, _ = load_mnist('test')
    real = real[: args.n]
    rows.append(
        {
            'what': 'real test digits',
            'temperature': None,
            **score_probabilities(digit_probabilities(real, judge)),
            'grid': save_grid(real, out_dir / f'{stem}_real_test.png'),
        }
    )
    judge_info = {
        'recipe': RECIPE,
        'hash': recipe_hash(RECIPE),
        'weights': str(judge_path('digits', RECIPE)),
    }
    table = [
        'what                  n  confident share  classes present'
        + ('  label agreement' if labels is not None else ''),
        *(
            f"{r['what']:<18} {r['n']:>5}  {r['confident_share']:>15.3f}  "
            f"{r['classes_present']:>15d}"
            + (f"  {r['label_agreement']:>15.3f}" if 'label_agreement' in r else '')
            for r in rows
        ),
    ]
    return rows, judge_info, table


def run_faces(args, out_dir, stem):
    import numpy as np

    from bench.face_judge import RECIPE, box_blur, face_features, face_judge, load_faces
    from bench.frechet import features_frechet
    from bench.judge_cache import judge_path, recipe_hash

    flow = load_model_flow(args.model, args.batch)
    if tuple(flow.image_shape) != (64, 64, 3):
        raise InputError(
            f'--model {args.model}: images are {flow.image_shape}, the face judge needs a '
            '64x64x3 face model'
        )
    x_train, _, x_held, _ = load_faces()
    if args.n > len(x_held):
        raise InputError(f'--n: at most {len(x_held)} (the held-out faces), got {args.n}')
    judge = face_judge()
    samples = model_samples(flow, args.n, args.temperatures, args.seed)
    held = face_features(x_held[: args.n], judge)
    pick = np.sort(np.random.default_rng(args.seed).choice(len(x_train), args.n, replace=False))
    train = x_train[pick]
    sets = [(f'samples T={t:g}', t, x, f't{t:g}') for t, x in zip(args.temperatures, samples)]
    sets += [
        ('real training faces', None, train, 'real_train'),
        ('real, box 32x32 + upsampled', None, box_blur(train, 32), 'blur32'),
        ('real, box 16x16 + upsampled', None, box_blur(train, 16), 'blur16'),
    ]
    rows = []
    for what, t, x, tag in sets:
        d = features_frechet(face_features(x, judge), held)
        grid = save_grid(x, out_dir / f'{stem}_{tag}.png')
        rows.append({'what': what, 'temperature': t, 'n': len(x), 'frechet': d, 'grid': grid})
    rows.append(
        {
            'what': 'real held-out faces (the reference)',
            'temperature': None,
            'n': args.n,
            'frechet': 0.0,
            'grid': save_grid(x_held[: args.n], out_dir / f'{stem}_real_heldout.png'),
        }
    )
    judge_info = {
        'recipe': RECIPE,
        'hash': recipe_hash(RECIPE),
        'weights': str(judge_path('faces', RECIPE)),
        'reference': f'the first {args.n} of the {len(x_held)} held-out faces',
        'training_faces': f'{args.n} random training faces (seed {args.seed})',
    }
    table = [
        f'Frechet distance to {args.n} real held-out faces (face-attribute CNN features, '
        'not Inception FID)',
        *(f"{r['what']:<36} {r['n']:>5}  {r['frechet']:>10.3f}" for r in rows[:-1]),
    ]
    return rows, judge_info, table


def build_parser():
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument('judge', choices=['digits', 'faces'], help='Which judge scores the samples.')
    p.add_argument(
        '--model',
        required=True,
        help='Training log dir, packaged model dir (models/celeba64) or checkpoint.',
    )
    p.add_argument('--temperatures', default='0.7', help='Comma-separated sampling temperatures.')
    p.add_argument(
        '--n',
        type=int,
        default=None,
        help='Samples per temperature (default: 200 digits, 900 faces).',
    )
    p.add_argument('--seed', type=int, default=0, help='Sampling seed.')
    p.add_argument('--batch', type=int, default=64, help='Images per model call.')
    p.add_argument(
        '--out',
        default='bench/results/sample_quality',
        help='Directory for the JSON and the PNG grids.',
    )
    return p


def run(args):
    args.temperatures = parse_temperatures(args.temperatures)
    if args.n is None:
        args.n = 200 if args.judge == 'digits' else 900
    if args.n < 1:
        raise InputError(f'--n: expected a number >= 1, got {args.n}')
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f'--out {args.out} is a file; expected a directory')
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f'{args.judge}_{Path(os.path.normpath(args.model)).name}'
    if args.judge == 'digits':
        rows, judge_info, table = run_digits(args, out_dir, stem)
    else:
        rows, judge_info, table = run_faces(args, out_dir, stem)
    import tensorflow as tf

    record = {
        'judge': args.judge,
        'model': os.path.abspath(args.model),
        'n': args.n,
        'seed': args.seed,
        'temperatures': args.temperatures,
        'judge_info': judge_info,
        'rows': rows,
        'cpu': cpu_model(),
        'tensorflow': tf.__version__,
    }
    path = out_dir / f'{stem}.json'
    path.write_text(json.dumps(record, indent=1) + '\n')
    print('\n'.join(table))
    print(f'wrote {path}')
    return record


def main(argv=None):
    from glow_tf.cli import exit_on_input_error

    args = build_parser().parse_args(argv)
    exit_on_input_error(lambda: run(args), 'sample_quality.py')
    return 0


if __name__ == '__main__':
    main()
