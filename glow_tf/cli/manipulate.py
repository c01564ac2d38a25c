"""`manipulate.py`: encode images, compute attribute directions, edit and interpolate faces.

    manipulate.py encode      --model M --images a.jpg b.png DIR/ --out latents.npz
    manipulate.py decode      --model M --latents latents.npz --out recon.png
    manipulate.py directions  --model M --attr_file list_attr_celeba.txt --image_dir IMG_DIR
                              [--n_images 2000] [--attributes Smiling Male] --out directions.npz
    manipulate.py directions  --model M --pos_dir smiling/ --neg_dir neutral/ --name Smiling
                              --out d.npz
    manipulate.py directions  --model M --folder DIR
                              (DIR/pos, DIR/neg; name = --name or DIR's name)
    manipulate.py edit        --model M --directions directions.npz --attribute Smiling
                              --strengths -1 -0.5 0 0.5 1 --images face.jpg --out edit.png
    manipulate.py interpolate --model M --images a.jpg b.jpg --n 8 --out interp.png
    manipulate.py edit        ... --levels 3 4      (move only levels 3 and 4; 1 = finest)
    manipulate.py animate     --model M --directions directions.npz --attribute Smiling
                              --images face.jpg --out smile.gif   (a sweep -1 .. +1, looped)
    manipulate.py animate     --model M --images a.jpg b.jpg --out mix.mp4   (interpolation)

Latents are the model's per-level ε packed into one image-shaped vector z; a direction is
mean(z | attribute) - mean(z | not attribute); an edit decodes z + strength * direction; see
glow_tf/tools/manipulation.py and docs/manipulation.md. Inputs are image files of any size
(centre-cropped and resized to the model's size). Exit status 0 ok, 2 bad arguments or inputs
(the message names the file, attribute or shape at fault).
"""

import argparse
import os
import sys
import time

import numpy as np

from glow_tf.cli import HelpFormatter, exit_on_input_error, prog_name
from glow_tf.cli.sample import add_model_args, flow_from_args


def _add_common(p):
    add_model_args(p, precision='fp32')
    p.add_argument(
        '--y',
        type=int,
        default=None,
        help="Class label for a class-conditional model (used for every image).",
    )


