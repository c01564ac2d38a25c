"""The problem registry (glow_tf.data.problems): one record per dataset holds what loaders.py's
tables, detection, dispatch and augmentation used to spread out; a new dataset registered in one
place is found, loaded, augmented and trained on by name; no machine's layout is hard-coded."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import glow_tf.data.loaders as loaders
from glow_tf.data import (
    PROBLEMS,
    DataError,
    Problem,
    get_problem,
    load_source,
    register_problem,
    resolve_data_dir,
    unregister_problem,
)
from glow_tf.data.augment import CIFAR_FULL, NONE, SHIFTS
from glow_tf.data.problems import augmentation_for
from glow_tf.data.readers import load_arrays

PACKAGE = Path(__file__).resolve().parents[1] / 'glow_tf'

# loaders.py's tables before the registry (kept here to show the records hold the same values)
OLD_PROBLEMS = (
    'mnist',
    'cifar10',
    'celeba',
    'celeba-tfr',
    'imagenet-oord',
    'imagenet',
    'lsun_realnvp',
    'lsun',
    'folder',
    'tfr',
)
OLD_DEFAULT_IMAGE_SIZE = {
    'mnist': 32,
    'cifar10': 32,
    'celeba': 64,
    'celeba-tfr': 256,
    'imagenet-oord': 64,
    'imagenet': 256,
    'lsun_realnvp': 64,
    'lsun': 256,
    'folder': 64,
}
OLD_DEFAULT_N_CLASSES = {'mnist': 10, 'cifar10': 10, 'imagenet': 1000}
OLD_SUBDIRS = {
    'mnist': ('mnist',),
    'cifar10': ('cifar10', 'cifar10-subset', 'cifar-10-batches-py', 'cifar-10'),
    'celeba': ('celeba', 'celeba-subset', 'celeba-tfr', 'celeba-reshard-tfr'),
    'celeba-tfr': ('celeba-tfr', 'celeba-reshard-tfr', 'celeba'),
    'imagenet-oord': ('imagenet-oord-tfr', 'imagenet-oord'),
    'imagenet': ('imagenet-tfr', 'imagenet'),
    'lsun_realnvp': ('lsun_realnvp-tfr', 'lsun_realnvp'),
    'lsun': ('lsun-tfr', 'lsun'),
    'tfr': ('tfr',),
    'folder': ('folder',),
}


def test_records_hold_the_old_tables():
    assert tuple(PROBLEMS) == OLD_PROBLEMS
    for name, p in PROBLEMS.items():
        assert p.name == name
        assert p.image_size == OLD_DEFAULT_IMAGE_SIZE.get(name)
        assert p.n_classes == OLD_DEFAULT_N_CLASSES.get(name, 0)
        assert p.folders == OLD_SUBDIRS[name]
        assert p.categories == name.startswith('lsun')
        assert p.random_crop == (name == 'lsun_realnvp')
    assert PROBLEMS['mnist'].augmentation == (NONE, SHIFTS, SHIFTS)
    assert PROBLEMS['cifar10'].augmentation == (NONE, SHIFTS, CIFAR_FULL)
    assert all(p.augmentation == (NONE,) * 3 for p in PROBLEMS.values() if p.n_classes != 10)
    assert PROBLEMS['mnist'].sizes == (60000, 10000) and PROBLEMS['cifar10'].sizes == (50000, 10000)
    assert PROBLEMS['mnist'].class_names == tuple('0123456789')
    assert augmentation_for('unregistered-toy', 2) is NONE  # a source given to the trainer directly


def test_registry_is_read_only_and_names_are_unique():
    with pytest.raises(TypeError):
        PROBLEMS['x'] = PROBLEMS['mnist']
    with pytest.raises(ValueError, match="'mnist' is already registered"):
        register_problem(PROBLEMS['mnist'])
    with pytest.raises(DataError, match="problem='svhn' is unknown; valid names: mnist, cifar10"):
        get_problem('svhn')
    with pytest.raises(DataError, match='only applies to lsun and lsun_realnvp, not mnist'):
        load_source('mnist', category='bedroom')


def _read_tiny(root, split):
    """The tiny format: one .npz per split, x uint8 [n, 8, 8, 3], y int32 [n]."""
    with np.load(root / f'tiny_{split}.npz') as f:
        return f['x'], f['y']


def _write_tiny(d, n_train=6, n_test=4):
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    out = {}
    for split, n in (('train', n_train), ('test', n_test)):
        x = rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
        y = (np.arange(n) % 3).astype(np.int32)
        np.savez(d / f'tiny_{split}.npz', x=x, y=y)
        out[split] = x, y
    return out


@pytest.fixture
def tiny_problem():
    """A new dataset, registered in one place (as docs/architecture.md says)."""
    problem = register_problem(
        Problem(
            'tiny',
            8,
            lambda d: (d / 'tiny_train.npz').is_file(),
            lambda problem, root, req: load_arrays(problem, root, req, _read_tiny),
            folders=('tiny-data',),
            n_classes=3,
            class_names=('a', 'b', 'c'),
            augmentation=(NONE, SHIFTS, CIFAR_FULL),
        )
    )
    yield problem
    unregister_problem('tiny')
    assert 'tiny' not in PROBLEMS


def test_a_registered_problem_is_found_and_loaded_by_name(
    tiny_problem, tmp_path, monkeypatch, data_cache
):
    monkeypatch.setattr(loaders, 'shared_data_root', lambda: tmp_path / 'no-shared')
    with pytest.raises(DataError, match="no data found for problem='tiny'.*named tiny-data"):
        resolve_data_dir('tiny')
    arrays = _write_tiny(tmp_path / 'root' / 'tiny-data')
    monkeypatch.setenv('GLOW_DATA_DIR', str(tmp_path / 'root'))
    assert resolve_data_dir('tiny') == str(tmp_path / 'root' / 'tiny-data')

    src = load_source('tiny')
    assert (src.problem, src.image_shape, src.n_train, src.n_test) == ('tiny', (8, 8, 3), 6, 4)
    assert (src.n_classes, src.class_names) == (3, ['a', 'b', 'c'])
    x, y, _ = src.numpy('test')
    np.testing.assert_array_equal(x, arrays['test'][0])
    np.testing.assert_array_equal(y, arrays['test'][1])
    small = load_source('tiny', image_size=4, n_train=2)
    assert small.image_shape == (4, 4, 3) and small.n_train == 2
    assert augmentation_for('tiny', 2) == CIFAR_FULL and augmentation_for('tiny', 0) is NONE


def test_a_registered_problem_reaches_the_trainer_and_train_help(
    tiny_problem, tmp_path, monkeypatch, data_cache
):
    from glow_tf.cli.train import build_parser
    from glow_tf.runs.config import TrainConfig
    from glow_tf.training.distributed import Distributed
    from glow_tf.training.trainer import Trainer

    _write_tiny(tmp_path / 'tiny')
    help_text = ' '.join(build_parser().format_help().split())
    assert re.search(r'--problem PROBLEM .* One of: mnist, .*, tfr, tiny\.', help_text)
    cfg = TrainConfig(
        problem='tiny',
        data_dir=str(tmp_path / 'tiny'),
        dal=2,
        ycond=True,
        n_levels=1,
        depth=1,
        width=4,
        n_batch_train=2,
        n_batch_init=2,
        n_batch_test=2,
        anchor_size=0,
        logdir=str(tmp_path / 'run'),
        progress=False,
    )
    tr = Trainer(cfg, dist=Distributed(use_horovod=False)).setup()
    assert tr.source.problem == 'tiny' and tr.source.n_train == 6
    assert (tr.cfg.image_size, tr.cfg.n_classes, tr.cfg.n_test) == (8, 3, 4)
    assert tr.augmentation == CIFAR_FULL


def test_no_machine_layout_in_the_package():
    """Folder names of datasets live in the registry; paths come from the documented
    ``../shared/data`` convention (loaders.shared_data_root), never a machine's own."""
    for path in PACKAGE.rglob('*.py'):
        text = path.read_text()
        rel = path.relative_to(PACKAGE).as_posix()
        assert not re.search(r"['\"](/work|/home|/mnt)/", text), rel  # absolute paths
        if rel != 'data/problems.py':
            assert not re.search(r"['\"/](celeba|cifar10)-subset", text), rel
        if rel != 'data/loaders.py':
            assert "'shared'" not in text, rel


