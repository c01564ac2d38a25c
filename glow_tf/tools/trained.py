"""The tools' view of a trained Glow: one batched numpy interface over two backends.

`load_trained_model(path)` returns an `InMemoryModel` (a training log dir / checkpoint, rebuilt
with `glow_tf.runs.load.load_run`, the run's better weights by default) or an `ExportedModel` (a
SavedModel written by `glow_tf.tools.export`), both `TrainedModel`s. Both offer the same batched,
tf.function-compiled calls on numpy arrays:

    flow.encode(images_uint8 [B,H,W,C], y=None) -> packed latents float32 [B,H,W,C]
    flow.decode(latents [B,H,W,C], y=None)      -> uint8 images [B,H,W,C]
    flow.sample(n, temperature, seed, y=None)   -> uint8 [n,H,W,C]   (`glow_tf.model.latents`)

"Packed latents": the per-level ε_1..ε_L flattened, concatenated and reshaped to the image shape
(`glow_tf.model.latents.pack_latents`). Encoding uses the bin centre of each pixel
(`preprocess` with the dequantisation draw fixed at u = 1/2: x/n_bins - 1/2 + 1/(2 n_bins), no
noise), so
decode(encode(x)) == x exactly after quantisation.

`model_fingerprint` hashes a model's shapes and weights: attribute directions store it so that
they are only applied to the model that computed them.
"""

import json
import os
import time

import numpy as np
import tensorflow as tf

from glow_tf.errors import InputError
from glow_tf.model.latents import block_latents, pack_latents, unpack_latents
from glow_tf.model.preprocessing import postprocess, preprocess
from glow_tf.nets.precision import resolve_precision
from glow_tf.variables import reading_values_now

# The dequantisation draw u that puts every pixel at the centre of its bin (see `preprocess`).
BIN_CENTRE = 0.5
# Models up to this many bytes of weights compile their encode / decode with the weights as
# constants (`InMemoryModel(frozen_weights=True)`); a graph holds at most 2 GB.
FROZEN_WEIGHTS_MAX_BYTES = 256 * 2**20
WEIGHTS_DESCRIPTIONS = {'ema': 'Polyak-averaged', 'raw': 'raw'}  # how messages name the weights


def encode_bin_centres(model, images, n_bits_x, *y):
    """uint8 images [B, H, W, C] -> packed latents [B, H, W, C] (bin-centre encoding: no noise,
    so decode_to_uint8(encode_bin_centres(x)) == x). The tools' and the SavedModel's encode."""
    x = preprocess(images, n_bits_x, noise=BIN_CENTRE)
    return pack_latents(model.encode(x, *y), model.image_shape)


def decode_to_uint8(model, latents, n_bits_x, *y):
    """Packed latents [B, H, W, C] -> uint8 images [B, H, W, C]. The tools' and the SavedModel's
    decode."""
    return postprocess(model.decode(unpack_latents(latents, model.latent_shapes), *y), n_bits_x)


class TrainedModel:
    """Common interface; see the module docstring. Subclasses set image_shape, latent_shapes,
    n_bits_x, n_classes, description, and implement `_encode_batch` / `_decode_batch`,
    `_variables`. `batch_size`: images per compiled call (every call is split into batches)."""

    batch_size = 64
    frozen_weights = False  # weights compiled in as constants (InMemoryModel)

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
        return pack_latents(eps, self.image_shape).numpy()

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


class InMemoryModel(TrainedModel):
    """A `glow_tf.Glow` with tf.function-compiled, fixed-signature encode / decode.

    With `frozen_weights` the weights are read once, here, and compiled into encode / decode as
    constants (`glow_tf.variables.reading_values_now`): every value computed from the weights
    alone (ActNorm folded into the kernels, the 1x1 convolutions' inverses and log-determinants,
    the edge-bias maps) is then computed once instead of at every call, which is most of a
    one-image call's work (the editor's: docs/performance.md). Later changes to the model's
    weights are not seen; models over FROZEN_WEIGHTS_MAX_BYTES keep reading their variables
    (`self.frozen_weights` says which).

    Args:
        model: a built `glow_tf.Glow` (its weights are used as they are).
        n_bits_x: bits per colour channel the model was trained on.
        batch_size: images per compiled call.
        description: how the tools name this model in messages.
        frozen_weights: compile the weights in as constants (for a model that is not trained
            further while this object is used).
    """

    def __init__(self, model, n_bits_x=8, batch_size=64, description='model', frozen_weights=False):
        self.model = model
        self.image_shape = tuple(model.image_shape)
        self.latent_shapes = tuple(tuple(int(d) for d in s) for s in model.latent_shapes)
        self.n_bits_x, self.n_classes = int(n_bits_x), int(model.n_classes)
        self.batch_size = int(batch_size)
        self.description = description
        img_spec = tf.TensorSpec([None, *self.image_shape], tf.uint8)
        lat_spec = tf.TensorSpec([None, *self.image_shape], tf.float32)
        y_spec = [tf.TensorSpec([None], tf.int32)] if self.n_classes else []
        n_bits = self.n_bits_x

        def encode(images, *y):
            return encode_bin_centres(model, images, n_bits, *y)

        def decode(latents, *y):
            return decode_to_uint8(model, latents, n_bits, *y)

        weight_bytes = sum(
            int(np.prod(v.shape)) * tf.as_dtype(v.dtype).size for v in model.variables
        )
        self.frozen_weights = bool(frozen_weights) and weight_bytes <= FROZEN_WEIGHTS_MAX_BYTES
        if self.frozen_weights:
            encode, decode = reading_values_now(model.variables, [encode, decode])
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


