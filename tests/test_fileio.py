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


def test_atomic_path_renames_on_success_and_cleans_up_on_failure(tmp_path):
    """For writers that need a file name (TFRecordWriter): the file appears whole or not at all."""
    from glow_tf.fileio import atomic_path

    path = tmp_path / 'shard.tfrecords'
    with pytest.raises(RuntimeError, match='killed'):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b'half a shard')
            raise RuntimeError('killed mid-write')
    assert os.listdir(tmp_path) == []
    with atomic_path(path) as tmp:
        assert tmp.parent == path.parent and tmp != path
        tmp.write_bytes(b'whole shard')
        assert not path.exists()
    assert path.read_bytes() == b'whole shard' and os.listdir(tmp_path) == ['shard.tfrecords']