def build_parser():
    p = argparse.ArgumentParser(
        prog=prog_name('manipulate.py'),
        description=__doc__.split('\n\n')[0],
        formatter_class=HelpFormatter,
        epilog=__doc__.split('\n\n', 1)[1],
    )
    sub = p.add_subparsers(dest='command', metavar='COMMAND')
    sub.required = True
    fmt = HelpFormatter

    s = sub.add_parser('encode', help="images -> per-level latents (npz)", formatter_class=fmt)
    _add_common(s)
    s.add_argument('--images', nargs='+', required=True, help="Image files or directories.")
    s.add_argument('--out', required=True, help="Output .npz (eps_0..eps_{L-1}, latents, files).")
    s.add_argument(
        '--check',
        action='store_true',
        help="Decode the latents again and report whether the input is reproduced.",
    )

    s = sub.add_parser('decode', help="latents (npz from encode) -> images", formatter_class=fmt)
    _add_common(s)
    s.add_argument('--latents', required=True, help="A .npz written by `encode`.")
    s.add_argument('--out', required=True, help="Output grid PNG.")
    s.add_argument('--out_dir', default=None, help="Also write each image as its own PNG here.")

    s = sub.add_parser(
        'directions', help="attribute directions from labelled images", formatter_class=fmt
    )
    _add_common(s)
    s.add_argument('--attr_file', default=None, help="CelebA list_attr_celeba.txt (+1/-1 labels).")
    s.add_argument(
        '--image_dir',
        default=None,
        help="Directory of the images the attribute file "
        "names (matched by file stem; default: img_align_celeba*/ next to the file).",
    )
    s.add_argument(
        '--n_images',
        type=int,
        default=None,
        help="Use only the first N labelled images that exist (default: all).",
    )
    s.add_argument(
        '--attributes',
        nargs='+',
        default=None,
        help="Only these attributes (default: all in the file).",
    )
    s.add_argument('--pos_dir', default=None, help="Folder of images WITH the attribute.")
    s.add_argument('--neg_dir', default=None, help="Folder of images WITHOUT the attribute.")
    s.add_argument('--folder', default=None, help="Folder with pos/ and neg/ subfolders.")
    s.add_argument('--name', default=None, help="Attribute name for --pos_dir/--neg_dir/--folder.")
    s.add_argument('--out', required=True, help="Output .npz (names, directions, n_pos, n_neg).")

    s = sub.add_parser('edit', help="move images along an attribute direction", formatter_class=fmt)
    _add_common(s)
    s.add_argument('--directions', required=True, help="A .npz written by `directions`.")
    s.add_argument('--attribute', required=True, help="Attribute name (e.g. Smiling).")
    s.add_argument(
        '--strengths',
        type=float,
        nargs='+',
        default=[-1.0, -0.5, 0.0, 0.5, 1.0],
        help="Multiples of the direction added to each latent; 0 = the input.",
    )
    s.add_argument('--images', nargs='+', required=True, help="Image files or directories.")
    s.add_argument('--out', required=True, help="Output grid PNG: one row per input image.")
    s.add_argument('--out_dir', default=None, help="Also write every edited image here.")
    s.add_argument(
        '--with_input', action='store_true', help="Prepend the (resized) input image to each row."
    )
    _add_levels(s)

    s = sub.add_parser(
        'interpolate', help="images along the latent line between two images", formatter_class=fmt
    )
    _add_common(s)
    s.add_argument('--images', nargs=2, required=True, metavar=('A', 'B'), help="The two images.")
    s.add_argument('--n', type=int, default=8, help="Number of images, endpoints included.")
    s.add_argument('--out', required=True, help="Output PNG: one row.")
    s.add_argument('--out_dir', default=None, help="Also write each image as its own PNG here.")

    s = sub.add_parser(
        'animate',
        help="GIF / MP4 of an attribute sweep (--attribute) or of an interpolation (two images)",
        formatter_class=fmt,
    )
    _add_common(s)
    s.add_argument(
        '--images',
        nargs='+',
        required=True,
        help="One image (a sweep along --attribute) or two (an interpolation from the first to "
        "the second).",
    )
    s.add_argument('--directions', default=None, help="A .npz written by `directions` (sweeps).")
    s.add_argument('--attribute', default=None, help="Sweep along this attribute (e.g. Smiling).")
    s.add_argument(
        '--scale',
        type=float,
        default=1.0,
        help="Sweeps: strengths run from -scale to +scale (0 = the input).",
    )
    _add_levels(s)
    s.add_argument('--points', type=int, default=24, help="Frames from start to end.")
    s.add_argument('--fps', type=float, default=12.0, help="Frames per second.")
    s.add_argument(
        '--enlarge',
        type=int,
        default=4,
        help="Enlarge every frame by this integer factor (nearest-neighbour).",
    )
    s.add_argument(
        '--no_loop',
        dest='loop',
        action='store_false',
        help="Play start -> end once, without holding the ends and playing back.",
    )
    s.add_argument(
        '--out', required=True, help="Output .gif (Pillow) or .mp4 (ffmpeg from imageio-ffmpeg)."
    )
    return p


def _add_levels(s):
    s.add_argument(
        '--levels',
        type=int,
        nargs='+',
        default=None,
        metavar='L',
        help="Move only these latent levels (1 = finest .. L = coarsest); the others keep the "
        "input's latents exactly. Default: all levels.",
    )


def _y(flow, args, n):
    return None if args.y is None else np.full([n], args.y, np.int32)


def cmd_encode(args, out):
    from glow_tf.tools import manipulation as M
    from glow_tf.tools.images import list_image_files, load_images, quantise

    flow = flow_from_args(args)
    files = list_image_files(args.images)
    images = load_images(files, flow.image_shape)
    y = _y(flow, args, len(images))
    t0 = time.perf_counter()
    z = flow.encode(images, y)
    dt = time.perf_counter() - t0
    M.save_latents(args.out, flow, z, files, y)
    print(
        f"encoded {len(files)} image(s) in {dt:.2f}s -> {args.out} (levels "
        f"{M.shape_text(flow.latent_shapes)}, packed {'x'.join(map(str, flow.image_shape))})",
        file=out,
    )
    if args.check:
        rec = flow.decode(z, y)
        same = rec == quantise(images, flow.n_bits_x)
        print(
            f"check: decode(encode(x)) reproduces {int(same.all(axis=(1, 2, 3)).sum())}/"
            f"{len(images)} image(s) exactly (max pixel difference "
            f"{int(np.abs(rec.astype(int) - quantise(images, flow.n_bits_x)).max())})",
            file=out,
        )
    return 0


