"""Files written whole or not at all: the package's one atomic-write helper.

A reader (or a resumed run after a kill at any moment) sees either the previous file or the new
one, never a truncated one: the bytes go to a temporary file in the same directory, are flushed
to disk, and the file is renamed into place.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path):
    """A temporary file name next to ``path``, for writers that need a name (TFRecordWriter).

    When the block ends without an error the file is flushed to disk, made readable like a
    normal file, and renamed to ``path``; on an error it is removed and ``path`` is untouched.

    Args:
        path: destination (str or Path); its directory is created if missing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + '.', suffix='.tmp')
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, 'rb') as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_bytes(path, write) -> None:
    """Call ``write(fileobj)`` on a temporary binary file next to ``path``, then rename it there
    (`atomic_path`).

    Args:
        path: destination (str or Path); its directory is created if missing.
        write: callable taking the open binary file object.
    """
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as f:
            write(f)
