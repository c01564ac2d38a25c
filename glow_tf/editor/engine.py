"""The editor's model side: a trained flow, its attribute directions, and a cache of encoded faces.

Every operation works on packed latents z (one image-shaped vector per face, see
`glow_tf.model.latents`), exactly as `manipulate.py` does:

    encode:  z = encode(x)                          (exact: decode(z) == x after quantisation)
    edit:    x' = decode(z + Σ_i α_i · d_i)         (d_i: attribute i's direction, α_i: strength)
    mix:     x' = decode((1 − t) · z_a + t · z_b)   (+ the same Σ α_i d_i, if strengths are given)
    sample:  z = T · ε,  ε ~ N(0, I) from (seed, T) as `sample.py --seed` draws it
    variations: z's kept levels, the others T · ε_i from (seed, i)   (`glow_tf.tools.levels`)
    ranges:  a sweep z + α_k d (α_k = -s .. s) or a mix line, `points` images in one call

Levels are numbered 1 (finest) .. L (coarsest); an edit may be restricted to some of them.

An encoded face is cached under an id (`gallery-<name>`, `upload-<hash of its pixels>`,
`sample-<seed>-<T>`), so moving a slider only decodes: one model call of batch 1. The cache keeps
the `cache_size` most recently used faces; gallery faces are re-encoded when they come back.

`FaceEditor` is safe to share between threads: model calls and the cache are under one lock
(TensorFlow would run concurrent calls, but they would only compete for the same cores).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from glow_tf.errors import InputError
from glow_tf.tools.images import quantise
from glow_tf.tools.levels import check_levels, variation_latents
from glow_tf.tools.manipulation import find_attribute, load_directions, shift_latents
from glow_tf.tools.trained import load_trained_model

DEFAULT_ATTRIBUTES = ('Smiling', 'Young', 'Male', 'Eyeglasses', 'Blond_Hair', 'Mustache', 'Bald')
MAX_STRENGTH = 5.0  # |α| accepted per attribute
MAX_TEMPERATURE = 1.5
MAX_POINTS = 48  # images in one range request (sweep, mix range, animation)
MAX_VARIATIONS = 16
MODEL_MANIFEST = 'model.json'  # in a packaged editor model directory (see docs/editor.md)


class UnknownFace(LookupError):
    """A face id the editor does not hold (never encoded, or dropped from the cache)."""


@dataclass
class Face:
    """One encoded face.

    Args:
        id: cache key.
        z: packed latents float32 [H, W, C].
        input: uint8 [H, W, C], the image that was encoded, reduced to the model's n_bits_x.
        reconstruction: uint8 [H, W, C], decode(z); equals `input` for an exact flow.
        source: 'gallery', 'upload' or 'sample'.
        meta: JSON-able details (file name, alignment, seed...).
    """

    id: str
    z: np.ndarray
    input: np.ndarray
    reconstruction: np.ndarray
    source: str
    meta: dict = field(default_factory=dict)

    @property
    def exact(self):
        return bool(np.array_equal(self.input, self.reconstruction))


def check_number(value, name, low, high):
    """A finite int or float in [low, high] as float; InputError naming `name` otherwise."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise InputError(f"{name} must be a number in [{low:g}, {high:g}], got {value!r:.40}")
    return float(value)


