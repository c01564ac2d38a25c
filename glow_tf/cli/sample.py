"""`sample.py`: sample images from a trained Glow, and export it as a SavedModel.

    python sample.py --model LOGDIR --n 16 --temperature 0.7 --seed 0 --out samples.png
    python sample.py --model LOGDIR --n 8 --temperature 0 0.5 0.7 1 --out_dir pngs/ --npz s.npz
    python sample.py --model LOGDIR --export export_dir          # SavedModel: sample/encode/decode
    python sample.py --model export_dir --n 16 --seed 0           # sampling from the export

--model: a training log dir (by default the latest checkpoint's weights that scored better at
the run's last test pass, raw or Polyak-averaged: --weights auto), a checkpoint dir / ckpt-N
prefix, or a SavedModel written by --export. No training data is read.
Same --seed and temperature => same images (independent of --batch). With --precision fp32
also on every machine and across the export (fp32); the default 'auto' decodes in bf16 where
the CPU/GPU has bfloat16 units, which moves a few pixel values by rounding.
Exit status 0 ok, 2 bad arguments or inputs (the message names what is wrong).
"""

import argparse
import os
import sys
import time

import numpy as np

from glow_tf.cli import HelpFormatter, exit_on_input_error, prog_name

EXAMPLES = """examples:
  # 16 samples at temperature 0.7 from a training run (its better weights: --weights auto)
  sample.py --model runs/celeba32 --n 16 --temperature 0.7 --seed 0 --out samples.png
  # one grid row block per temperature, plus every image as a PNG and all as an .npz
  sample.py --model runs/celeba32 --n 8 --temperature 0 0.5 0.7 1 --out_dir pngs/ --npz s.npz
  # export a self-contained SavedModel (sample / encode / decode), then sample from it
  sample.py --model runs/celeba32 --export export/celeba32
  sample.py --model export/celeba32 --n 16 --seed 0 --out from_export.png
  # 8 variations of a face at T = 0.3 and 0.6: keep levels 3 and 4 (coarse), resample 1 and 2
  sample.py --model models/celeba64 --variations_of face.jpg --keep_levels 3 4 --n 8 \
    --temperature 0.3 0.6 --seed 0 --out variations.png
"""


def _labels(text):
    try:
        return [int(t) for t in text.replace(' ', '').split(',') if t]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer class label or a comma-separated list of them, got {text!r}"
        )


def use_ema(args):
    """--weights -> the `use_ema` argument of `load_trained_model` (None: the run's better
    weights)."""
    return {'auto': None, 'ema': True, 'raw': False}[args.weights]


def flow_from_args(args):
    """The model the `add_model_args` flags name, as a `glow_tf.tools.trained.TrainedModel`."""
    from glow_tf.errors import InputError
    from glow_tf.tools.trained import load_trained_model

    if args.batch < 1:
        raise InputError(f"--batch must be >= 1, got {args.batch}")
    precision = args.precision
    if precision == 'auto' and getattr(args, 'export', None):
        precision = 'fp32'  # a SavedModel fixes its precision: keep it right on every machine
    return load_trained_model(
        args.model,
        use_ema=use_ema(args),
        which=args.which,
        batch_size=args.batch,
        precision=precision,
    )


def add_model_args(p, precision='auto'):
    """The flags naming a trained model; `precision`: the --precision default (manipulate.py
    keeps 'fp32', the editor's precision, so its edits match the editor's pixels)."""
    g = p.add_argument_group('model')
    g.add_argument(
        '--model',
        required=True,
        help="Training log dir, checkpoint dir, ckpt-N prefix, "
        "or an exported SavedModel directory.",
    )
    g.add_argument(
        '--weights',
        choices=['auto', 'ema', 'raw'],
        default='auto',
        help="Checkpoints only: 'auto' the weights that scored better at the run's last "
        "test pass (weights.json), 'ema' the Polyak averages, 'raw' the trained weights.",
    )
    g.add_argument(
        '--raw_weights',
        action='store_const',
        dest='weights',
        const='raw',
        help="Same as --weights raw.",
    )
    g.add_argument(
        '--which',
        choices=['latest', 'best'],
        default='latest',
        help="Which checkpoint of a log dir: the latest or the best-test-loss one.",
    )
    g.add_argument('--batch', type=int, default=64, help="Images per model call.")
    g.add_argument(
        '--precision',
        choices=['auto', 'fp32', 'bf16'],
        default=precision,
        help="Checkpoints only: what the coupling networks compute in. 'auto': bf16 where the "
        "hardware computes bfloat16 natively (CPUs with AVX512_BF16 or AMX: batches decode "
        "~1.4x faster), else fp32; fp32 for --export, whose SavedModel keeps its precision. "
        "bf16 images differ from fp32's by rounding (mean ~0.3 of 255); 'fp32' gives the same "
        "pixels on every machine (docs/performance.md).",
    )
    g.add_argument(
        '--no_progress',
        dest='progress',
        action='store_false',
        help="No progress bars / stage timings on stderr (shown by default).",
    )
    return g


