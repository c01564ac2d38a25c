#!/usr/bin/env python
"""The pictures of the shipped face model in README.md and docs/editor.md, made with the editor's
own engine (the same calls the page makes):

    python docs/images/make_editor_figures.py  # models/celeba64_5bit -> docs/images/

  editor_edits.png    rows: held-out faces; columns: input, then one attribute each at a strength
  editor_mix.png      one row per pair: face A, blends at t = 0.25, 0.5, 0.75, face B
  editor_samples.png  random faces at temperatures 0.5, 0.7 and 0.9 (one row each)

Images are enlarged 3x with nearest-neighbour and separated by 2-pixel white gaps.
"""

import argparse
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

EDITS = (
    ('Smiling', 1.0),
    ('Smiling', -1.0),
    ('Young', -1.0),
    ('Male', 1.0),
    ('Eyeglasses', 1.5),
    ('Blond_Hair', 1.0),
    ('Mustache', 1.0),
    ('Bald', 1.0),
)
FACES = ('008201', '008305', '008420', '008733')


def enlarge(grid, k=3):
    return np.repeat(np.repeat(grid, k, 0), k, 1)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--model', default=os.path.join(REPO, 'models', 'celeba64_5bit'))
    p.add_argument('--directions', default=None)
    p.add_argument('--out_dir', default=os.path.join(REPO, 'docs', 'images'))
    args = p.parse_args(argv)
    from glow_tf.editor.engine import build_editor
    from glow_tf.tools.images import save_png, tile_images

    editor = build_editor(args.model, args.directions, n_gallery=None)
    ids = [f'gallery-{f}' for f in FACES if f'gallery-{f}' in editor.gallery] or list(
        editor.gallery
    )[:4]

    rows = []
    for face_id in ids:
        face = editor.face(face_id)
        rows.append([face.input] + [editor.edit(face_id, {a: s})[0] for a, s in EDITS])
    grid = tile_images(np.array([im for r in rows for im in r]), n_cols=len(rows[0]), pad=2)
    save_png(os.path.join(args.out_dir, 'editor_edits.png'), enlarge(grid))

    pairs = list(zip(ids[0::2], ids[1::2]))
    mix = []
    for a, b in pairs:
        mix.append(
            [editor.face(a).input]
            + [editor.mix(a, b, t)[0] for t in (0.25, 0.5, 0.75)]
            + [editor.face(b).input]
        )
    grid = tile_images(np.array([im for r in mix for im in r]), n_cols=5, pad=2)
    save_png(os.path.join(args.out_dir, 'editor_mix.png'), enlarge(grid))

    samples = [editor.sample(t, seed).reconstruction for t in (0.5, 0.7, 0.9) for seed in range(8)]
    grid = tile_images(np.array(samples), n_cols=8, pad=2)
    save_png(os.path.join(args.out_dir, 'editor_samples.png'), enlarge(grid))
    print(
        f"faces {', '.join(ids)}; edits {', '.join(f'{a} {s:+g}' for a, s in EDITS)} -> "
        f"{args.out_dir}/editor_edits.png, editor_mix.png, editor_samples.png"
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
