"""Checksum-verified downloads (no network: file:// URLs and injected fetchers) and data-dir
resolution."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import glow_tf.data.loaders as loaders
from glow_tf.data import DataError, download, resolve_data_dir

REPO = Path(__file__).resolve().parents[1]


def _payload(tmp_path, name='train-images-idx3-ubyte.gz', blob=b'fixture bytes'):
    d = tmp_path / 'mirror'
    d.mkdir(exist_ok=True)
    (d / name).write_bytes(blob)
    return d, {name: hashlib.md5(blob).hexdigest()}


def test_download_verifies_and_keeps_good_file(tmp_path):
    mirror, sums = _payload(tmp_path)
    dest = download(
        'mnist', tmp_path / 'dest', base_url=mirror.as_uri(), checksums=sums, quiet=True
    )
    assert (dest / 'train-images-idx3-ubyte.gz').read_bytes() == b'fixture bytes'
    calls = []
    download('mnist', dest, fetch=lambda url, p: calls.append(url), checksums=sums, quiet=True)
    assert calls == []  # already present with the right md5: not fetched again


def test_download_refuses_wrong_checksum(tmp_path):
    mirror, sums = _payload(tmp_path, blob=b'tampered')
    with pytest.raises(
        DataError,
        match=r'train-images-idx3-ubyte\.gz has md5 [0-9a-f]{32}, expected '
        r'f68b3c2dcbeaaa9fbdd348bbdeb94873; refused and deleted',
    ):
        download('mnist', tmp_path / 'dest', base_url=mirror.as_uri(), quiet=True)
    assert list((tmp_path / 'dest').iterdir()) == []  # neither the file nor a .part remains


def test_existing_file_with_wrong_checksum_is_refused(tmp_path):
    dest = tmp_path / 'dest'
    dest.mkdir()
    (dest / 'cifar-10-python.tar.gz').write_bytes(b'old partial download')
    with pytest.raises(
        DataError,
        match=r'cifar-10-python\.tar\.gz: md5 [0-9a-f]+ differs from the expected '
        r'c58f30108f718f92721af3b95e74349a; refusing',
    ):
        download('cifar10', dest, fetch=lambda url, p: pytest.fail('must not fetch'), quiet=True)


def test_falls_back_to_next_mirror(tmp_path, monkeypatch):
    _, sums = _payload(tmp_path)
    tried = []

    def fetch(url, path):
        tried.append(url)
        if 'yann.lecun.com' in url:
            raise OSError('HTTP 403')
        path.write_bytes(b'fixture bytes')

    download('mnist', tmp_path / 'd', fetch=fetch, checksums=sums, quiet=True)
    assert len(tried) == 2 and tried[1].startswith('https://ossci-datasets')
    with pytest.raises(DataError, match=r'could not download .*HTTP 403'):
        download(
            'mnist',
            tmp_path / 'e',
            fetch=lambda u, p: (_ for _ in ()).throw(OSError('HTTP 403')),
            checksums=sums,
            quiet=True,
        )
    with pytest.raises(
        DataError, match="problem='celeba': downloads are available for mnist, cifar10 only"
    ):
        download('celeba', tmp_path / 'f')


def test_cli_download_from_file_url(tmp_path, shared_data):
    """The script end to end: real MNIST files through a file:// mirror pass the official md5s."""
    r = subprocess.run(
        [
            sys.executable,
            str(REPO / 'data' / 'download.py'),
            'mnist',
            '--dest',
            str(tmp_path / 'm'),
            '--url',
            (shared_data / 'mnist').as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / 'm').iterdir()) == sorted(
        [
            't10k-images-idx3-ubyte.gz',
            't10k-labels-idx1-ubyte.gz',
            'train-images-idx3-ubyte.gz',
            'train-labels-idx1-ubyte.gz',
        ]
    )


def test_cli_download_rejects_tampered_mirror(tmp_path, capsys):
    from glow_tf.data.download import main

    mirror, _ = _payload(tmp_path, name='cifar-10-python.tar.gz', blob=b'not cifar')
    assert main(['cifar10', '--dest', str(tmp_path / 'c'), '--url', mirror.as_uri()]) == 1
    assert 'cifar-10-python.tar.gz has md5' in capsys.readouterr().err
    assert not (tmp_path / 'c' / 'cifar-10-python.tar.gz').exists()


@pytest.fixture
def no_shared(tmp_path, monkeypatch, data_cache):
    monkeypatch.setattr(loaders, 'shared_data_root', lambda: tmp_path / 'no-shared')
    return data_cache


def test_resolve_order(tmp_path, fixtures, monkeypatch, no_shared):
    fixtures.make_mnist_dir(tmp_path / 'root' / 'mnist', n_train=2, n_test=2)
    assert resolve_data_dir('mnist', tmp_path / 'root') == str(
        tmp_path / 'root'
    )  # data_dir wins, as given
    monkeypatch.setenv('GLOW_DATA_DIR', str(tmp_path / 'root'))
    assert resolve_data_dir('mnist', None) == str(tmp_path / 'root' / 'mnist')
    with pytest.raises(
        DataError, match=r"no data found for problem='imagenet'.*imagenet-tfr or imagenet"
    ):
        resolve_data_dir('imagenet', None)
    with pytest.raises(DataError, match="problem='folder'.*pass data_dir"):
        resolve_data_dir('folder', None)


def test_resolve_downloads_into_cache(tmp_path, fixtures, monkeypatch, no_shared):
    calls = []

    def fake_download(problem, dest):
        calls.append((problem, Path(dest)))
        fixtures.make_mnist_dir(Path(dest), n_train=2, n_test=2)
        for n in ('train-images-idx3-ubyte.gz',):
            assert (Path(dest) / n).exists()

    monkeypatch.setattr(loaders, 'download', fake_download)
    got = resolve_data_dir('mnist', None)
    assert calls == [('mnist', no_shared / 'mnist')] and got == str(no_shared / 'mnist')
    resolve_data_dir('mnist', None)
    assert len(calls) == 1  # complete cache: no second download
    shutil.rmtree(no_shared / 'mnist')
    monkeypatch.setattr(
        loaders, 'download', lambda p, d: (_ for _ in ()).throw(DataError('md5 mismatch'))
    )
    with pytest.raises(DataError, match='md5 mismatch'):
        resolve_data_dir('mnist', None)
