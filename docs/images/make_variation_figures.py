#!/usr/bin/env python
"""The level-wise pictures of the shipped face model in docs/manipulation.md and docs/editor.md,
made with the editor's own engine (the calls /api/variations, /api/edit and /api/animate make):

    python docs/images/make_variation_figures.py  # models/celeba64_5bit -> docs/images/

  variations.png        the first face, then 6 variations keeping levels 2-4, 3-4 and 4
                        (one row each; T = 0.5, seed 0)
  level_edits.png       per face: the input, Smiling +1.5 on all levels, on levels 3-4, on 1-2
  sweep_smiling.gif     Smiling -1.5 .. +1.5 and back (24 points, looped), 128x128
  animation_strips.png  every 3rd point of that sweep (top) and of an interpolation (bottom)

Images are enlarged with nearest-neighbour (level_edits.png 3x, the others 2x) and separated
by 2-pixel gaps.
"""

import argparse
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

FACES = ('008201', '008305')
KEEPS = ((2, 3, 4), (3, 4), (4,))
LEVEL_EDITS = (None, (3, 4), (1, 2))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--model', default=os.path.join(REPO, 'models', 'celeba64_5bit'))
    p.add_argument('--out_dir', default=os.path.join(REPO, 'docs', 'images'))
    p.add_argument('--temperature', type=float, default=0.5)
    args = p.parse_args(argv)
    from glow_tf.editor.engine import build_editor
    from glow_tf.tools import animation as A
    from glow_tf.tools.images import save_png, tile_images

    editor = build_editor(args.model, n_gallery=None)
    ids = [f'gallery-{f}' for f in FACES if f'gallery-{f}' in editor.gallery] or list(
        editor.gallery
    )[:2]
    out = lambda name: os.path.join(args.out_dir, name)  # noqa: E731

    rows = []
    face = editor.face(ids[0])
    for keep in KEEPS:
        rows.append([face.input, *editor.variations(ids[0], keep, args.temperature, 6, 0)])
    grid = tile_images(np.array([im for r in rows for im in r]), n_cols=7, pad=2)
    save_png(out('variations.png'), A.enlarge(grid[None], 2)[0])

    edits = []
    for face_id in ids:
        edits.append(
            [editor.face(face_id).input]
            + [editor.edit(face_id, {'Smiling': 1.5}, levels)[0] for levels in LEVEL_EDITS]
        )
    grid = tile_images(np.array([im for r in edits for im in r]), n_cols=4, pad=2)
    save_png(out('level_edits.png'), A.enlarge(grid[None], 3)[0])

    sweep, strengths = editor.strength_range(ids[0], 'Smiling', 24, 1.5)
    size = A.save_animation(out('sweep_smiling.gif'), A.enlarge(A.ping_pong(sweep), 2), fps=12)
    mix, _ = editor.mix_range(ids[0], ids[1], 24)
    strips = np.concatenate([sweep[::3], mix[::3]])
    grid = tile_images(strips, n_cols=8, pad=2)
    save_png(out('animation_strips.png'), A.enlarge(grid[None], 2)[0])
    print(
        f"faces {', '.join(ids)}; T = {args.temperature:g}; sweep_smiling.gif {size:,} bytes "
        f"(strengths {strengths[0]:g} .. {strengths[-1]:g}) -> {args.out_dir}"
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