def build_parser():
    p = argparse.ArgumentParser(
        prog=prog_name('sample.py'),
        formatter_class=HelpFormatter,
        description="Sample from a trained Glow (and export it).",
        epilog=EXAMPLES,
    )
    add_model_args(p)
    g = p.add_argument_group('sampling')
    g.add_argument('--n', type=int, default=64, help="Samples per temperature.")
    g.add_argument(
        '--temperature',
        type=float,
        nargs='+',
        default=[0.7],
        help="One or several temperatures; each reuses the same base latents.",
    )
    g.add_argument(
        '--seed',
        type=int,
        default=None,
        help="Random seed (default: a fresh one, "
        "printed). Same seed and temperature -> same images.",
    )
    g.add_argument(
        '--y',
        type=_labels,
        default=None,
        help="Class label(s) for a class-conditional "
        "model: one label for all samples, or a comma-separated list cycled over them.",
    )
    g = p.add_argument_group(
        'variations of an image (levels: 1 = finest .. L = coarsest, see docs/manipulation.md)'
    )
    g.add_argument(
        '--variations_of',
        default=None,
        metavar='IMAGE',
        help="Instead of samples: --n variations of this image at each --temperature, keeping "
        "its --keep_levels and resampling the other levels with --seed's noise.",
    )
    g.add_argument(
        '--keep_levels',
        type=int,
        nargs='+',
        default=None,
        metavar='L',
        help="Levels of the image to keep (default: all but level 1, the finest).",
    )
    g = p.add_argument_group('outputs')
    g.add_argument(
        '--out',
        default=None,
        help="Grid PNG (one block of rows per temperature). "
        "Default samples.png unless only --export is asked for.",
    )
    g.add_argument('--cols', type=int, default=None, help="Grid columns (default: ceil(sqrt(n))).")
    g.add_argument('--out_dir', default=None, help="Also write every sample as its own PNG here.")
    g.add_argument(
        '--npz',
        default=None,
        help="Also save the samples (uint8 [T, n, H, W, C]), the "
        "temperatures and the seed in this .npz.",
    )
    g.add_argument(
        '--export',
        default=None,
        metavar='DIR',
        help="Write a SavedModel with the "
        "signatures sample(n, temperature, seed), encode(images), decode(latents).",
    )
    return p


