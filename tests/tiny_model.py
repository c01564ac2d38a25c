"""Shared by tests/test_sampling.py, test_manipulation.py and test_export.py (no tests here):
a tiny *trained* Glow saved as a training log directory in the trainer's format, and its
SavedModel export.

The log dir is built once per session: a Glow 16x16x3, 2 levels x 2 steps, width 16 (additive
coupling, invertible 1x1), ActNorm-initialised on real CelebA faces, then a few (eager) Adam
steps with a Polyak EMA (decay 0.5, so the EMA and raw weights differ). It is written exactly
as train.py writes it -- `config.json` (a resolved TrainConfig) and `checkpoints/ckpt-N` from
`glow_tf.runs.checkpoint_format.make_checkpoint(model, ema, optimizer, state)` through a
tf.train.CheckpointManager -- and read back by `load_model` / `load_trained_model`.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / 'shared' / 'data'
CELEBA = SHARED / 'celeba-subset'
CELEBA_IMAGES = CELEBA / 'img_align_celeba_89x109'
CELEBA_ATTR = CELEBA / 'list_attr_celeba.txt'
IMAGE_SIZE = 16
N_STEPS = 3

_CACHE = {}


def celeba_files(n, start=0):
    return [str(CELEBA_IMAGES / f'{i:06d}.jpg') for i in range(start + 1, start + n + 1)]


def build_tiny_logdir(root, n_steps=N_STEPS, seed=0):
    import keras
    import tensorflow as tf

    import glow_tf
    from glow_tf.data import load_image_file
    from glow_tf.runs import checkpoint_format as ckpt_lib
    from glow_tf.runs.config import TrainConfig
    from glow_tf.training.ema import EMA

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    cfg = TrainConfig(
        problem='celeba',
        data_dir=str(CELEBA),
        image_size=IMAGE_SIZE,
        n_levels=2,
        depth=2,
        width=16,
        flow_permutation=2,
        flow_coupling=0,
        n_batch_train=16,
        n_batch_test=8,
        n_batch_init=32,
        anchor_size=0,
        n_train=64,
        n_test=8,
        memory_mode='plain',
        lr=2e-3,
        epochs_warmup=0,
        seed=seed,
        logdir=str(root),
        beta2=0.5,
    )
    cfg, plan = cfg.resolve((IMAGE_SIZE, IMAGE_SIZE, 3), n_test_available=8, n_classes=0)
    cfg.save(str(root / ckpt_lib.CONFIG_NAME), plan)

    tf.random.set_seed(seed)
    x = np.stack([load_image_file(p, IMAGE_SIZE) for p in celeba_files(48, start=2000)])
    model = glow_tf.Glow(**cfg.to_model_kwargs())
    model.initialize(glow_tf.preprocess(x[:32], noise=True))
    ema = EMA(model.trainable_variables, decay=0.5)
    opt = keras.optimizers.Adam(learning_rate=2e-3)
    opt.build(model.trainable_variables)

    def step(batch):  # eager: tracing a gradient tf.function costs more than a few tiny steps
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model.objective(batch)[0])
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        ema.update()
        return loss

    losses = [
        float(step(tf.constant(x[(i * 16) % 48 : (i * 16) % 48 + 16]))) for i in range(n_steps)
    ]
    state = ckpt_lib.TrainState()
    state.set(step=n_steps)
    ckpt = ckpt_lib.make_checkpoint(model, ema, opt, state)
    tf.train.CheckpointManager(
        ckpt, str(root / ckpt_lib.CKPT_SUBDIR), max_to_keep=1, checkpoint_name='ckpt'
    ).save(checkpoint_number=n_steps)
    return root, losses


def tiny_logdir(tmp_path_factory):
    """Path of the session's tiny trained log dir (built on first use)."""
    import pytest

    if not CELEBA_ATTR.is_file():
        pytest.skip(f'CelebA subset not present at {CELEBA}')
    if 'logdir' not in _CACHE:
        root = tmp_path_factory.mktemp('tiny_glow') / 'logdir'
        _CACHE['logdir'], _CACHE['losses'] = build_tiny_logdir(root)
    return _CACHE['logdir']


def _real_load_trained_model():
    import glow_tf.tools.trained as flow

    if 'real_load_flow' not in _CACHE:
        _CACHE['real_load_flow'] = flow.load_trained_model
    return _CACHE['real_load_flow']


def cached_load_trained_model(path, use_ema=None, which='latest', batch_size=64, precision='fp32'):
    """`glow_tf.tools.trained.load_trained_model`, memoised per (path, use_ema, which, precision)
    for the session: every CLI call in a test would otherwise rebuild the model and retrace its
    tf.functions."""
    from glow_tf.nets.precision import resolve_precision

    key = ('flow', os.path.abspath(os.fspath(path)), use_ema, which, resolve_precision(precision))
    if key not in _CACHE:
        _CACHE[key] = _real_load_trained_model()(
            path, use_ema=use_ema, which=which, batch_size=batch_size, precision=precision
        )
    flow = _CACHE[key]
    flow.batch_size = int(batch_size)
    return flow


def patch_load_trained_model(monkeypatch):
    import glow_tf.tools.trained as flow

    _real_load_trained_model()
    monkeypatch.setattr(flow, 'load_trained_model', cached_load_trained_model)


def tiny_flow(tmp_path_factory, use_ema=None):
    return cached_load_trained_model(tiny_logdir(tmp_path_factory), use_ema=use_ema, batch_size=16)


def tiny_export(tmp_path_factory, use_ema=None):
    """The tiny flow's SavedModel (`glow_tf.tools.export.export_saved_model`), written once per
    session for each set of weights ('ema' / 'raw'); the tests only read it."""
    flow = tiny_flow(tmp_path_factory, use_ema=use_ema)
    key = ('export', flow.weights)
    if key not in _CACHE:
        from glow_tf.tools.export import export_saved_model

        out = tmp_path_factory.mktemp('tiny_export') / flow.weights
        export_saved_model(flow.model, out, n_bits_x=flow.n_bits_x)
        _CACHE[key] = out
    return _CACHE[key]


def read_png(path):
    from PIL import Image

    return np.asarray(Image.open(os.fspath(path)).convert('RGB'))


def run_on_export(script, export_dir, images, workdir):
    """Run `script` (Python source) in a fresh process, as a user without glow_tf would:
    argv = export dir, an .npy of `images`, the .npz it must write. Returns that .npz."""
    np.save(workdir / 'x.npy', images)
    argv = [str(export_dir), str(workdir / 'x.npy'), str(workdir / 'out.npz')]
    proc = subprocess.run(
        [sys.executable, '-c', script, *argv],
        cwd=str(workdir),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(workdir / 'out.npz')


def assert_usage_error(cli, argv, capsys, *needles):
    """`cli(argv)` exits with status 2 and its stderr contains every one of `needles`."""
    import pytest

    with pytest.raises(SystemExit) as e:
        cli(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    for n in needles:
        assert n in err, (n, err)
