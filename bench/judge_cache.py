"""Where the sample-quality judges are kept: ``<glow_tf cache>/judges/<name>-<hash>.weights.h5``.

The glow_tf cache root is ``$GLOW_CACHE_DIR``, else ``$XDG_CACHE_HOME/glow_tf``, else
``~/.cache/glow_tf`` (`glow_tf.data.cache.cache_root`). The hash covers the judge's recipe (a
dict: architecture version, training data, epochs, seed...) and the TensorFlow version, so a
changed recipe or TensorFlow trains a new judge instead of reusing a stale one.
"""

import hashlib
import json
import sys
import time
from pathlib import Path

import keras
import tensorflow as tf

from glow_tf.data.cache import cache_root


def recipe_hash(recipe):
    """12 hex digits of sha256(recipe as sorted JSON + TensorFlow version)."""
    text = json.dumps(recipe, sort_keys=True) + '|tf ' + tf.__version__
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def judge_path(name, recipe, cache_dir=None):
    """The weights file of judge `name` trained by `recipe` (it may not exist yet)."""
    root = Path(cache_dir) if cache_dir else cache_root() / 'judges'
    return root / f'{name}-{recipe_hash(recipe)}.weights.h5'


def cached_judge(name, recipe, build, train, cache_dir=None):
    """The Keras judge `build()` with weights from the cache, or trained by `train(model)` and
    cached. Training is seeded with recipe['seed'] (`keras.utils.set_random_seed`); progress
    goes to stderr."""
    path = judge_path(name, recipe, cache_dir)
    model = build()
    if path.is_file():
        model.load_weights(str(path))
        return model
    print(
        f'training the {name} judge (recipe {recipe_hash(recipe)}), cached at {path}',
        file=sys.stderr,
        flush=True,
    )
    t0 = time.perf_counter()
    keras.utils.set_random_seed(int(recipe['seed']))
    model = build()
    train(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name.replace('.weights.h5', '.tmp.weights.h5'))
    model.save_weights(str(tmp))
    tmp.replace(path)
    print(f'{name} judge trained in {time.perf_counter() - t0:.0f}s', file=sys.stderr, flush=True)
    return model
