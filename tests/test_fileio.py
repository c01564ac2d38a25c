"""glow_tf.fileio.atomic_write_bytes: the new file or the old one, never a partial one."""

import os

import pytest

from glow_tf.fileio import atomic_write_bytes


def test_write_replaces_whole_and_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / 'sub' / 'config.json'
    atomic_write_bytes(path, lambda f: f.write(b'first'))
    assert path.read_bytes() == b'first'
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())

    def half_then_fail(f):
        f.write(b'partial')
        raise OSError(28, 'No space left on device')

    with pytest.raises(OSError, match='No space'):
        atomic_write_bytes(str(path), half_then_fail)
    assert path.read_bytes() == b'first'
    assert os.listdir(path.parent) == ['config.json']  # no temporary left behind


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
