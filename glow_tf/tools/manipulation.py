"""Latent-space manipulation with a trained Glow (paper section 5.2, the original demo).

Latents. An image x is encoded to the full list of per-level latents ε_1..ε_L
(`Glow.encode`), packed into one image-shaped tensor z (`glow_tf.model.latents.pack_latents`:
flatten each level, concatenate, reshape to [H, W, C]). Every operation below is linear in that
single vector z, exactly as the original worked on its concatenated latent:

    direction(attribute) = mean z over images with the attribute - mean z over images without it
    edit(x, attribute, α) = decode(z(x) + α · direction(attribute))   (optionally on chosen
                            levels only: `glow_tf.tools.levels`)
    interpolate(a, b, t)  = decode((1 - t) · z(a) + t · z(b)),    t = 0, 1/(N-1), ..., 1

Encoding is exact and noise-free: each pixel maps to the centre of its quantisation bin
(x/n_bins - 1/2 + 1/(2 n_bins)), so decode(encode(x)) returns the input pixels (after reducing
them to n_bits_x bits), α = 0 reproduces the input and the interpolation endpoints are the inputs.

Inputs are ordinary image files of any size (`glow_tf.tools.images.load_images`: centre-cropped
to a square and resized to the model's resolution). Every user-facing problem raises
`glow_tf.errors.InputError` (a ValueError) naming the file / attribute / shape at fault.
"""

import difflib
import os
import warnings

import numpy as np

from glow_tf.errors import InputError
from glow_tf.model.latents import pack_latents, unpack_latents
from glow_tf.tools.images import list_image_files, load_images, save_npz
from glow_tf.tools.levels import level_mask

LATENTS_FORMAT = 'glow_tf.latents/1'
DIRECTIONS_FORMAT = 'glow_tf.directions/1'

__all__ = [
    'save_latents',
    'load_latents',
    'DirectionAccumulator',
    'compute_directions',
    'save_directions',
    'load_directions',
    'FingerprintWarning',
    'find_attribute',
    'edit',
    'shift_latents',
    'interpolate',
    'celeba_labels',
    'folder_labels',
]


# ---------------------------------------------------------------------------------------------
# latents files
# ---------------------------------------------------------------------------------------------
def shape_text(shapes):
    return '[' + ', '.join('x'.join(map(str, s)) for s in shapes) + ']'


def save_latents(path, flow, latents, files=None, y=None):
    """npz with one array per level (`eps_0` .. `eps_{L-1}`, [N, *latent_shape_l]) plus the
    packed `latents` [N, H, W, C], `files`, `image_shape`, `latent_shapes`, `n_bits_x` (and `y`)."""
    latents = np.asarray(latents, np.float32)
    levels = [e.numpy() for e in unpack_latents(latents, flow.latent_shapes)]
    arrays = {f'eps_{i}': e for i, e in enumerate(levels)}
    arrays.update(
        latents=latents,
        image_shape=np.array(flow.image_shape, np.int64),
        latent_shapes=np.array(flow.latent_shapes, np.int64),
        n_bits_x=np.array(flow.n_bits_x),
        format=np.array(LATENTS_FORMAT),
        files=np.array([os.fspath(f) for f in (files or [])], dtype=str),
    )
    if y is not None:
        arrays['y'] = np.asarray(y, np.int32)
    save_npz(path, arrays)
    return path


def _load_npz(path, what):
    try:
        return dict(np.load(os.fspath(path), allow_pickle=False))
    except FileNotFoundError:
        raise InputError(f"{path}: {what} file not found") from None
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable .npz {what} file ({e})") from None


