"""Score image sets with a trained Glow: bits/dim per image and per level, and the comparisons of
`glow_tf.tools.ood_stats` against the first (in-distribution) set.

A set is named by a spec: `problem:split` (mnist, cifar10, celeba; split train or test), a `.npz`
of uint8 images ([N, H, W, 3] or [N, H, W]; the key `images`, `x` or the first array), or a
folder of images (sorted by path). Images are prepared as training data are: square-cropped and
resized to the model's size (`glow_tf.data.images.crop_and_resize`), grey replicated to RGB, and
reduced to the model's n_bits_x by the model's `preprocess`.

Scores are deterministic: every pixel is evaluated at the centre of its quantisation bin
(dequantisation draw u = 1/2, as `log_likelihood` of exported models), no noise:

    bits/dim(x) = -(log p(x_c) - D·log n_bins) / (D·log 2),   x_c = x/n_bins - 1/2 + 1/(2 n_bins)
"""

import os

import numpy as np
import tensorflow as tf

from glow_tf.data.errors import DataError
from glow_tf.errors import InputError
from glow_tf.progress import progress_bar
from glow_tf.tools.trained import BIN_CENTRE

PROBLEMS = ('mnist', 'cifar10', 'celeba')


def _fit_size(images, size, where):
    from PIL import Image

    from glow_tf.data.images import crop_and_resize

    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or images.dtype != np.uint8:
        raise InputError(
            f"{where}: expected uint8 images [N, H, W, 3] or [N, H, W], got "
            f"{images.dtype} {images.shape}"
        )
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    if images.shape[1:3] == (size, size):
        return images
    return np.stack([crop_and_resize(Image.fromarray(im), size) for im in images])


def load_image_set(spec, image_size, skip_bad=False, limit=None):
    """(images uint8 [N, S, S, 3], names [N]) of a set spec (module docstring); InputError names
    the spec or file. `limit`: an evenly spread subset of at most that many images."""
    from glow_tf.data.folder import images_under
    from glow_tf.data.images import decode_images
    from glow_tf.data.loaders import load_source

    problem, _, split = spec.partition(':')
    try:
        if problem in PROBLEMS and not os.path.exists(spec):
            if split not in ('train', 'test'):
                raise InputError(f"{spec}: expected {problem}:train or {problem}:test")
            # mnist / cifar10 load at 32x32 and are resized like any other set
            source = load_source(problem, image_size=image_size if problem == 'celeba' else None)
            images = _fit_size(source.numpy(split)[0], image_size, spec)
            names = [f'{problem}:{split}:{i}' for i in range(len(images))]
        elif spec.endswith('.npz'):
            if not os.path.isfile(spec):
                raise InputError(f"{spec}: no such .npz file")
            with np.load(spec, allow_pickle=False) as f:
                key = next(
                    (k for k in ('images', 'x') if k in f.files), f.files[0] if f.files else None
                )
                if key is None:
                    raise InputError(f"{spec}: the .npz holds no arrays")
                images = f[key]
            images = _fit_size(images, image_size, spec)
            names = [f'{os.path.basename(spec)}:{i}' for i in range(len(images))]
        elif os.path.isdir(spec):
            from pathlib import Path

            paths = sorted(images_under(Path(spec)))
            if not paths:
                raise InputError(f"{spec}: no image files in this folder")
            images, ok, skipped = decode_images(paths, image_size, skip_bad=skip_bad)
            for path, reason in skipped:
                print(f"skipped {path}: {reason}", file=__import__('sys').stderr)
            names = [p for p, good in zip(paths, ok) if good]
        else:
            raise InputError(
                f"{spec}: not a folder, an .npz or one of "
                f"{', '.join(p + ':test' for p in PROBLEMS)}"
            )
    except DataError as e:
        hint = '' if skip_bad or not os.path.isdir(spec) else ' (--skip_bad skips bad files)'
        raise InputError(f"{spec}: {e}{hint}") from None
    except (OSError, ValueError) as e:
        if isinstance(e, InputError):
            raise
        raise InputError(f"{spec}: cannot read ({type(e).__name__}: {e})") from None
    if not len(images):
        raise InputError(f"{spec}: no images")
    if limit and len(images) > limit:
        keep = np.floor(np.arange(limit) * (len(images) / limit)).astype(np.int64)
        images, names = images[keep], [names[i] for i in keep]
    return images, names


class Scorer:
    """Bin-centre bits/dim of uint8 images with a `glow_tf.tools.trained.TrainedModel`.

    A `InMemoryModel` gives the total and the per-level parts (`Glow.bits_per_dim_per_level`); an
    exported SavedModel gives the total only (its `log_likelihood` signature), per-level None.

    Args:
        flow: a loaded `TrainedModel` (`glow_tf.tools.trained.load_trained_model`).
        batch_size: images per compiled call.
    """

    def __init__(self, flow, batch_size=64):
        self.flow, self.batch_size = flow, int(batch_size)
        self.image_size = int(flow.image_shape[0])
        model = getattr(flow, 'model', None)
        if model is not None:
            spec = tf.TensorSpec([None, *flow.image_shape], tf.uint8)
            n_bits = flow.n_bits_x
            self._fn = tf.function(
                lambda x: model.bits_per_dim_per_level(x, n_bits_x=n_bits, noise=BIN_CENTRE),
                input_signature=[spec],
                autograph=False,
            )
        else:
            self._fn = None
        if flow.n_classes:
            raise InputError("scoring needs an unconditional model (this one is class-conditional)")

    def score(self, images, desc='scoring', progress=True):
        """images uint8 [N, S, S, 3] -> (bits/dim [N], per-level bits/dim [N, L] or None)."""
        totals, parts = [], []
        starts = range(0, len(images), self.batch_size)
        for start in progress_bar(starts, desc=desc, enabled=progress and len(starts) > 1):
            batch = tf.constant(images[start : start + self.batch_size])
            if self._fn is not None:
                p = self._fn(batch).numpy().astype(np.float64)
                parts.append(p)
                totals.append(p.sum(1))
            else:
                totals.append(self.flow.module.log_likelihood(images=batch)['bits_per_dim'].numpy())
        return np.concatenate(totals), (np.concatenate(parts) if parts else None)