def test_the_documented_example_registers_a_loadable_problem(tmp_path, monkeypatch, data_cache):
    """docs/data.md's "Adding a dataset" example, run as written."""
    text = (PACKAGE.parent / 'docs' / 'data.md').read_text()
    section = text[text.index('### Adding a dataset') :]
    code = re.search(r'```python\n(.*?)```', section, re.S).group(1)
    exec(compile(code, 'docs/data.md', 'exec'), {})
    try:
        d = tmp_path / 'root' / 'my-npz'
        d.mkdir(parents=True)
        x = np.arange(4 * 32 * 32 * 3, dtype=np.int64).reshape(4, 32, 32, 3).astype(np.uint8)
        for split in ('train', 'test'):
            np.savez(d / f'{split}.npz', x=x, y=np.arange(4, dtype=np.int32))
        monkeypatch.setattr(loaders, 'shared_data_root', lambda: tmp_path / 'no-shared')
        monkeypatch.setenv('GLOW_DATA_DIR', str(tmp_path / 'root'))
        src = load_source('my-npz', image_size=16)
        assert (src.image_shape, src.n_train, src.n_classes) == ((16, 16, 3), 4, 10)
        assert augmentation_for('my-npz', 1) == SHIFTS
    finally:
        unregister_problem('my-npz')
