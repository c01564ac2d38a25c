"""Where glow_tf caches what it can recompute (decoded images, judges, measured conv forms).

$GLOW_CACHE_DIR if set, else $XDG_CACHE_HOME/glow_tf, else ~/.cache/glow_tf
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$GLOW_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/glow_tf``, else ``~/.cache/glow_tf``."""
    env = os.environ.get('GLOW_CACHE_DIR')
    if env:
        return Path(env)
    xdg = os.environ.get('XDG_CACHE_HOME')
    return (Path(xdg) if xdg else Path.home() / '.cache') / 'glow_tf'