def cmd_decode(args, out):
    from glow_tf.tools import manipulation as M
    from glow_tf.tools.images import save_image_grid, save_images

    flow = flow_from_args(args)
    z, y_saved = M.load_latents(args.latents, flow)
    y = _y(flow, args, len(z))
    if y is None and y_saved is not None and flow.n_classes:
        y = y_saved
    images = flow.decode(z, y)
    save_image_grid(images, args.out)
    if args.out_dir:
        save_images(images, args.out_dir, prefix='decoded')
    print(f"decoded {len(images)} image(s) -> {args.out}", file=out)
    return 0


def cmd_directions(args, out):
    from glow_tf.errors import InputError
    from glow_tf.progress import progress_bar
    from glow_tf.tools import manipulation as M

    modes = sum(x is not None for x in (args.attr_file, args.folder, args.pos_dir or args.neg_dir))
    if modes != 1:
        raise InputError(
            "give exactly one label source: --attr_file (CelebA attributes), "
            "--folder DIR (DIR/pos, DIR/neg) or --pos_dir and --neg_dir"
        )
    if args.attr_file is not None:
        image_dir = args.image_dir
        if image_dir is None:
            base = os.path.dirname(os.path.abspath(args.attr_file))
            cands = [
                os.path.join(base, d)
                for d in ('img_align_celeba', 'img_align_celeba_89x109', 'img_align_celeba_png')
            ]
            image_dir = next((c for c in cands if os.path.isdir(c)), None)
            if image_dir is None:
                raise InputError(
                    f"no --image_dir given and no img_align_celeba*/ next to {args.attr_file}"
                )
        files, labels, names = M.celeba_labels(
            args.attr_file, image_dir, args.n_images, args.attributes
        )
        source = f"{os.path.abspath(args.attr_file)} + {os.path.abspath(image_dir)}"
    else:
        if args.folder is not None:
            pos, neg = os.path.join(args.folder, 'pos'), os.path.join(args.folder, 'neg')
            for d in (pos, neg):
                if not os.path.isdir(d):
                    raise InputError(f"{d}: missing; --folder needs pos/ and neg/ subfolders")
            name = args.name or os.path.basename(os.path.normpath(args.folder))
        else:
            if not (args.pos_dir and args.neg_dir):
                raise InputError("--pos_dir and --neg_dir go together")
            pos, neg = args.pos_dir, args.neg_dir
            name = args.name or 'attribute'
        for d in (pos, neg):
            if not os.path.isdir(d):
                raise InputError(f"{d}: not a directory")
        files, labels, names = M.folder_labels(pos, neg, name)
        if args.n_images:
            files, labels = files[: args.n_images], labels[: args.n_images]
        source = f"pos {os.path.abspath(pos)}, neg {os.path.abspath(neg)}"
    flow = flow_from_args(args)
    y = _y(flow, args, len(files))
    t0 = time.perf_counter()
    with progress_bar(total=len(files), desc='encoding', enabled=args.progress, unit='img') as bar:
        directions, n_pos, n_neg = M.compute_directions(
            flow, files, labels, names, y, progress=lambda done, total: bar.update(done - bar.n)
        )
    dt = time.perf_counter() - t0
    M.save_directions(args.out, flow, names, directions, n_pos, n_neg, source)
    print(
        f"{len(names)} direction(s) from {len(files)} image(s) in {dt:.1f}s "
        f"({1000 * dt / len(files):.1f} ms/image) -> {args.out}",
        file=out,
    )
    for name, p, q in zip(names, n_pos, n_neg):
        flag = '' if p and q else '  (no direction: needs positive and negative images)'
        print(f"  {name:<22s} +{int(p):<6d} -{int(q)}{flag}", file=out)
    return 0


def cmd_edit(args, out):
    from glow_tf.tools import manipulation as M
    from glow_tf.tools.images import (
        list_image_files,
        load_images,
        quantise,
        save_image_grid,
        save_png,
    )

    flow = flow_from_args(args)
    dirs = M.load_directions(args.directions, flow)
    direction, name = M.direction_for(dirs, args.attribute, where=args.directions)
    files = list_image_files(args.images)
    images = load_images(files, flow.image_shape)
    levels = _levels(flow, args)
    rows = M.edit(flow, images, direction, args.strengths, _y(flow, args, len(images)), levels)
    grid = rows
    if args.with_input:
        grid = np.concatenate([quantise(images, flow.n_bits_x)[:, None], rows], 1)
    save_image_grid(grid.reshape(-1, *grid.shape[2:]), args.out, n_cols=grid.shape[1])
    if args.out_dir:
        for i, row in enumerate(rows):
            for a, im in zip(args.strengths, row):
                save_png(os.path.join(args.out_dir, f'edit_{i:03d}_{name}_{a:+g}.png'), im)
    print(
        f"edited {len(images)} image(s) along {name!r} at strengths "
        f"{', '.join(f'{a:g}' for a in args.strengths)}"
        f"{'' if levels is None else ' on levels ' + ', '.join(map(str, levels))}"
        f" -> {args.out} (one row per image"
        f"{', input first' if args.with_input else ''})",
        file=out,
    )
    return 0


