#!/usr/bin/env python
"""Package a trained face model for the editor (what `python demo.py` loads by default).

    python scripts/package_editor_model.py --logdir runs/celeba64 \
        --directions runs/celeba64_directions.npz --out models/celeba64 \
        --command_file runs/train_celeba64.sh --train_log runs/celeba64.log

Writes OUT/ (everything the editor and the CLI tools need, nothing else):

    config.json        the run's resolved TrainConfig
    checkpoints/       one checkpoint holding only the model's variables, set to the weights that
                       scored better on the held-out faces at the run's last test pass (raw or
                       Polyak-averaged, from the run's weights.json)
    weights.json       tells `load_model` to read those weights from the model/ group
    directions.npz     the 40 attribute directions (`manipulate.py directions`); their model
                       fingerprint must equal the packaged weights' (checked here)
    faces/             a few held-out CelebA faces (the gallery on machines without the data)
    model.json         manifest: which weights, test bits/dim, steps, wall time, exact command

and prints the total size (the repository keeps it under 25 MB).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def du(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def judged_temperature(path):
    """{'sample_temperature': the temperature with the lowest Frechet distance, 'sample_quality':
    the table} from a `bench/sample_quality.py faces` JSON record."""
    with open(path) as f:
        record = json.load(f)
    rows = [r for r in record.get('rows', []) if r.get('temperature') is not None]
    if record.get('judge') != 'faces' or not rows:
        sys.exit(f"--sample_quality {path}: expected a bench/sample_quality.py faces record")
    best = min(rows, key=lambda r: r['frechet'])
    return {
        'sample_temperature': best['temperature'],
        'sample_quality': {
            'judge': 'bench/sample_quality.py faces (Frechet distance to the held-out faces in '
            'the face judge\'s features; not Inception FID)',
            'judge_hash': record.get('judge_info', {}).get('hash'),
            'n': record.get('n'),
            'frechet': {r['what']: round(r['frechet'], 3) for r in record['rows']},
        },
    }


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument('--logdir', required=True, help="The training log dir.")
    p.add_argument('--directions', required=True, help="Directions .npz computed from --logdir.")
    p.add_argument('--out', required=True, help="Output directory (replaced).")
    p.add_argument('--n_faces', type=int, default=8, help="Held-out faces to bundle.")
    p.add_argument(
        '--command_file', default=None, help="Shell script holding the training command."
    )
    p.add_argument(
        '--train_log',
        nargs='*',
        default=None,
        help="The training console log(s), in order, with 'start <time>' / 'end <time>' lines.",
    )
    p.add_argument('--max_mb', type=float, default=25.0, help="Refuse to write more than this.")
    p.add_argument(
        '--sample_quality',
        default=None,
        help="bench/sample_quality.py faces JSON of this run: its Frechet table goes in the "
        "manifest, and the best-scoring temperature becomes the Random tab's default "
        "(model.json sample_temperature).",
    )
    args = p.parse_args(argv)

    import tensorflow as tf

    from glow_tf.editor.engine import MODEL_MANIFEST, celeba_test_files
    from glow_tf.runs import checkpoint_format as ckpt_lib
    from glow_tf.runs.config import TrainConfig
    from glow_tf.runs.load import load_model
    from glow_tf.tools.manipulation import load_directions
    from glow_tf.tools.trained import load_trained_model

    logdir = os.path.abspath(args.logdir)
    prefix = ckpt_lib.find_checkpoint(logdir)
    if prefix is None:
        sys.exit(f"{logdir}: no checkpoint")
    choices = ckpt_lib.read_weights_choices(os.path.join(logdir, ckpt_lib.WEIGHTS_NAME))
    latest = choices.get('latest', {})
    state = ckpt_lib.read_state(prefix)
    if latest.get('step') != state.get('step'):
        sys.exit(
            f"{logdir}: weights.json scored step {latest.get('step')} but the latest checkpoint "
            f"is step {state.get('step')}; run a test pass (train.py ... --inference) first"
        )
    weights = latest['weights']
    model, config = load_model(logdir)  # the better weights (weights.json)
    flow = load_trained_model(logdir)
    load_directions(args.directions, flow)  # check only: raises if made by another model

    out = os.path.abspath(args.out)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(os.path.join(out, 'faces'))
    shutil.copy(os.path.join(logdir, ckpt_lib.CONFIG_NAME), os.path.join(out, ckpt_lib.CONFIG_NAME))
    ckpt = ckpt_lib.make_checkpoint(model)  # model/ group only
    tf.train.CheckpointManager(
        ckpt, os.path.join(out, ckpt_lib.CKPT_SUBDIR), max_to_keep=1, checkpoint_name='ckpt'
    ).save(checkpoint_number=int(state['step']))
    ckpt_lib.write_weights_choice(
        out,
        'latest',
        dict(
            latest,
            weights='raw',
            packaged_weights=weights,
            note=f"packaged: the model/ group holds the {weights} weights of the run",
        ),
    )
    shutil.copy(args.directions, os.path.join(out, 'directions.npz'))

    data_dir = config.data_dir or '../shared/data/celeba-subset'
    faces = celeba_test_files(data_dir, args.n_faces)
    for f in faces:
        shutil.copy(f, os.path.join(out, 'faces', os.path.basename(f)))

    packaged = load_trained_model(out)
    if packaged.fingerprint != flow.fingerprint:
        sys.exit(f"packaged weights fingerprint {packaged.fingerprint} != {flow.fingerprint}")
    load_directions(os.path.join(out, 'directions.npz'), packaged)

    bits = {w: latest.get(f'bits_x_{w}') for w in ('raw', 'ema')}
    start = end = None
    for log in args.train_log or []:  # first start, last end (a run resumed in parts)
        for line in open(log):
            if line.startswith('start ') and start is None:
                start = line.split()[1]
            elif line.startswith('end '):
                end = line.split()[1]
    cfg = TrainConfig.load(os.path.join(out, ckpt_lib.CONFIG_NAME))
    commit = subprocess.run(
        ['git', 'rev-parse', 'HEAD'],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    ).stdout.strip()
    about = {
        'trained_on': (
            'CelebA subset (../shared/data/celeba-subset): first 8,100 images (train split)'
        ),
        'test_set': f'the {cfg.n_test} held-out faces (last 10% by file name)',
        'test_bits_per_dim': round(min(b for b in bits.values() if b is not None), 4),
        'test_bits_per_dim_raw': bits['raw'],
        'test_bits_per_dim_averaged': bits['ema'],
        'weights': 'Polyak-averaged' if weights == 'ema' else 'raw',
        'steps': int(state['step']),
        'images_seen': int(state.get('n_processed', 0)),
        'epochs': round(int(state.get('n_processed', 0)) / cfg.n_train, 2),
        'train_time_s': round(float(state.get('train_time', 0.0)), 1),
        'wall_start': start,
        'wall_end': end,
        'command': open(args.command_file).read() if args.command_file else None,
        'architecture': {
            k: getattr(cfg, k)
            for k in (
                'image_size',
                'n_bits_x',
                'n_levels',
                'depth',
                'width',
                'flow_coupling',
                'learntop',
                'edge_bias',
            )
            if hasattr(cfg, k)
        },
        'code_commit': commit,
        'fingerprint': packaged.fingerprint,
    }
    manifest = {
        'format': 'glow_tf.editor_model/1',
        'weights': weights,
        'directions': 'directions.npz',
        'faces': 'faces',
        'about': about,
    }
    if args.sample_quality:
        manifest.update(judged_temperature(args.sample_quality))
    with open(os.path.join(out, MODEL_MANIFEST), 'w') as f:
        json.dump(manifest, f, indent=2)
        f.write('\n')
    size = du(out)
    print(json.dumps({'out': out, 'bytes': size, 'mb': round(size / 2**20, 2), **about}, indent=2))
    if size > args.max_mb * 2**20:
        sys.exit(f"{out}: {size / 2**20:.1f} MB is over --max_mb {args.max_mb}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
