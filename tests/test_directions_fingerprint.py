"""Attribute directions belong to the model that computed them: the directions file stores the
model's fingerprint, and manipulate.py and the editor refuse directions from another model."""

import warnings

import numpy as np
import pytest

from tests import tiny_model as fx


@pytest.fixture
def cli(monkeypatch):
    fx.patch_load_trained_model(monkeypatch)
    from glow_tf.cli.manipulate import main

    return main


def test_fingerprint_follows_the_weights_not_the_container(flow, tmp_path_factory, tmp_path):
    from glow_tf.tools.trained import ExportedModel

    raw = fx.tiny_flow(tmp_path_factory, use_ema=False)  # same architecture, other weights
    assert flow.fingerprint.startswith('sha256:') and flow.fingerprint != raw.fingerprint
    exported = fx.tiny_export(tmp_path_factory)  # export_saved_model(flow.model, ...)
    assert ExportedModel(str(exported)).fingerprint == flow.fingerprint
    v = flow.model.trainable_variables[0]
    old = v.numpy()
    try:
        v.assign(old + 1e-6)  # any weight change shows
        flow._fingerprint = None
        assert (
            flow.fingerprint != raw.fingerprint
            and flow.fingerprint != ExportedModel(str(exported)).fingerprint
        )
    finally:
        v.assign(old)
        flow._fingerprint = None


def test_manipulate_refuses_directions_of_another_model(
    cli, flow, tmp_path_factory, tmp_path, capsys
):
    from glow_tf.tools.manipulation import save_directions

    logdir = fx.tiny_logdir(tmp_path_factory)
    d = np.random.RandomState(0).normal(size=(1, 16, 16, 3)).astype(np.float32)
    save_directions(tmp_path / 'ema.npz', flow, ['Smiling'], d, [3], [3])
    assert str(np.load(tmp_path / 'ema.npz')['fingerprint']) == flow.fingerprint
    face = fx.celeba_files(1, start=500)
    args = [
        'edit',
        '--model',
        str(logdir),
        '--directions',
        str(tmp_path / 'ema.npz'),
        '--attribute',
        'Smiling',
        '--strengths',
        '0',
        '1',
        '--images',
        *face,
    ]
    assert cli(args + ['--weights', 'ema', '--out', str(tmp_path / 'ok.png')]) == 0
    with pytest.raises(SystemExit) as e:  # the raw weights are another model
        cli(args + ['--weights', 'raw', '--out', str(tmp_path / 'bad.png')])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert 'computed with another model' in err and flow.fingerprint in err and 'recompute' in err
    assert not (tmp_path / 'bad.png').exists()
    # the editor refuses directions of another model (here: of the raw weights)
    from glow_tf.editor.engine import build_editor
    from glow_tf.errors import InputError

    save_directions(
        tmp_path / 'raw.npz',
        fx.tiny_flow(tmp_path_factory, use_ema=False),
        ['Smiling'],
        d,
        [3],
        [3],
    )
    with pytest.raises(InputError, match='computed with another model'):
        build_editor(str(logdir), str(tmp_path / 'raw.npz'), gallery=str(tmp_path))
    assert build_editor(str(logdir), str(tmp_path / 'ema.npz'), gallery=str(tmp_path)).names == [
        'Smiling'
    ]


def test_old_directions_without_fingerprint_load_with_a_warning(flow, tmp_path):
    from glow_tf.tools.manipulation import FingerprintWarning, load_directions

    np.savez(
        tmp_path / 'old.npz',
        names=np.array(['Smiling']),
        directions=np.zeros((1, 16, 16, 3), np.float32),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        d = load_directions(tmp_path / 'old.npz', flow)
    assert d['names'] == ['Smiling']
    assert any(issubclass(w.category, FingerprintWarning) for w in caught)