class ExportedModel(TrainedModel):
    """A SavedModel written by `glow_tf.tools.export.export_saved_model` (runs without glow_tf).

    Args:
        path: the SavedModel directory; InputError if it is not one glow_tf exported.
        batch_size: images per call of its signatures.
    """

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
    """Whether `path` is a SavedModel directory."""
    return os.path.isdir(path) and os.path.exists(os.path.join(path, 'saved_model.pb'))


def load_trained_model(
    path, use_ema=None, which='latest', batch_size=64, precision='fp32', frozen_weights=True
):
    """A `TrainedModel` from a training log dir / checkpoint dir / ckpt prefix, or an exported
    SavedModel.

    Checkpoints are rebuilt by `glow_tf.runs.load.load_run`: use_ema=None (default)
    takes the weights that scored better at the run's last test pass, True the Polyak averages,
    False the raw weights; n_bits_x comes from the run's config.json. Raises InputError.
    `flow.weights` ('ema' / 'raw') and `flow.description` say which weights were loaded (for a
    packaged editor model: which of the original run's weights it holds). `precision`: what the
    coupling networks compute in ('fp32', 'bf16' or 'auto', `glow_tf.nets.precision`; the
    weights are the same); a SavedModel keeps the precision it was exported in ('auto' accepts
    that), and `flow.precision` says which one a checkpoint's model computes in.
    `frozen_weights`: a checkpoint's weights are compiled into encode / decode as constants
    (`InMemoryModel`; False if `flow.model`'s weights will be changed and must be seen).
    """
    if not path:
        raise InputError("no model given (pass --model LOGDIR_OR_EXPORT_DIR)")
    path = os.path.expanduser(os.fspath(path))
    if is_saved_model(path):
        if precision not in ('fp32', 'auto'):
            raise InputError(
                f"--precision {precision}: {path} is an exported SavedModel, whose precision was "
                "fixed at export; give a checkpoint or log dir"
            )
        return ExportedModel(path, batch_size)
    if not os.path.exists(path) and not tf.io.gfile.exists(path + '.index'):
        raise InputError(
            f"{path}: no such file or directory (expected a training log dir, a "
            "checkpoint or an exported SavedModel directory)"
        )
    from glow_tf.runs.checkpoint_format import packaged_weights
    from glow_tf.runs.load import load_run

    try:
        run = load_run(path, use_ema=use_ema, which=which)
    except (FileNotFoundError, ValueError) as e:
        raise InputError(str(e)) from None
    model, config = run.model, run.config
    model.precision = precision  # ArgumentError for an unknown name; 'auto' asks the hardware
    # a packaged editor model keeps its chosen weights as the model's own (raw) variables
    weights = 'ema' if run.use_ema else (packaged_weights(run.prefix) or 'raw')
    flow = InMemoryModel(
        model,
        n_bits_x=int(config.n_bits_x),
        batch_size=batch_size,
        description=f"{path} ({WEIGHTS_DESCRIPTIONS[weights]} weights)",
        frozen_weights=frozen_weights,
    )
    flow.weights = weights
    flow.precision = resolve_precision(precision)
    return flow


def as_trained_model(model_or_flow, n_bits_x=8, batch_size=64):
    """A `TrainedModel` as given, or an `InMemoryModel` around a `glow_tf.Glow`."""
    if isinstance(model_or_flow, TrainedModel):
        return model_or_flow
    return InMemoryModel(model_or_flow, n_bits_x=n_bits_x, batch_size=batch_size)