def run(args, out=None):
    out = out or sys.stdout
    from glow_tf.errors import InputError
    from glow_tf.progress import stage
    from glow_tf.tools.images import save_image_grid, save_images, save_npz
    from glow_tf.tools.sampling import random_seed
    from glow_tf.tools.trained import InMemoryModel

    if args.n < 1:
        raise InputError(f"--n must be >= 1, got {args.n}")
    for t in args.temperature:
        if not t >= 0:
            raise InputError(f"--temperature must be >= 0, got {t}")
    if args.keep_levels is not None and args.variations_of is None:
        raise InputError("--keep_levels applies to --variations_of IMAGE; give the image too")
    if args.out and os.path.isdir(args.out):
        raise InputError(
            f"--out {args.out} is a directory; give a PNG file name (e.g. "
            f"{os.path.join(args.out, 'samples.png')}) or use --out_dir for one PNG "
            "per sample"
        )
    if args.out_dir and os.path.exists(args.out_dir) and not os.path.isdir(args.out_dir):
        raise InputError(f"--out_dir {args.out_dir} is a file; give a directory")
    flow = flow_from_args(args)
    print(
        f"model: {flow.description}; images {'x'.join(map(str, flow.image_shape))}, "
        f"{len(flow.latent_shapes)} levels, {flow.n_bits_x}-bit"
        + (f"; coupling networks in {flow.precision}" if hasattr(flow, 'precision') else ''),
        file=out,
    )

    if args.export:
        if not isinstance(flow, InMemoryModel):
            raise InputError(
                f"--export needs a checkpoint / log dir, {args.model} is already "
                "an exported SavedModel"
            )
        from glow_tf.tools.export import export_saved_model

        t0 = time.perf_counter()
        with stage(
            f"exporting to {args.export} (tracing sample, encode, decode)", enabled=args.progress
        ):
            path = export_saved_model(
                flow.model,
                args.export,
                n_bits_x=flow.n_bits_x,
                extra_meta={'source': os.path.abspath(args.model), 'weights': flow.weights},
            )
        print(
            f"exported SavedModel to {path} ({time.perf_counter() - t0:.1f}s); signatures "
            f"sample(n, temperature, seed{', y' if flow.n_classes else ''}), encode(images), "
            f"decode(latents)",
            file=out,
        )
        if args.out is None and args.out_dir is None and args.npz is None:
            return 0

    # the labels cycle over the samples; the flow checks them against the model
    y = None if args.y is None else np.resize(np.asarray(args.y, np.int32), args.n)
    seed = args.seed if args.seed is not None else random_seed()

    timings, images = [], []
    t_start = time.perf_counter()
    if args.variations_of is not None:
        images = sample_variations(flow, args, seed, y, out)
    else:
        for t in args.temperature:
            images.append(flow.sample(args.n, t, seed, y, timings))
        images = np.stack(images)  # [T, n, H, W, C]
    wall = time.perf_counter() - t_start
    n_total = images.shape[0] * images.shape[1]
    what = 'variations' if args.variations_of is not None else 'images'
    msg = (
        f"sampled {n_total} {what} (n={args.n} x {len(args.temperature)} temperature(s), seed "
        f"{seed}, batch {args.batch}) in {wall:.2f}s: {1000 * wall / n_total:.2f} ms/image overall"
    )
    if len(timings) > 1:
        (first_n, first_s), rest = timings[0], timings[1:]
        n_rest, s_rest = sum(r[0] for r in rest), sum(r[1] for r in rest)
        msg += (
            f"; {1000 * s_rest / n_rest:.2f} ms/image after the first batch (which took "
            f"{first_s:.2f}s for {first_n} images, including tf.function tracing)"
        )
    elif timings:
        msg += " (one batch, including tf.function tracing; more batches show the steady rate)"
    print(msg, file=out)

    out_path = args.out
    if out_path is None and not args.export:
        out_path = 'samples.png'
    if out_path:
        cols = args.cols or int(np.ceil(np.sqrt(args.n)))
        # each temperature starts a new row block
        rows = int(np.ceil(args.n / cols))
        blank = np.zeros((len(args.temperature), rows * cols - args.n) + images.shape[2:], np.uint8)
        padded = np.concatenate([images, blank], 1).reshape(-1, *images.shape[2:])
        save_image_grid(padded, out_path, n_cols=cols)
        print(
            f"wrote {out_path} ({len(args.temperature)} temperature(s) "
            f"{', '.join(f'{t:g}' for t in args.temperature)}, top to bottom)",
            file=out,
        )
    if args.out_dir:
        for t, imgs in zip(args.temperature, images):
            save_images(imgs, args.out_dir, prefix=f'sample_seed{seed}_t{t:g}')
        print(f"wrote {n_total} PNGs to {args.out_dir}", file=out)
    if args.npz:
        arrays = {
            'images': images,
            'temperatures': np.array(args.temperature, np.float32),
            'seed': np.array(seed),
        }
        if y is not None:
            arrays['y'] = y
        save_npz(args.npz, arrays)
        print(f"wrote {args.npz}", file=out)
    return 0


def sample_variations(flow, args, seed, y, out):
    """uint8 [T, n, H, W, C]: --n variations of --variations_of at each --temperature."""
    from glow_tf.errors import InputError
    from glow_tf.tools.images import load_images
    from glow_tf.tools.levels import check_levels, level_names, variations

    n_levels = len(flow.latent_shapes)
    if args.keep_levels is None:
        keep = tuple(range(2, n_levels + 1))
    else:
        keep = check_levels(args.keep_levels, n_levels, '--keep_levels', allow_empty=False)
    if y is not None and len(set(y.tolist())) > 1:
        raise InputError("--variations_of takes one class label (--y N), not a list")
    image = load_images([args.variations_of], flow.image_shape)
    names = level_names(flow.latent_shapes)
    kept = ', '.join(names[k - 1] for k in keep) or 'none'
    resampled = ', '.join(n for i, n in enumerate(names) if i + 1 not in keep) or 'none'
    print(f"variations of {args.variations_of}: keep {kept}; resample {resampled}", file=out)
    yy = None if y is None else y[:1]
    return np.stack(
        [variations(flow, image, keep, args.n, t, seed, yy)[0] for t in args.temperature]
    )


def main(argv=None):
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    parser = build_parser()
    args = parser.parse_args(argv)
    return exit_on_input_error(lambda: run(args), parser.prog)


if __name__ == '__main__':
    sys.exit(main())