def check_count(value, name, low, high):
    """An int in [low, high]; InputError naming `name` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"{name} must be an integer in [{low}, {high}], got {value!r:.40}")
    return int(value)


def png_bytes(image):
    """uint8 [H, W, C] (C = 1 or 3) -> PNG file bytes (fast zlib level: these are tiny)."""
    from PIL import Image

    image = np.asarray(image, np.uint8)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format='PNG', compress_level=1)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------
def read_manifest(model_dir):
    """The `model.json` of a packaged editor model directory, or None for anything else."""
    path = os.path.join(os.fspath(model_dir), MODEL_MANIFEST)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: unreadable model manifest ({e})") from None
    if not isinstance(manifest, dict):
        raise InputError(f"{path}: expected a JSON object")
    if 'sample_temperature' in manifest:  # the Random tab's default (the judge's best)
        check_number(
            manifest['sample_temperature'], f"{path}: sample_temperature", 0.0, MAX_TEMPERATURE
        )
    return manifest


def load_editor_flow(path, batch_size=8, precision='fp32', frozen_weights=True):
    """A flow for the editor: a packaged editor model directory (model.json + config.json + one
    checkpoint holding only the weights to use), or anything `load_trained_model` takes (training
    log dir with its default weights, checkpoint, exported SavedModel). `precision`: see
    `load_trained_model`; the editor keeps fp32, so its pixels are the same on every machine (and
    match manipulate.py's). `frozen_weights`: see `load_trained_model` (on: a one-face decode
    ~1.4-1.6x faster here). The model runs its flow steps one by one (`shared_steps='never'`):
    one face decodes ~10 % faster so than through shared step functions (whose first call is
    shorter, but the editor compiles while the page loads)."""
    manifest = read_manifest(path) if path and os.path.isdir(path) else None
    # The packaged checkpoint holds one set of weights (the better of raw / averaged) as the
    # model's own variables, so it is read as "raw"; load_trained_model names which they were.
    use_ema = False if manifest is not None else None
    flow = load_trained_model(
        path,
        use_ema=use_ema,
        batch_size=batch_size,
        precision=precision,
        frozen_weights=frozen_weights,
    )
    model = getattr(flow, 'model', None)  # an exported SavedModel has its graphs already
    if hasattr(model, 'shared_steps'):
        model.shared_steps = 'never'
    return flow, manifest or {}


def _spread(files, limit):
    """`limit` of `files`, evenly spread (all of them when limit is None or large enough)."""
    if limit and len(files) > limit:
        idx = np.linspace(0, len(files) - 1, int(limit)).round().astype(int)
        files = [files[i] for i in idx]
    return list(files)


def gallery_files(directory, limit=None):
    """Image files of a gallery directory, sorted; `limit` picks that many evenly spread."""
    from glow_tf.tools.images import list_image_files

    return _spread(list_image_files([directory]), limit)


def celeba_test_files(celeba_root, limit=None):
    """Held-out faces of a CelebA directory (its test split: the last 10% by file name, or the
    official partition), `limit` of them evenly spread."""
    import warnings

    from glow_tf.data.celeba import scan_celeba

    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the subset's count line warning is not news here
        files = scan_celeba(celeba_root).test_files
    return _spread(files, limit)


# ---------------------------------------------------------------------------------------------
# the editor
# ---------------------------------------------------------------------------------------------
class FaceEditor:
    """Encode / edit / mix / sample faces with one trained flow (see the module docstring).

    Args:
        flow: a `glow_tf.tools.trained.TrainedModel` (InMemoryModel or ExportedModel).
        directions: `glow_tf.tools.manipulation.load_directions(path, flow)` output, or None
            (no sliders).
        gallery: image file paths (already aligned faces, e.g. CelebA's); each is centre-cropped
            and resized to the model's size, as in training.
        cache_size: encoded faces kept (least recently used dropped first).
        default_attributes: attributes that get a slider on the page by default.
    """

    def __init__(
        self,
        flow,
        directions=None,
        gallery=(),
        cache_size=256,
        default_attributes=DEFAULT_ATTRIBUTES,
    ):
        self.flow = flow
        self.image_shape = tuple(int(d) for d in flow.image_shape)
        if flow.n_classes:
            raise InputError(
                "the face editor needs an unconditional model (this one is "
                f"class-conditional with {flow.n_classes} classes)"
            )
        self.lock = threading.RLock()
        self.cache_size = max(4, int(cache_size))
        self._faces = OrderedDict()
        self.gallery = OrderedDict()
        for path in gallery:
            name = os.path.splitext(os.path.basename(path))[0]
            self.gallery[f'gallery-{name}'] = os.fspath(path)
        self.names, self._matrix = [], np.zeros((0, int(np.prod(self.image_shape))), np.float32)
        self.counts = {}
        if directions is not None:
            names = list(directions['names'])
            d = np.asarray(directions['directions'], np.float32).reshape(len(names), -1)
            n_pos = np.asarray(directions.get('n_pos', np.ones(len(names))))
            n_neg = np.asarray(directions.get('n_neg', np.ones(len(names))))
            keep = [i for i in range(len(names)) if n_pos[i] > 0 and n_neg[i] > 0]
            self.names = [names[i] for i in keep]
            self._matrix = d[keep]
            self.counts = {names[i]: (int(n_pos[i]), int(n_neg[i])) for i in keep}
        self.default_attributes = [a for a in default_attributes if a in self.names]
        self.timings = {}

    # ---- bookkeeping --------------------------------------------------------------------------
    def _remember(self, face):
        with self.lock:
            self._faces[face.id] = face
            self._faces.move_to_end(face.id)
            while len(self._faces) > self.cache_size:
                self._faces.popitem(last=False)
        return face

    def face(self, face_id):
        """The cached Face `face_id` (gallery faces are encoded on first use)."""
        if not isinstance(face_id, str) or not face_id or len(face_id) > 200:
            raise InputError(
                f"a face id must be a non-empty string (from /api/encode or "
                f"/api/sample), got {face_id!r:.60}"
            )
        with self.lock:
            face = self._faces.get(face_id)
            if face is not None:
                self._faces.move_to_end(face_id)
                return face
            if face_id in self.gallery:
                return self._encode_gallery(face_id)
        raise UnknownFace(
            f"unknown face {face_id!r}: encode an image first (POST /api/encode); "
            "uploaded faces are forgotten after "
            f"{self.cache_size} newer ones"
        )

    def _encode_gallery(self, face_id):
        from glow_tf.tools.images import load_images

        path = self.gallery[face_id]
        image = load_images([path], self.image_shape)[0]
        return self._encode(face_id, image, 'gallery', {'file': os.path.basename(path)})

    def _encode(self, face_id, image, source, meta):
        image = quantise(image, self.flow.n_bits_x)
        with self.lock:
            t0 = time.perf_counter()
            z = self.flow.encode(image[None])[0]
            rec = self.flow.decode(z[None])[0]
            self.timings['encode'] = time.perf_counter() - t0
        return self._remember(Face(face_id, z, image, rec, source, meta))

    def gallery_faces(self):
        """The gallery's faces, in order, encoded (and cached) on first use; a file that cannot be
        read is skipped with a warning on the 'glow_tf.editor' logger."""
        faces = []
        for face_id in self.gallery:
            try:
                faces.append(self.face(face_id))
            except InputError as e:
                logging.getLogger('glow_tf.editor').warning("gallery: %s", e)
        return faces

    def warm_up(self):
        """Compile encode and decode before a request needs them (their first calls trace and
        optimise the model for seconds) and encode the gallery, which the page asks for first
        (`gallery_faces`; then cached); a grey image when no gallery face can be read. Returns
        seconds."""
        start = time.perf_counter()
        if not self.gallery_faces():
            grey = np.full((1, *self.image_shape), 128, np.uint8)
            with self.lock:
                self.flow.decode(self.flow.encode(grey))
        return time.perf_counter() - start

    # ---- operations ---------------------------------------------------------------------------
    def encode(self, image, source='upload', meta=None):
        """uint8 [H, W, C] at the model's size -> Face (cached under a hash of its pixels)."""
        image = np.asarray(image)
        if image.shape != self.image_shape or image.dtype != np.uint8:
            raise InputError(
                f"image of shape {image.shape} ({image.dtype}) does not fit the model, "
                f"which takes uint8 {'x'.join(map(str, self.image_shape))}"
            )
        digest = hashlib.sha256(quantise(image, self.flow.n_bits_x).tobytes()).hexdigest()[:16]
        face_id = f'{source}-{digest}'
        with self.lock:
            cached = self._faces.get(face_id)
            if cached is not None:
                cached.meta.update(meta or {})
                self._faces.move_to_end(face_id)
                return cached
            return self._encode(face_id, image, source, dict(meta or {}))

    def strength_vector(self, strengths):
        """{attribute: α} -> (α [K] float32 over self.names, {canonical name: α}). Names match
        case-insensitively; values must be finite and |α| <= MAX_STRENGTH."""
        if strengths is None:
            strengths = {}
        if not isinstance(strengths, dict):
            raise InputError(
                "strengths must be an object mapping attribute names to numbers, "
                f"got {type(strengths).__name__}"
            )
        alpha = np.zeros(len(self.names), np.float32)
        used = {}
        for name, value in strengths.items():
            if not isinstance(name, str):
                raise InputError(f"attribute names must be strings, got {name!r:.40}")
            if not self.names:
                raise InputError(
                    "this editor has no attribute directions (start it with --directions FILE)"
                )
            key = find_attribute(name, self.names, where='the attribute directions')
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(f"strength of {key} must be a number, got {value!r:.40}")
            value = float(value)
            if not math.isfinite(value) or abs(value) > MAX_STRENGTH:
                raise InputError(
                    f"strength of {key} must be a finite number in "
                    f"[-{MAX_STRENGTH:g}, {MAX_STRENGTH:g}], got {value!r}"
                )
            alpha[self.names.index(key)] = value
            used[key] = value
        return alpha, used

    def _offset(self, alpha):
        if not alpha.any():
            return None
        return (alpha @ self._matrix).reshape(self.image_shape)

    def _decode(self, z, what):
        with self.lock:
            t0 = time.perf_counter()
            image = self.flow.decode(np.asarray(z, np.float32)[None])[0]
            self.timings[what] = time.perf_counter() - t0
        return image

    def edit(self, face_id, strengths=None, levels=None):
        """decode(z + Σ α_i d_i) of a cached face -> (uint8 [H, W, C], {attribute: α} applied).
        levels: None (all) or level numbers (1 = finest) the edit may change; the others keep
        the face's latents exactly. All strengths 0 gives the input back exactly."""
        face = self.face(face_id)
        alpha, used = self.strength_vector(strengths)
        levels = self.check_levels(levels)
        offset = self._offset(alpha)
        if offset is None:
            return face.reconstruction, used
        return self._decode(shift_latents(face.z, offset, 1.0, self.flow, levels), 'edit'), used

    def mix(self, face_a, face_b, t, strengths=None):
        """decode((1 − t) z_a + t z_b + Σ α_i d_i), t in [0, 1]."""
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.0 <= float(t) <= 1.0:
            raise InputError(f"mix weight t must be a number in [0, 1], got {t!r:.40}")
        a, b = self.face(face_a), self.face(face_b)
        alpha, used = self.strength_vector(strengths)
        z = np.float32(1.0 - float(t)) * a.z + np.float32(float(t)) * b.z
        offset = self._offset(alpha)
        if offset is not None:
            z = z + offset
        return self._decode(z, 'mix'), used

    def sample(self, temperature=0.7, seed=None):
        """A random face at `temperature` (same draw as `sample.py --seed S --temperature T`, image
        0); cached and editable like any other face."""
        temperature = check_number(temperature, 'temperature', 0.0, MAX_TEMPERATURE)
        if seed is None:
            seed = int(np.random.default_rng().integers(0, 2**31 - 1))
        seed = check_count(seed, 'seed', 0, 2**31 - 1)
        face_id = f'sample-{seed}-{temperature:g}'
        with self.lock:
            cached = self._faces.get(face_id)
            if cached is not None:
                return cached
            z = self.flow.latents(1, temperature, seed)[0]
            image = self._decode(z, 'sample')
            return self._remember(
                Face(face_id, z, image, image, 'sample', {'seed': seed, 'temperature': temperature})
            )

    # ---- level-wise operations and ranges (the original demo's *_range endpoints) -----------
    def check_levels(self, levels, what='levels'):
        """None (all levels) or a sorted tuple of level numbers 1..L (1 = finest)."""
        if levels is None:
            return None
        return check_levels(levels, len(self.flow.latent_shapes), what)

    def _decode_many(self, zs, what):
        with self.lock:
            t0 = time.perf_counter()
            images = self.flow.decode(np.asarray(zs, np.float32))
            self.timings[what] = time.perf_counter() - t0
        return images

    def variations(self, face_id, keep, temperature=0.7, n=6, seed=0):
        """n variations of a cached face: its `keep` levels kept, the others resampled at
        `temperature` with seed's noise (`glow_tf.tools.levels`) -> uint8 [n, H, W, C]."""
        face = self.face(face_id)
        keep = check_levels(keep, len(self.flow.latent_shapes), 'keep', allow_empty=True)
        temperature = check_number(temperature, 'temperature', 0.0, MAX_TEMPERATURE)
        n = check_count(n, 'n', 1, MAX_VARIATIONS)
        seed = check_count(seed, 'seed', 0, 2**31 - 1)
        zs = variation_latents(face.z, self.flow.latent_shapes, keep, n, temperature, seed)
        return self._decode_many(zs, 'variations')

    def strength_range(self, face_id, attribute, points=5, scale=1.0, levels=None):
        """A sweep of one attribute: strengths -scale .. +scale in `points` steps ->
        (uint8 [points, H, W, C], strengths)."""
        face = self.face(face_id)
        if not isinstance(attribute, str):
            raise InputError(f"attribute must be a name, got {attribute!r:.40}")
        points = check_count(points, 'points', 2, MAX_POINTS)
        scale = check_number(scale, 'scale', 0.0, MAX_STRENGTH)
        levels = self.check_levels(levels)
        strengths = [float(a) for a in np.linspace(-scale, scale, points)]
        _, used = self.strength_vector({attribute: scale})
        direction = self._matrix[self.names.index(next(iter(used)))].reshape(self.image_shape)
        zs = [shift_latents(face.z, direction, a, self.flow, levels) for a in strengths]
        return self._decode_many(zs, 'strength_range'), strengths

    def mix_range(self, face_a, face_b, points=5):
        """decode((1 − t) z_a + t z_b) for t = 0 .. 1 in `points` steps -> (uint8 [points, ...],
        ts)."""
        a, b = self.face(face_a), self.face(face_b)
        points = check_count(points, 'points', 2, MAX_POINTS)
        ts = np.linspace(0.0, 1.0, points, dtype=np.float32)
        zs = (np.float32(1.0) - ts)[:, None, None, None] * a.z + ts[:, None, None, None] * b.z
        return self._decode_many(zs, 'mix_range'), [float(t) for t in ts]

    def info(self):
        return {
            'image_shape': list(self.image_shape),
            'n_bits_x': int(self.flow.n_bits_x),
            'model': self.flow.description,
            'attributes': list(self.names),
            'default_attributes': list(self.default_attributes),
            'counts': {k: list(v) for k, v in self.counts.items()},
            'gallery': list(self.gallery),
            'max_strength': MAX_STRENGTH,
            'max_temperature': MAX_TEMPERATURE,
            'levels': [list(map(int, shape)) for shape in self.flow.latent_shapes],
            'max_points': MAX_POINTS,
            'max_variations': MAX_VARIATIONS,
        }


def build_editor(model, directions=None, gallery=None, n_gallery=24, cache_size=256, check=True):
    """A FaceEditor from paths: `model` (see load_editor_flow), `directions` (.npz; default the
    packaged model's), `gallery` (a directory of aligned faces, a CelebA root whose test split is
    used, or None: the test split of the CelebA data in the shared data directory
    (`glow_tf.data.shared_data_root`) when present, else the packaged model's bundled faces).
    `check=False` skips the directions' model-fingerprint check."""
    flow, manifest = load_editor_flow(model)
    if directions is None and manifest.get('directions'):
        directions = os.path.join(model, manifest['directions'])
    dirs = load_directions(directions, flow, check_fingerprint=check) if directions else None
    from glow_tf.data.celeba import looks_like_celeba

    files = []
    if gallery:
        from pathlib import Path

        files = (
            celeba_test_files(gallery, n_gallery)
            if looks_like_celeba(Path(gallery))
            else gallery_files(gallery, n_gallery)
        )
    else:
        from glow_tf.data import get_problem, shared_data_root

        root = shared_data_root()  # CelebA as load_source('celeba') finds it there
        shared = [root / d for d in get_problem('celeba').folders if looks_like_celeba(root / d)]
        if shared:
            files = celeba_test_files(shared[0], n_gallery)
        elif manifest.get('faces'):
            files = gallery_files(os.path.join(model, manifest['faces']), n_gallery)
    editor = FaceEditor(flow, dirs, files, cache_size=cache_size)
    editor.manifest = manifest
    return editor