def load_latents(path, flow):
    """Packed latents [N, H, W, C] (and y or None) from `save_latents` output, checked against
    the flow's latent shapes (per level)."""
    data = _load_npz(path, 'latents')
    levels = sorted((k for k in data if k.startswith('eps_')), key=lambda k: int(k[4:]))
    if not levels:
        raise InputError(
            f"{path}: no per-level latents (eps_0, eps_1, ...); write it with "
            "`manipulate.py encode`"
        )
    got = [tuple(data[k].shape[1:]) for k in levels]
    want = [tuple(s) for s in flow.latent_shapes]
    if got != want:
        raise InputError(
            f"{path}: latent shapes {shape_text(got)} (per level) do not match the "
            f"model ({flow.description}), which has {len(want)} levels of shapes "
            f"{shape_text(want)} for images {'x'.join(map(str, flow.image_shape))}"
        )
    packed = pack_latents([data[k].astype(np.float32) for k in levels], flow.image_shape).numpy()
    return packed, data.get('y')


# ---------------------------------------------------------------------------------------------
# attribute directions
# ---------------------------------------------------------------------------------------------
class DirectionAccumulator:
    """Streaming mean(z | positive) - mean(z | negative) for K attributes at once.

    add(latents [B, ...], labels [B, K] in {+1, -1} (0 = unlabelled)); result() ->
    (directions float32 [K, ...], n_pos [K], n_neg [K]). Sums are kept in float64.

    Args:
        names: the K attribute names, in the order of the label columns.
    """

    def __init__(self, names):
        self.names = list(names)
        self.sum_pos = self.sum_neg = None
        self.n_pos = np.zeros(len(self.names), np.int64)
        self.n_neg = np.zeros(len(self.names), np.int64)
        self.shape = None

    def add(self, latents, labels):
        latents = np.asarray(latents)
        labels = np.asarray(labels).reshape(len(latents), -1)
        if labels.shape[1] != len(self.names):
            raise ValueError(
                f"labels have {labels.shape[1]} columns for {len(self.names)} attributes"
            )
        flat = latents.reshape(len(latents), -1).astype(np.float64)
        pos, neg = (labels > 0).astype(np.float64), (labels < 0).astype(np.float64)
        if self.sum_pos is None:
            self.shape = latents.shape[1:]
            self.sum_pos = np.zeros((len(self.names), flat.shape[1]))
            self.sum_neg = np.zeros((len(self.names), flat.shape[1]))
        self.sum_pos += pos.T @ flat
        self.sum_neg += neg.T @ flat
        self.n_pos += pos.sum(0).astype(np.int64)
        self.n_neg += neg.sum(0).astype(np.int64)

    def result(self):
        if self.sum_pos is None:
            raise InputError("no labelled images: cannot compute directions")
        with np.errstate(invalid='ignore', divide='ignore'):
            d = self.sum_pos / self.n_pos[:, None] - self.sum_neg / self.n_neg[:, None]
        d[(self.n_pos == 0) | (self.n_neg == 0)] = 0.0
        return d.reshape(len(self.names), *self.shape).astype(np.float32), self.n_pos, self.n_neg


