"""Files written whole or not at all: the package's one atomic-write helper.

A reader (or a resumed run after a kill at any moment) sees either the previous file or the new
one, never a truncated one: the bytes go to a temporary file in the same directory, are flushed
to disk, and the file is renamed into place.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path, write) -> None:
    """Call ``write(fileobj)`` on a temporary binary file next to ``path``, then rename it there.

    Args:
        path: destination (str or Path); its directory is created if missing.
        write: callable taking the open binary file object.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + '.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(
            tmp, 0o666 & ~umask
        )  # mkstemp creates 0600; make entries readable like normal files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
