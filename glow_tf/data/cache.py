"""On-disk cache of decoded, resized images (folder and CelebA sources).

A cache entry is an ``.npz`` file under ``<cache_root>/images/`` whose name is a hash of the
absolute paths, sizes and modification times of the source files plus the image size, so editing,
adding or removing a file invalidates it. Entries are written atomically (temporary file + rename),
so several Horovod ranks on one machine can share the directory.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from glow_tf.cachedir import cache_root
from glow_tf.data.errors import DataError
from glow_tf.data.images import decode_images
from glow_tf.fileio import atomic_write_bytes

CACHE_VERSION = 1


def _key(paths: list[str], image_size: int) -> str:
    h = hashlib.sha1(f'v{CACHE_VERSION}:{image_size}'.encode())
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f'\0{os.path.abspath(p)}\0{st.st_size}\0{st.st_mtime_ns}'.encode())
        except OSError:
            h.update(f'\0{os.path.abspath(p)}\0missing'.encode())
    return h.hexdigest()


def cached_decode(
    paths: list[str],
    image_size: int,
    skip_bad: bool,
    cache_dir: str | os.PathLike | None | bool = None,
) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """Like :func:`glow_tf.data.images.decode_images`, reusing a cache entry when the files are
    unchanged.

    ``cache_dir``: None -> :func:`cache_root`; False -> no cache. Returns
    ``(images uint8 [n_ok, S, S, 3], ok bool [len(paths)], skipped [(path, reason)])``.
    """
    if cache_dir is False or not paths:
        return decode_images(paths, image_size, skip_bad)
    root = Path(cache_dir) if cache_dir not in (None, True) else cache_root()
    entry = root / 'images' / f'{_key(paths, image_size)}.npz'
    if entry.is_file():
        try:
            with np.load(entry, allow_pickle=False) as z:
                images, ok = z['images'], z['ok']
                skipped = [tuple(x) for x in json.loads(str(z['skipped']))]
            if ok.shape == (len(paths),) and images.shape == (
                int(ok.sum()),
                image_size,
                image_size,
                3,
            ):
                if skipped and not skip_bad:
                    raise DataError(f'{skipped[0][0]}: {skipped[0][1]}')
                return images, ok, skipped
        except DataError:
            raise
        except Exception:  # unreadable cache entry: rebuild it
            pass
    images, ok, skipped = decode_images(paths, image_size, skip_bad)
    try:
        atomic_write_bytes(
            entry,
            lambda f: np.savez(f, images=images, ok=ok, skipped=np.array(json.dumps(skipped))),
        )
    except OSError:
        pass  # a read-only cache location must not stop training
    return images, ok, skipped
