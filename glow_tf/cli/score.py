"""score.py / glow-score: score image sets with a trained Glow (see docs/likelihood.md)."""

import argparse
import os

from glow_tf.cli import HelpFormatter, exit_on_input_error, prog_name
from glow_tf.errors import InputError


def build_parser():
    p = argparse.ArgumentParser(
        prog=prog_name('score.py'),
        description=__doc__ + '\nScores are bits/dim at the centre of each pixel\'s bin '
        '(deterministic, no noise). The first --data is the in-distribution reference.',
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        '--model', required=True, help='log dir, checkpoint, packaged model or SavedModel'
    )
    p.add_argument(
        '--data',
        action='append',
        required=True,
        metavar='SET',
        help='a folder, an .npz of uint8 images, or mnist:test / cifar10:test / '
        'celeba:test; repeat; NAME=SET names the set',
    )
    p.add_argument('--out', help='directory for report.json, scores.csv, summary.md, histogram.png')
    p.add_argument('--background_model', help='a second model for the likelihood ratio')
    p.add_argument(
        '--weights',
        choices=['auto', 'raw', 'ema'],
        default='auto',
        help="checkpoint weights: the run's better ones, raw or Polyak-averaged",
    )
    p.add_argument(
        '--max_images', type=int, default=None, help='at most this many per set (evenly spread)'
    )
    p.add_argument('--batch_size', type=int, default=64)
    p.add_argument(
        '--typicality_batch', type=int, default=16, help='M, images per typicality batch'
    )
    p.add_argument('--skip_bad', action='store_true', help='skip unreadable image files')
    p.add_argument('--no_progress', action='store_true')
    return p


def _named(spec):
    name, sep, rest = spec.partition('=')
    if sep and name and not os.path.exists(spec):
        return name, rest
    return spec.rstrip('/'), spec


def run(args):
    from glow_tf.tools import score_report
    from glow_tf.tools.ood_stats import png_bits_per_dim
    from glow_tf.tools.scoring import Scorer, load_image_set
    from glow_tf.tools.trained import load_trained_model

    for flag in ('max_images', 'batch_size', 'typicality_batch'):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise InputError(f"--{flag} {value}: expected a positive integer")
    use_ema = {'auto': None, 'raw': False, 'ema': True}[args.weights]
    flow = load_trained_model(args.model, use_ema=use_ema, batch_size=args.batch_size)
    scorer = Scorer(flow, args.batch_size)
    background = None
    if args.background_model:
        bg_flow = load_trained_model(
            args.background_model, use_ema=use_ema, batch_size=args.batch_size
        )
        if tuple(bg_flow.image_shape) != tuple(flow.image_shape):
            raise InputError(
                f"--background_model {args.background_model}: image shape {bg_flow.image_shape} "
                f"differs from the model's {flow.image_shape}"
            )
        background = Scorer(bg_flow, args.batch_size)
    sets = {}
    for spec in args.data:
        name, spec = _named(spec)
        if name in sets:
            raise InputError(f"--data {spec}: the set name {name!r} is used twice (use NAME=SET)")
        images, names = load_image_set(spec, scorer.image_size, args.skip_bad, args.max_images)
        bits, parts = scorer.score(images, f'scoring {name}', not args.no_progress)
        entry = {'bits': bits, 'parts': parts, 'names': names, 'png': png_bits_per_dim(images)}
        if background is not None:
            entry['llr'] = (
                bits - background.score(images, f'background {name}', not args.no_progress)[0]
            )
        sets[name] = entry
    ref_name = next(iter(sets))
    report = {
        'model': {
            'path': args.model,
            'description': flow.description,
            'image_shape': list(flow.image_shape),
            'n_bits_x': int(flow.n_bits_x),
            'weights': getattr(flow, 'weights', 'exported'),
            'background_model': args.background_model,
            'reference_set': ref_name,
            'scoring': 'bits/dim at the centre of every pixel\'s quantisation bin (no noise; '
            'deterministic); complexity = bits/dim - PNG bits/dim; likelihood ratio = model '
            'bits/dim - background bits/dim',
        },
        'sets': {k: score_report.set_entry(s['bits'], s['parts']) for k, s in sets.items()},
        'comparisons': {
            k: score_report.comparison(sets[ref_name], s, args.typicality_batch)
            for k, s in sets.items()
            if k != ref_name
        },
    }
    for name, s in report['sets'].items():
        print(
            f"{name}: n={s['n']} bits/dim {s['bits_per_dim_mean']:.4f} "
            f"± {s['bits_per_dim_std']:.4f}"
        )
    for name, c in report['comparisons'].items():
        print(
            f"{name} vs {ref_name}: AUROC bits/dim {c['auroc_bits_per_dim']:.3f}, complexity "
            f"{c['auroc_complexity']:.3f}, FPR95 {c['fpr95_bits_per_dim']:.3f}"
        )
    if args.out:
        score_report.write_report(args.out, report, sets)
        print(f"wrote {args.out}/report.json, scores.csv, summary.md, histogram.png")
    return report


def main(argv=None):
    args = build_parser().parse_args(argv)
    prog = prog_name('score.py')
    exit_on_input_error(lambda: run(args), prog)
    return 0
