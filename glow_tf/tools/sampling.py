"""Sampling from a trained Glow, image grids, and a common "flow" interface for the tools.

Reproducible latents. Image i of a run with seed s draws its latents from counter-based
(stateless) random numbers keyed by (s, block, level), in fixed blocks of `LATENT_BLOCK` images,
so the images depend only on (seed, i, temperature) -- not on `--batch`, on how many images are
drawn, or on whether the checkpoint or an exported SavedModel decodes them:

    eps_l[i] = T * N(0, I)   drawn by tf.random.stateless_normal([BLOCK, *latent_shape_l],
                                                      seed=[s, (i // BLOCK) * n_levels + l])[i % BLOCK]

Several temperatures reuse the same base noise scaled by T, so a grid shows the same samples
at each temperature (one block of rows per temperature).

Flows. `load_flow(path)` returns a `ModelFlow` (a training log dir / checkpoint, rebuilt with
`glow_tf.runs.load.load_model`, EMA weights by default) or an `ExportedFlow` (a
SavedModel written by `glow_tf.tools.export`). Both offer the same batched, tf.function-compiled calls
on numpy arrays:

    flow.encode(images_uint8 [B,H,W,C], y=None) -> packed latents float32 [B,H,W,C]
    flow.decode(latents [B,H,W,C], y=None)      -> uint8 images [B,H,W,C]

"Packed latents": the per-level ε_1..ε_L flattened, concatenated and reshaped to the image shape
(`glow_tf.model.bijector.pack_latents`). Encoding uses the bin centre of each pixel
(x/n_bins - 1/2 + 1/(2 n_bins), no dequantisation noise), so decode(encode(x)) == x exactly
after quantisation.
"""

import json
import math
import os
import time

import numpy as np
import tensorflow as tf

from glow_tf.fileio import atomic_write_bytes

LATENT_BLOCK = 16
EXPORT_META = 'glow_export.json'


class InputError(ValueError):
    """A user-facing problem with an input (file, model, latents, attribute...); the message
    names what is wrong. The command-line tools print it and exit with status 2."""