def cmd_interpolate(args, out):
    from glow_tf.tools import manipulation as M
    from glow_tf.tools.images import load_images, save_image_grid, save_images

    flow = flow_from_args(args)
    images = load_images(args.images, flow.image_shape)
    frames = M.interpolate(flow, images[0], images[1], args.n, args.y)
    save_image_grid(frames, args.out, n_cols=len(frames))
    if args.out_dir:
        save_images(frames, args.out_dir, prefix='interp')
    print(f"{len(frames)} images from {args.images[0]} to {args.images[1]} -> {args.out}", file=out)
    return 0


def _levels(flow, args):
    from glow_tf.tools.levels import check_levels

    if args.levels is None:
        return None
    return check_levels(args.levels, len(flow.latent_shapes), '--levels')


def cmd_animate(args, out):
    from glow_tf.errors import InputError
    from glow_tf.tools import animation as A
    from glow_tf.tools import manipulation as M
    from glow_tf.tools.images import load_images

    A.format_of(args.out)
    A.check_fps(args.fps)
    if args.points < 2:
        raise InputError(f"--points must be >= 2 (the two ends), got {args.points}")
    if not 0 < args.scale <= 10:
        raise InputError(f"--scale must be in (0, 10], got {args.scale:g}")
    if args.enlarge < 1:
        raise InputError(f"--enlarge must be an integer >= 1, got {args.enlarge}")
    sweep = args.attribute is not None
    if sweep and (len(args.images) != 1 or args.directions is None):
        raise InputError(
            "an attribute sweep (--attribute) takes one image (--images FACE) and --directions"
        )
    if not sweep and len(args.images) != 2:
        raise InputError(
            f"--images: give two images to interpolate between (got {len(args.images)}), or one "
            "image with --attribute and --directions for a sweep"
        )
    if not sweep and args.levels is not None:
        raise InputError("--levels applies to attribute sweeps (--attribute), not interpolation")
    flow = flow_from_args(args)
    images = load_images(args.images, flow.image_shape)
    t0 = time.perf_counter()
    if sweep:
        dirs = M.load_directions(args.directions, flow)
        direction, name = M.direction_for(dirs, args.attribute, where=args.directions)
        strengths = A.sweep_strengths(args.points, args.scale)
        y = _y(flow, args, 1)
        frames = M.edit(flow, images, direction, strengths, y, _levels(flow, args))[0]
        what = f"{name} from {-args.scale:g} to {args.scale:g}"
    else:
        frames = M.interpolate(flow, images[0], images[1], args.points, args.y)
        what = f"{args.images[0]} -> {args.images[1]}"
    dt = time.perf_counter() - t0
    if args.loop:
        frames = A.ping_pong(frames)
    size = A.save_animation(args.out, A.enlarge(frames, args.enlarge), args.fps)
    print(
        f"{args.points} frames ({what}) decoded in {dt:.1f}s; wrote {args.out}: {len(frames)} "
        f"frames at {args.fps:g} fps{', looped' if args.loop else ''}, "
        f"{frames.shape[2] * args.enlarge}x{frames.shape[1] * args.enlarge}, {size:,} bytes",
        file=out,
    )
    return 0


COMMANDS = {
    'encode': cmd_encode,
    'decode': cmd_decode,
    'directions': cmd_directions,
    'edit': cmd_edit,
    'interpolate': cmd_interpolate,
    'animate': cmd_animate,
}


def run(args, out=None):
    out = out or sys.stdout
    return COMMANDS[args.command](args, out)


def main(argv=None):
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    parser = build_parser()
    args = parser.parse_args(argv)
    return exit_on_input_error(lambda: run(args), f"{parser.prog} {args.command}")


if __name__ == '__main__':
    sys.exit(main())
