"""Edit quality of a face model's attribute directions, scored by the face judge on held-out faces
(docs/sample_quality.md#edits).

    python bench/edit_quality.py --model models/celeba64 --out bench/results/edit_quality/
    python bench/edit_quality.py --model runs/face64_5bit --directions runs/face64_dirs.npz

For each attribute A (default: the editor's sliders), the held-out faces the labels say lack A are
edited with strength +s (decode(z + s d_A)) and those that have A with -s. The face judge
(bench/face_judge.py, a 40-attribute CNN trained on the training faces) then scores, against the
unedited reconstruction (strength 0, the model's quantised input):

- flip:  the share of edited faces whose judge logit for A changed sign the intended way
         (added: now > 0; removed: now < 0). Higher is a stronger edit.
- gain:  the mean change of A's logit in the intended direction. Higher is stronger.
- drift: the mean |change| of the other 39 attributes' logits. Lower keeps the face's other
         attributes (its identity, as far as the judge sees it).
- frechet: the Frechet distance of all edited faces to the held-out faces in the judge's
         features (realism of the edits; real faces are 0, their 16x16 blur about 9.8).

Prints a table, writes <out>/edits_<model name>.json and a PNG of the first faces' edits.
Exit status 2 on a bad flag (the message names it).
"""

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from bench.sample_quality import cpu_model, load_model_flow  # noqa: E402
from glow_tf.errors import InputError  # noqa: E402

ATTRIBUTES = 'Smiling,Young,Male,Eyeglasses,Blond_Hair,Mustache,Bald'  # the editor's sliders


def judge_logits(images, judge):
    """float [n, 40]: the face judge's attribute logits of uint8 faces [n, 64, 64, 3]."""
    import numpy as np

    return np.asarray(
        judge.predict(np.asarray(images, np.float32) / 255.0, verbose=0, batch_size=128)
    )


def edit_scores(before, after, index, sign):
    """The flip / gain / drift of one attribute's edits from judge logits [n, 40] before and
    after; `sign` +1 adds attribute `index`, -1 removes it."""
    import numpy as np

    delta = after - before
    others = np.ones(before.shape[1], bool)
    others[index] = False
    return {
        'n': int(len(before)),
        'flip': float(np.mean(sign * after[:, index] > 0)),
        'already': float(np.mean(sign * before[:, index] > 0)),
        'gain': float(np.mean(sign * delta[:, index])),
        'drift': float(np.mean(np.abs(delta[:, others]))),
    }


def run(args):
    import numpy as np

    from bench.face_judge import face_features, face_judge, load_faces
    from bench.frechet import features_frechet
    from glow_tf.data import CELEBA_ATTRIBUTE_NAMES
    from glow_tf.tools import manipulation as M
    from glow_tf.tools.images import save_image_grid

    flow = load_model_flow(args.model, args.batch)
    if tuple(flow.image_shape) != (64, 64, 3):
        raise InputError(f'--model {args.model}: the face judge needs a 64x64x3 face model')
    directions = args.directions or os.path.join(args.model, 'directions.npz')
    if not os.path.isfile(directions):
        raise InputError(
            f'--directions {directions}: no such file (give the .npz that '
            '`manipulate.py directions` wrote for this model)'
        )
    dirs = M.load_directions(directions, flow)
    attributes = [a for a in args.attributes.split(',') if a]
    for a in attributes:
        if a not in dirs['names'] or a not in CELEBA_ATTRIBUTE_NAMES:
            raise InputError(f'--attributes: {a!r} is not a CelebA attribute with a direction')
    if not 0 < args.strength <= 5:
        raise InputError(f'--strength: expected a number in (0, 5], got {args.strength}')
    _, _, x_held, a_held = load_faces()
    x_held, a_held = x_held[: args.n], np.asarray(a_held[: args.n])
    judge = face_judge()
    held_features = face_features(x_held, judge)
    rows, edited_all, figure = [], [], []
    for a in attributes:
        j = CELEBA_ATTRIBUTE_NAMES.index(a)
        d, _ = M.direction_for(dirs, a)
        for sign in (1, -1):
            pick = np.flatnonzero(sign * a_held[:, j] < 0)  # faces to give / take the attribute
            if not len(pick):
                continue
            out = M.edit(flow, x_held[pick], d, [0.0, sign * args.strength])
            base, moved = out[:, 0], out[:, 1]
            row = edit_scores(judge_logits(base, judge), judge_logits(moved, judge), j, sign)
            rows.append({'attribute': a, 'edit': 'add' if sign > 0 else 'remove', **row})
            edited_all.append(moved)
            if sign > 0:
                figure.append(np.concatenate([base[:6], moved[:6]]))
    edited = np.concatenate(edited_all)
    frechet = features_frechet(face_features(edited, judge), held_features)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f'edits_{Path(os.path.normpath(args.model)).name}'
    grid = save_image_grid(np.concatenate(figure), out_dir / f'{stem}.png', n_cols=12)
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ('flip', 'gain', 'drift')}
    record = {
        'model': os.path.abspath(args.model),
        'directions': os.path.abspath(directions),
        'strength': args.strength,
        'n_faces': int(len(x_held)),
        'rows': rows,
        'mean': mean,
        'frechet_edited': frechet,
        'n_edited': int(len(edited)),
        'figure': str(out_dir / f'{stem}.png'),
        'figure_layout': 'per attribute (added), one row: 6 inputs then the same 6 edited',
        'grid_shape': list(grid.shape),
        'cpu': cpu_model(),
    }
    path = out_dir / f'{stem}.json'
    path.write_text(json.dumps(record, indent=1) + '\n')
    print(
        f'edits at strength {args.strength:g} of the first {len(x_held)} held-out faces, '
        'scored by the face judge'
    )
    print('attribute          edit      n   flip (was)    gain   drift')
    for r in rows:
        print(
            f"{r['attribute']:<18} {r['edit']:<7} {r['n']:>4}  {r['flip']:.3f} ({r['already']:.3f})"
            f"  {r['gain']:>6.2f}  {r['drift']:.3f}"
        )
    print(
        f"mean               flip {mean['flip']:.3f}  gain {mean['gain']:.2f}  drift "
        f"{mean['drift']:.3f}; Frechet of the {len(edited)} edited faces {frechet:.3f}"
    )
    print(f'wrote {path}')
    return record


def build_parser():
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument('--model', required=True, help='Packaged model dir, log dir or checkpoint.')
    p.add_argument(
        '--directions', default=None, help='Directions .npz (default: MODEL/directions.npz).'
    )
    p.add_argument('--attributes', default=ATTRIBUTES, help='Comma-separated attributes.')
    p.add_argument('--strength', type=float, default=1.0, help='Edit strength s.')
    p.add_argument('--n', type=int, default=300, help='Held-out faces (the first n).')
    p.add_argument('--batch', type=int, default=64, help='Images per model call.')
    p.add_argument('--out', default='bench/results/edit_quality', help='Output directory.')
    return p


def main(argv=None):
    from glow_tf.cli import exit_on_input_error

    args = build_parser().parse_args(argv)
    exit_on_input_error(lambda: run(args), 'edit_quality.py')
    return 0


if __name__ == '__main__':
    sys.exit(main())
