"""Reading image files into square uint8 RGB arrays.

Every function here returns ``uint8`` arrays shaped ``[H, W, 3]`` (one image) or ``[N, H, W, 3]``.
Resizing is "centre-crop to a square, then area-downsample": the largest centred square is cut out
and resized with PIL's BOX filter, which averages exactly the source pixels covering each output
pixel (area downsampling, as the original Glow preprocessing). An image smaller than the target is
upsampled with BICUBIC instead (the BOX filter would just repeat pixels) -- avoid that for
likelihood numbers.

Colour modes: dataset loaders (``strict=True``) accept RGB, palette images without transparency,
CMYK/YCbCr (converted to RGB) and RGBA/PA images whose alpha channel is fully opaque; grayscale
(L, LA, 1, I, F) and images with real transparency are rejected with a :class:`DataError` naming
the file, because silently mixing them into a colour dataset changes its statistics.
:func:`load_image_file` (used by manipulate.py for a user's photo) is lenient by default: grayscale
is replicated to 3 channels and transparency is composited onto white.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from glow_tf.data.errors import DataError, describe

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif', '.webp', '.tif', '.tiff', '.ppm')

_GRAY_MODES = {'1', 'L', 'LA', 'La', 'I', 'I;16', 'I;16B', 'I;16L', 'I;16N', 'F'}


def is_image_file(name: str) -> bool:
    """True for a non-hidden file name with a known image extension (case-insensitive)."""
    return not name.startswith('.') and name.lower().endswith(IMAGE_EXTENSIONS)


def _open(path: Path):
    from PIL import Image

    try:
        img = Image.open(path)
        img.load()  # force a full decode: truncation and corruption surface here
    except FileNotFoundError:
        raise describe(path, 'file not found') from None
    except Image.DecompressionBombError as e:
        raise describe(path, f'image too large to decode safely ({e})') from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as e:
        raise describe(
            path, f'cannot decode image, the file is corrupt, truncated or not an image ({e})'
        ) from None
    return img


def to_rgb(img, path: Path, strict: bool):
    """Convert a decoded PIL image to mode RGB, or raise a DataError when ``strict`` forbids it.

    ``path`` only names the image in errors (a file, or e.g. 'upload' for the editor's uploads);
    the colour-mode rules are the module docstring's.
    """
    from PIL import Image

    mode = img.mode
    if mode == 'RGB':
        return img
    if mode == 'P':
        img = img.convert('RGBA') if 'transparency' in img.info else img.convert('RGB')
        mode = img.mode
        if mode == 'RGB':
            return img
    if mode in ('CMYK', 'YCbCr', 'LAB', 'HSV'):
        return img.convert('RGB')
    if mode in _GRAY_MODES:
        if strict:
            raise describe(
                path,
                f'grayscale image (PIL mode {mode}); expected an RGB colour image '
                '(convert it, or pass --skip_bad to train.py or '
                'convert_to_tfrecords.py to skip it)',
            )
        if mode in ('LA', 'La'):
            img = img.convert('RGBA')
            mode = 'RGBA'
        else:
            if mode.startswith('I') or mode == 'F':
                arr = np.asarray(img, dtype=np.float64)
                hi = 65535.0 if arr.max() > 255 else 255.0
                img = Image.fromarray(np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8), 'L')
            return img.convert('RGB')
    if mode in ('RGBA', 'RGBa', 'PA'):
        rgba = img.convert('RGBA')
        alpha = np.asarray(rgba)[..., 3]
        if alpha.min() == 255:
            return rgba.convert('RGB')
        if strict:
            raise describe(
                path,
                'RGBA image with transparency; expected an opaque RGB image '
                '(flatten it, or pass --skip_bad to train.py or '
                'convert_to_tfrecords.py to skip it)',
            )
        background = Image.new('RGBA', rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert('RGB')
    raise describe(path, f'unsupported image mode {mode}; expected RGB')


def crop_and_resize(img, image_size: int) -> np.ndarray:
    """Centre-crop a PIL image to a square and resize it to ``[image_size, image_size, 3]``
    uint8."""
    from PIL import Image

    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    if (w, h) != (side, side):
        img = img.crop((left, top, left + side, top + side))
    if side != image_size:
        method = Image.BOX if side > image_size else Image.BICUBIC
        img = img.resize((image_size, image_size), method)
    out = np.asarray(img, dtype=np.uint8)
    if out.shape != (image_size, image_size, 3):  # defensive: never hand a wrong shape downstream
        raise DataError(
            f'internal resize produced shape {out.shape}, expected {(image_size, image_size, 3)}'
        )
    return out


def load_image_file(path: str | os.PathLike, image_size: int, strict: bool = False) -> np.ndarray:
    """Read one image file as ``uint8 [image_size, image_size, 3]``.

    Centre-crops to a square and area-downsamples. With ``strict=False`` (default) grayscale images
    are replicated to 3 channels and transparency is composited onto white; with ``strict=True``
    they raise :class:`DataError`. An unreadable/corrupt file raises :class:`DataError` naming it.
    """
    if not isinstance(image_size, (int, np.integer)) or image_size < 1:
        raise DataError(f'image_size={image_size!r}: expected a positive integer')
    path = Path(path)
    if path.is_dir():
        raise describe(path, 'is a directory, expected an image file')
    img = to_rgb(_open(path), path, strict)
    return crop_and_resize(img, int(image_size))


def _decode_one(args):
    path, image_size = args
    try:
        return load_image_file(path, image_size, strict=True), None
    except DataError as e:
        return None, str(e)


def decode_images(
    paths: list[str], image_size: int, skip_bad: bool = False, workers: int | None = None
) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """Decode many image files (strict colour rules) in parallel threads.

    Returns ``(images uint8 [n_ok, image_size, image_size, 3], ok bool [len(paths)], skipped)``
    where ``skipped`` lists ``(path, reason)``. Without ``skip_bad`` the first bad file raises
    DataError.
    """
    n = len(paths)
    out = np.empty((n, image_size, image_size, 3), np.uint8)
    ok = np.zeros(n, bool)
    skipped: list[tuple[str, str]] = []
    workers = workers or min(8, os.cpu_count() or 1)
    jobs = ((p, image_size) for p in paths)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, (arr, err) in enumerate(pool.map(_decode_one, jobs, chunksize=64)):
            if err is not None:
                if not skip_bad:
                    raise DataError(err)
                skipped.append((str(paths[i]), err.split(': ', 1)[-1]))
                continue
            out[i] = arr
            ok[i] = True
    return out[ok], ok, skipped


def area_downsample(x: np.ndarray, image_size: int, where: str) -> np.ndarray:
    """Area-downsample ``uint8 [N, S, S, C]`` by an integer factor to
    ``[N, image_size, image_size, C]``.

    Averages ``f x f`` blocks then floors, like the original Glow loader, in integers (block sum
    // f²: the float mean's floor exactly, ~7x faster). ``S`` must be a multiple of
    ``image_size``; otherwise DataError naming ``where``.
    """
    s = x.shape[1]
    if image_size == s:
        return x
    if image_size < 1 or image_size > s or s % image_size:
        raise DataError(
            f'{where}: image_size={image_size} is not supported; the images are {s}x{s}, '
            f'use {s} or a divisor of it'
        )
    f = s // image_size
    acc_dtype = np.uint16 if f * f * 255 < 2**16 else np.uint32  # holds a block's sum
    out = np.empty((x.shape[0], image_size, image_size, x.shape[3]), np.uint8)
    for i in range(0, x.shape[0], 4096):  # chunked to bound the sums' memory
        blk = x[i : i + 4096]
        acc = blk[:, ::f, ::f].astype(acc_dtype)
        for a in range(f):
            for b in range(f):
                if a or b:
                    acc += blk[:, a::f, b::f]
        out[i : i + 4096] = acc // (f * f)
    return out