# ---------------------------------------------------------------------------------------------
# image grids
# ---------------------------------------------------------------------------------------------
def tile_images(images, n_cols=None, pad=0, pad_value=255):
    """uint8 [N, H, W, C] -> one uint8 grid [rows*H, n_cols*W, C] (row-major; blanks are black).

    n_cols: default ceil(sqrt(N)). pad: pixels of `pad_value` between tiles.
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"expected images [N, H, W, C] with N > 0, got shape {images.shape}")
    n, h, w, c = images.shape
    n_cols = int(n_cols) if n_cols else int(math.ceil(math.sqrt(n)))
    n_cols = max(1, min(n_cols, n))
    rows = int(math.ceil(n / n_cols))
    grid = np.full(
        (rows * h + (rows - 1) * pad, n_cols * w + (n_cols - 1) * pad, c), pad_value, np.uint8
    )
    for i in range(rows * n_cols):
        r, col = divmod(i, n_cols)
        top, left = r * (h + pad), col * (w + pad)
        grid[top : top + h, left : left + w] = images[i] if i < n else 0
    return grid


def save_png(path, image):
    """Write one uint8 image [H, W, C] (C = 1 or 3) atomically; creates parent directories."""
    from PIL import Image

    image = np.asarray(image, np.uint8)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    path = os.fspath(path)
    atomic_write_bytes(path, lambda f: Image.fromarray(image).save(f, format='PNG'))
    return path


def save_image_grid(images, path, n_cols=None, pad=0):
    """Save uint8 images [N, H, W, C] as one PNG grid (n_cols default ceil(sqrt(N))). Returns the grid."""
    grid = tile_images(images, n_cols, pad)
    save_png(path, grid)
    return grid


def save_images(images, out_dir, prefix='image'):
    """Save each uint8 image [N, H, W, C] as `out_dir/{prefix}_{i:04d}.png`. Returns the paths."""
    os.makedirs(out_dir, exist_ok=True)
    return [
        save_png(os.path.join(out_dir, f'{prefix}_{i:04d}.png'), im) for i, im in enumerate(images)
    ]


# ---------------------------------------------------------------------------------------------
# reproducible latents
# ---------------------------------------------------------------------------------------------
def block_latents(latent_shapes, seed, start, stop, temperature=1.0):
    """Per-level latents of images [start, stop) for `seed` (see the module docstring).

    Works eagerly and inside tf.function (seed/start/stop may be tensors). Returns a list of
    float32 tensors [stop - start, *latent_shapes[l]].
    """
    n_levels = len(latent_shapes)
    seed = tf.cast(seed, tf.int64)
    start, stop = tf.cast(start, tf.int64), tf.cast(stop, tf.int64)
    first = start // LATENT_BLOCK
    last = tf.maximum(stop - 1, start) // LATENT_BLOCK
    blocks = tf.range(first, last + 1)
    offset = start - first * LATENT_BLOCK
    count = stop - start
    out = []
    for level, shape in enumerate(latent_shapes):
        shape = [int(d) for d in shape]

        def draw(b, level=level, shape=shape):
            key = tf.stack([seed, b * n_levels + level])
            return tf.random.stateless_normal([LATENT_BLOCK] + shape, seed=key)

        drawn = tf.map_fn(
            draw, blocks, fn_output_signature=tf.TensorSpec([LATENT_BLOCK] + shape, tf.float32)
        )
        drawn = tf.reshape(drawn, [-1] + shape)[offset : offset + count]
        out.append(drawn * tf.cast(temperature, tf.float32))
    return out


def pack(eps_list, image_shape):
    from glow_tf.model.bijector import pack_latents

    return pack_latents(eps_list, image_shape)


def unpack(latents, latent_shapes):
    from glow_tf.model.bijector import unpack_latents

    return unpack_latents(latents, latent_shapes)


def random_seed():
    """A fresh seed (printed by the tools so a run can be repeated)."""
    return int(np.random.default_rng().integers(0, 2**31 - 1))


# ---------------------------------------------------------------------------------------------
# flows: a trained model or an exported SavedModel behind one batched numpy interface
# ---------------------------------------------------------------------------------------------
class Flow:
    """Common interface; see the module docstring. Subclasses set image_shape, latent_shapes,
    n_bits_x, n_classes, description, and implement `_encode_batch` / `_decode_batch`."""

    batch_size = 64

    def _check_y(self, y, n):
        if not self.n_classes:
            if y is not None:
                raise InputError(
                    "this model is unconditional (trained without --ycond); "
                    "do not pass class labels (--y)"
                )
            return None
        if y is None:
            raise InputError(
                f"this model is class-conditional ({self.n_classes} classes): "
                "pass class labels with --y"
            )
        y = np.asarray(y, np.int32).reshape(-1)
        if y.size == 1 and n != 1:
            y = np.full([n], int(y[0]), np.int32)
        if y.shape != (n,):
            raise InputError(f"got {y.size} class labels for {n} images")
        bad = y[(y < 0) | (y >= self.n_classes)]
        if bad.size:
            raise InputError(
                f"class label {int(bad[0])} out of range: the model has "
                f"{self.n_classes} classes (0..{self.n_classes - 1})"
            )
        return y

    def _batched(self, fn, arrays, y):
        n = len(arrays)
        out = []
        for s in range(0, n, self.batch_size):
            e = min(n, s + self.batch_size)
            out.append(fn(arrays[s:e], None if y is None else y[s:e]))
        return np.concatenate(out, 0) if out else np.zeros((0,) + tuple(self.image_shape))

    def encode(self, images, y=None):
        """uint8 [B, H, W, C] -> packed latents float32 [B, H, W, C] (exact, no noise)."""
        images = np.asarray(images)
        if images.ndim != 4 or tuple(images.shape[1:]) != tuple(self.image_shape):
            raise InputError(
                f"images of shape {tuple(images.shape)} do not fit the model, which "
                f"takes [batch, {', '.join(map(str, self.image_shape))}]"
            )
        if images.dtype != np.uint8:
            raise InputError(f"images must be uint8, got {images.dtype}")
        y = self._check_y(y, len(images))
        return self._batched(self._encode_batch, images, y)

    def decode(self, latents, y=None):
        """packed latents [B, H, W, C] -> uint8 images [B, H, W, C]."""
        latents = np.asarray(latents, np.float32)
        if latents.ndim != 4 or tuple(latents.shape[1:]) != tuple(self.image_shape):
            raise InputError(
                f"latents of shape {tuple(latents.shape)} do not fit the model, whose "
                f"packed latents are [batch, {', '.join(map(str, self.image_shape))}]"
            )
        y = self._check_y(y, len(latents))
        return self._batched(self._decode_batch, latents, y)

    def latents(self, n, temperature=1.0, seed=0, start=0):
        """Packed latents of images [start, start + n) for `seed` (numpy float32)."""
        eps = block_latents(self.latent_shapes, seed, start, start + n, temperature)
        return pack(eps, self.image_shape).numpy()

    def sample(self, n, temperature=1.0, seed=0, y=None, timings=None):
        """n samples (uint8 [n, H, W, C]) at `temperature`, decoded in batches of batch_size.

        `timings`: optional list; (n_images, seconds) of every decoded batch is appended.
        """
        y = self._check_y(y, n)
        out = []
        for s in range(0, n, self.batch_size):
            e = min(n, s + self.batch_size)
            z = self.latents(e - s, temperature, seed, start=s)
            t0 = time.perf_counter()
            out.append(self._decode_batch(z, None if y is None else y[s:e]))
            if timings is not None:
                timings.append((e - s, time.perf_counter() - t0))
        return np.concatenate(out, 0)

    def info(self):
        return {
            'image_shape': list(self.image_shape),
            'latent_shapes': [list(s) for s in self.latent_shapes],
            'n_bits_x': int(self.n_bits_x),
            'n_classes': int(self.n_classes),
        }

    @property
    def fingerprint(self):
        """`model_fingerprint` of the weights this flow decodes with (computed once)."""
        if getattr(self, '_fingerprint', None) is None:
            self._fingerprint = model_fingerprint(
                self._variables(), self.image_shape, self.latent_shapes, self.n_bits_x
            )
        return self._fingerprint


class ModelFlow(Flow):
    """A `glow_tf.Glow` with tf.function-compiled, fixed-signature encode / decode."""

    def __init__(self, model, n_bits_x=8, batch_size=64, description='model'):
        from glow_tf.model.preprocessing import postprocess, preprocess

        self.model = model
        self.image_shape = tuple(model.image_shape)
        self.latent_shapes = tuple(tuple(int(d) for d in s) for s in model.latent_shapes)
        self.n_bits_x, self.n_classes = int(n_bits_x), int(model.n_classes)
        self.batch_size = int(batch_size)
        self.description = description
        n_bins = 2**self.n_bits_x
        img_spec = tf.TensorSpec([None, *self.image_shape], tf.uint8)
        lat_spec = tf.TensorSpec([None, *self.image_shape], tf.float32)
        y_spec = [tf.TensorSpec([None], tf.int32)] if self.n_classes else []
        shapes, image_shape, n_bits = self.latent_shapes, self.image_shape, self.n_bits_x

        def encode(images, *y):
            x = preprocess(images, n_bits, noise=False) + 0.5 / n_bins
            return pack(model.encode(x, *y), image_shape)

        def decode(latents, *y):
            x = model.decode(unpack(latents, shapes), *y)
            return postprocess(x, n_bits)

        self.encode_fn = tf.function(encode, input_signature=[img_spec] + y_spec, autograph=False)
        self.decode_fn = tf.function(decode, input_signature=[lat_spec] + y_spec, autograph=False)

    def _variables(self):
        return self.model.variables

    def _encode_batch(self, images, y):
        args = [tf.constant(images)] + ([tf.constant(y)] if y is not None else [])
        return self.encode_fn(*args).numpy()

    def _decode_batch(self, latents, y):
        args = [tf.constant(latents, tf.float32)] + ([tf.constant(y)] if y is not None else [])
        return self.decode_fn(*args).numpy()


class ExportedFlow(Flow):
    """A SavedModel written by `glow_tf.tools.export.export_saved_model` (no glow_tf code needed)."""

    def __init__(self, path, batch_size=64):
        self.path = os.path.abspath(path)
        try:
            self.module = tf.saved_model.load(self.path)
        except Exception as e:  # noqa: BLE001 - TF raises many types for a bad SavedModel
            raise InputError(
                f"{path}: cannot load the SavedModel ({type(e).__name__}: {str(e)[:300]})"
            ) from None
        if not hasattr(self.module, 'config_json'):
            raise InputError(
                f"{path}: a SavedModel, but not one written by glow_tf's export (no config_json)"
            )
        meta = json.loads(self.module.config_json.numpy().decode())
        self.meta = meta
        self.image_shape = tuple(meta['image_shape'])
        self.latent_shapes = tuple(tuple(s) for s in meta['latent_shapes'])
        self.n_bits_x, self.n_classes = int(meta['n_bits_x']), int(meta['n_classes'])
        self.batch_size = int(batch_size)
        self.description = f'SavedModel {self.path}'

    def _variables(self):
        return self.module.model_variables

    def _encode_batch(self, images, y):
        kw = {'images': tf.constant(images)}
        if y is not None:
            kw['y'] = tf.constant(y)
        return self.module.encode(**kw)['latents'].numpy()

    def _decode_batch(self, latents, y):
        kw = {'latents': tf.constant(latents, tf.float32)}
        if y is not None:
            kw['y'] = tf.constant(y)
        return self.module.decode(**kw)['images'].numpy()


def model_fingerprint(variables, image_shape, latent_shapes, n_bits_x):
    """'sha256:<16 hex>' of a model's shapes and weight values (every variable, in the model's
    own order: the same for a checkpoint and for its SavedModel export). Attribute directions
    store it so that they are only applied to the model that computed them."""
    import hashlib

    h = hashlib.sha256(
        json.dumps(
            [list(map(int, image_shape)), [list(map(int, s)) for s in latent_shapes], int(n_bits_x)]
        ).encode()
    )
    for v in variables:
        value = np.asarray(v.numpy() if hasattr(v, 'numpy') else v)
        h.update(f'{value.dtype.str}{value.shape}'.encode())
        h.update(np.ascontiguousarray(value).tobytes())
    return 'sha256:' + h.hexdigest()[:16]


def is_saved_model(path):
    return os.path.isdir(path) and os.path.exists(os.path.join(path, 'saved_model.pb'))


def load_flow(path, use_ema=None, which='latest', batch_size=64):
    """A `Flow` from a training log dir / checkpoint dir / ckpt prefix, or an exported SavedModel.

    Checkpoints are rebuilt by `glow_tf.runs.load.load_model`: use_ema=None (default)
    takes the weights that scored better at the run's last test pass, True the Polyak averages,
    False the raw weights; n_bits_x comes from the run's config.json. Raises InputError.
    """
    if not path:
        raise InputError("no model given (pass --model LOGDIR_OR_EXPORT_DIR)")
    path = os.path.expanduser(os.fspath(path))
    if is_saved_model(path):
        return ExportedFlow(path, batch_size)
    if not os.path.exists(path) and not tf.io.gfile.exists(path + '.index'):
        raise InputError(
            f"{path}: no such file or directory (expected a training log dir, a "
            "checkpoint or an exported SavedModel directory)"
        )
    from glow_tf.runs.checkpoint import find_checkpoint, selected_weights
    from glow_tf.runs.load import load_model

    try:
        if use_ema is None:
            prefix = find_checkpoint(path, which)
            use_ema = prefix is None or selected_weights(prefix) == 'ema'
        model, config = load_model(path, use_ema=use_ema, which=which)
    except (FileNotFoundError, ValueError) as e:
        raise InputError(str(e)) from None
    flow = ModelFlow(
        model,
        n_bits_x=int(config.n_bits_x),
        batch_size=batch_size,
        description=f"{path} ({'EMA (Polyak-averaged)' if use_ema else 'raw'} weights)",
    )
    flow.weights = 'ema' if use_ema else 'raw'
    return flow


# ---------------------------------------------------------------------------------------------
# helpers for the trainer and the tools
# ---------------------------------------------------------------------------------------------
def as_flow(model_or_flow, n_bits_x=8, batch_size=64):
    if isinstance(model_or_flow, Flow):
        return model_or_flow
    return ModelFlow(model_or_flow, n_bits_x=n_bits_x, batch_size=batch_size)


def sample_images(
    model, n, temperatures=(1.0,), seed=0, y=None, n_bits_x=8, batch_size=64, timings=None
):
    """uint8 [len(temperatures), n, H, W, C]: the same n base latents at each temperature."""
    flow = as_flow(model, n_bits_x, batch_size)
    return np.stack([flow.sample(n, float(t), seed, y, timings) for t in temperatures])


def sample_grid(
    model,
    temperatures=(0.0, 0.5, 0.7, 0.8, 0.9, 1.0),
    n_per_row=8,
    seed=0,
    y=None,
    n_bits_x=8,
    batch_size=64,
):
    """One uint8 grid image: a row of `n_per_row` samples per temperature (same base latents
    in every row). `model`: a glow_tf.Glow or a Flow. Class-conditional: y (labels [n_per_row]
    or one int) is required."""
    images = sample_images(model, n_per_row, temperatures, seed, y, n_bits_x, batch_size)
    return tile_images(images.reshape(-1, *images.shape[2:]), n_cols=n_per_row)