def compute_directions(flow, files, labels, names, y=None, progress=None):
    """Encode `files` (in batches of flow.batch_size) and accumulate the K attribute directions.

    labels: [N, K] +1/-1 (0 = ignore). Returns (directions [K, H, W, C], n_pos, n_neg).
    progress: optional callable(n_done, n_total).
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape != (len(files), len(names)):
        raise ValueError(f"labels shape {labels.shape} != ({len(files)}, {len(names)})")
    acc = DirectionAccumulator(names)
    step = max(1, int(flow.batch_size))
    for s in range(0, len(files), step):
        e = min(len(files), s + step)
        images = load_images(files[s:e], flow.image_shape)
        acc.add(flow.encode(images, None if y is None else np.asarray(y)[s:e]), labels[s:e])
        if progress:
            progress(e, len(files))
    return acc.result()


def celeba_labels(attr_file, image_dir, n_images=None, attributes=None):
    """(files, labels int8 [N, K], names) from a CelebA attribute file and its image directory.

    Rows whose image exists in image_dir (matched by file stem, any image extension) are used,
    in file order; the first n_images of them if given. attributes: a subset of names (default all).
    """
    from glow_tf.data import DataError, read_celeba_attributes
    from glow_tf.data.images import is_image_file

    try:
        names, filenames, values = read_celeba_attributes(attr_file)
    except DataError as e:
        raise InputError(str(e)) from None
    if not os.path.isdir(image_dir):
        raise InputError(f"{image_dir}: image directory not found")
    by_stem = {os.path.splitext(f)[0]: f for f in os.listdir(image_dir) if is_image_file(f)}
    rows = [i for i, fn in enumerate(filenames) if os.path.splitext(fn)[0] in by_stem]
    if not rows:
        raise InputError(
            f"{image_dir}: none of the {len(filenames)} images listed in {attr_file} is there"
        )
    if n_images:
        rows = rows[: int(n_images)]
    files = [os.path.join(image_dir, by_stem[os.path.splitext(filenames[i])[0]]) for i in rows]
    labels = values[rows]
    if attributes:
        idx = [names.index(find_attribute(a, names, where=attr_file)) for a in attributes]
        names, labels = [names[i] for i in idx], labels[:, idx]
    return files, labels, list(names)


def folder_labels(pos_dir, neg_dir, name):
    """(files, labels [N, 1], [name]) from a folder of positive and a folder of negative images."""
    pos = list_image_files([pos_dir])
    neg = list_image_files([neg_dir])
    labels = np.array([[1]] * len(pos) + [[-1]] * len(neg), np.int8)
    return pos + neg, labels, [name]


def save_directions(path, flow, names, directions, n_pos, n_neg, source=''):
    """npz: `names` [K] str, `directions` float32 [K, H, W, C] (packed latents), `n_pos`, `n_neg`,
    `image_shape`, `latent_shapes`, `n_bits_x`, `source`, and the model that computed them:
    `fingerprint` (`glow_tf.tools.trained.model_fingerprint`) and `model` (its description)."""
    save_npz(
        path,
        {
            'names': np.array(names, dtype=str),
            'directions': np.asarray(directions, np.float32),
            'n_pos': np.asarray(n_pos, np.int64),
            'n_neg': np.asarray(n_neg, np.int64),
            'image_shape': np.array(flow.image_shape, np.int64),
            'latent_shapes': np.array(flow.latent_shapes, np.int64),
            'n_bits_x': np.array(flow.n_bits_x),
            'source': np.array(str(source)),
            'fingerprint': np.array(flow.fingerprint),
            'model': np.array(str(getattr(flow, 'description', ''))),
            'format': np.array(DIRECTIONS_FORMAT),
        },
    )
    return path


class FingerprintWarning(UserWarning):
    """A directions file without a model fingerprint (written before fingerprints existed)."""


def load_directions(path, flow=None, check_fingerprint=True):
    """dict(names list, directions [K, H, W, C], n_pos, n_neg, ...); checked against `flow`:
    shapes, and (with check_fingerprint) that `flow` is the model that computed them. A file
    without a fingerprint (older glow_tf) is accepted with a FingerprintWarning."""
    data = _load_npz(path, 'directions')
    for key in ('names', 'directions'):
        if key not in data:
            raise InputError(f"{path}: no '{key}' array; write it with `manipulate.py directions`")
    data['names'] = [str(n) for n in data['names']]
    if flow is not None:
        got = tuple(data['directions'].shape[1:])
        if got != tuple(flow.image_shape) or (
            'latent_shapes' in data
            and [tuple(s) for s in data['latent_shapes']] != [tuple(s) for s in flow.latent_shapes]
        ):
            ls = [tuple(s) for s in data.get('latent_shapes', [])]
            raise InputError(
                f"{path}: directions were computed for images {'x'.join(map(str, got))} "
                f"(latent levels {shape_text(ls)}), but the model ({flow.description}) "
                f"has images {'x'.join(map(str, flow.image_shape))} (latent levels "
                f"{shape_text(flow.latent_shapes)})"
            )
        if check_fingerprint:
            _check_fingerprint(path, data, flow)
    return data


def _check_fingerprint(path, data, flow):
    if 'fingerprint' not in data:
        warnings.warn(
            f"{path}: no model fingerprint (written by an older glow_tf); cannot check "
            "that these directions belong to this model",
            FingerprintWarning,
            stacklevel=3,
        )
        return
    got, want = str(data['fingerprint']), flow.fingerprint
    if got != want:
        made_by = str(data.get('model', '')) or 'unknown'
        raise InputError(
            f"{path}: these directions were computed with another model "
            f"(fingerprint {got}, model {made_by}), not with "
            f"{getattr(flow, 'description', 'this model')} (fingerprint {want}). "
            "Directions only mean something for the weights that computed them: "
            "recompute them with `manipulate.py directions --model ...` for this "
            "model (and the same --weights / --which choice)"
        )


def find_attribute(name, names, where='directions'):
    """The entry of `names` matching `name` (exact, then case-insensitive), else InputError."""
    if name in names:
        return name
    lower = {n.lower(): n for n in names}
    if name.lower() in lower:
        return lower[name.lower()]
    close = difflib.get_close_matches(name, list(names), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ''
    raise InputError(f"unknown attribute {name!r} in {where}.{hint} Available: {', '.join(names)}")


def direction_for(directions, name, where='directions'):
    """The direction [H, W, C] of one attribute from `load_directions` output."""
    names = directions['names']
    key = find_attribute(name, names, where)
    k = names.index(key)
    if 'n_pos' in directions and (directions['n_pos'][k] == 0 or directions['n_neg'][k] == 0):
        raise InputError(
            f"attribute {key!r} in {where} has no direction: it was computed from "
            f"{int(directions['n_pos'][k])} positive and {int(directions['n_neg'][k])} "
            "negative images (needs both)"
        )
    return directions['directions'][k], key


# ---------------------------------------------------------------------------------------------
# edits and interpolation
# ---------------------------------------------------------------------------------------------
def edit(flow, images, direction, strengths, y=None, levels=None):
    """uint8 [N, H, W, C] -> uint8 [N, len(strengths), H, W, C]: decode(z + α · direction).

    levels: None (all) or level numbers (1 = finest, `glow_tf.tools.levels`): the direction
    is added on those levels only; the others keep the input's latents bit for bit.
    α = 0 returns the (quantised) input exactly."""
    z = flow.encode(images, y)
    direction = np.asarray(direction, np.float32)
    if direction.shape != z.shape[1:]:
        raise InputError(
            f"direction of shape {direction.shape} does not match the latents {z.shape[1:]}"
        )
    strengths = [float(a) for a in strengths]
    zs = np.stack([shift_latents(z, direction, a, flow, levels) for a in strengths], 1)
    yy = None if y is None else np.repeat(np.asarray(y, np.int32).reshape(-1), len(strengths))
    out = flow.decode(zs.reshape(-1, *z.shape[1:]), yy)
    return out.reshape(len(images), len(strengths), *out.shape[1:])


def shift_latents(z, direction, strength, flow, levels=None):
    """z + α · direction (packed latents [..., H, W, C]), on `levels` only when given (the
    other levels keep z's values exactly)."""
    moved = z + np.float32(strength) * direction
    if levels is None:
        return moved
    mask = level_mask(flow.latent_shapes, flow.image_shape, levels)
    return np.where(mask, moved, z)


def interpolate(flow, image_a, image_b, n, y=None):
    """Two uint8 images [H, W, C] -> uint8 [n, H, W, C] along the latent line (endpoints exact)."""
    if int(n) < 2:
        raise InputError(f"interpolation needs n >= 2 images (the two endpoints), got {n}")
    z = flow.encode(np.stack([image_a, image_b]), y if y is None else np.repeat(y, 2))
    t = np.linspace(0.0, 1.0, int(n), dtype=np.float32)[:, None, None, None]
    zs = (np.float32(1.0) - t) * z[0] + t * z[1]
    return flow.decode(
        zs, None if y is None else np.repeat(np.asarray(y, np.int32).reshape(-1)[:1], int(n))
    )
