"""Face alignment for uploaded photos: crop a face the way CelebA's aligned images are cropped.

CelebA's `img_align_celeba` images are 178x218 crops in which the eyes are level and sit at fixed
positions. Measured with this module's own detector (`detect_face`) on 132 aligned images of the
shared subset (its 32 full-size ones and 100 of the 89x109 ones enlarged 2x; eyes found in 117,
faces in 124), the medians are

    left eye (67.6, 112.0), right eye (108.0, 112.0) in the 178x218 frame   (CELEBA_EYES)
    face box (x 36, y 71, side 105)                                           (CELEBA_FACE_BOX)

so an aligned upload has the detector's own bias cancelled.

`align_face` finds the largest frontal face with OpenCV's Haar cascades (the detector models ship
inside the `opencv-python-headless` wheel, `cv2.data.haarcascades`; nothing is downloaded), then
the two eyes inside its upper part, and warps the photo with the similarity transform (rotation,
uniform scale, shift) that puts the detected eyes on CELEBA_EYES. With one eye or none it maps the
face box onto CELEBA_FACE_BOX (scale and shift only). With no face at all it falls back to a
centre crop and says so (`Alignment.notice`). The 178x218 result then goes through the same
centre-crop-and-resize as the training images (`glow_tf.data.images.crop_and_resize`), so an
upload reaches the model exactly as a CelebA image does.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

ALIGNED_SIZE = (178, 218)  # (width, height) of img_align_celeba
CELEBA_EYES = ((67.6, 112.0), (108.0, 112.0))  # (x, y) of the left / right eye centres
CELEBA_FACE_BOX = (36.0, 71.0, 105.0)  # x, y, side of the detector's face box
DETECT_MAX_SIDE = 640  # photos are shrunk to this for detection

_local = threading.local()  # cv2 classifiers are not documented as thread-safe: one per thread


@dataclass
class Alignment:
    """Result of `align_face`.

    Args:
        image: uint8 [image_size, image_size, 3], what the model encodes.
        aligned: uint8 [218, 178, 3], the CelebA-style crop before the resize.
        method: 'eyes' (similarity transform from both eyes), 'face' (face box only) or
            'centre' (no face found: centre crop).
        face_box: (x, y, w, h) of the detected face in the photo's pixels, or None.
        eyes: ((x, y), (x, y)) detected eye centres in the photo's pixels, or None.
        notice: a sentence for the user when the alignment is approximate, else ''.
    """

    image: np.ndarray
    aligned: np.ndarray
    method: str
    face_box: tuple | None = None
    eyes: tuple | None = None
    notice: str = ''

    @property
    def face_found(self):
        return self.method != 'centre'

    def to_json(self):
        return {
            'method': self.method,
            'face_found': self.face_found,
            'notice': self.notice,
            'face_box': None
            if self.face_box is None
            else [round(float(v), 1) for v in self.face_box],
            'eyes': None
            if self.eyes is None
            else [[round(float(v), 1) for v in e] for e in self.eyes],
        }


def _classifiers():
    if not hasattr(_local, 'face'):
        import cv2

        root = cv2.data.haarcascades
        _local.face = cv2.CascadeClassifier(root + 'haarcascade_frontalface_default.xml')
        _local.eye = cv2.CascadeClassifier(root + 'haarcascade_eye.xml')
        if _local.face.empty() or _local.eye.empty():
            raise RuntimeError(f"OpenCV's Haar cascades are missing from {root}")
    return _local.face, _local.eye


EYE_SEARCH_WIDTH = 200  # face crops are resized to this width for eyes
ROTATIONS = (0.0, -20.0, 20.0)  # tried in turn until both eyes are found


def _find_eyes(gray, box):
    """Both eye centres inside a face box of `gray`, in gray's pixels, or None."""
    import cv2

    _, eye_cascade = _classifiers()
    x, y, fw, fh = box
    top = gray[int(y) : int(y + 0.6 * fh), int(x) : int(x + fw)]
    if top.size == 0:
        return None
    k = EYE_SEARCH_WIDTH / top.shape[1]
    top = cv2.resize(
        top,
        (EYE_SEARCH_WIDTH, max(1, round(top.shape[0] * k))),
        interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR,
    )
    found = eye_cascade.detectMultiScale(
        top, scaleFactor=1.05, minNeighbors=4, minSize=(18, 18), maxSize=(80, 80)
    )
    centres = [(ex + ew / 2, ey + eh / 2, ew * eh) for ex, ey, ew, eh in found]
    half = EYE_SEARCH_WIDTH / 2
    left = sorted((c for c in centres if c[0] < half), key=lambda c: -c[2])
    right = sorted((c for c in centres if c[0] >= half), key=lambda c: -c[2])
    if not (left and right):
        return None
    (lx, ly, _), (rx, ry, _) = left[0], right[0]
    if abs(ry - ly) > 0.25 * EYE_SEARCH_WIDTH or not 0.2 < (rx - lx) / EYE_SEARCH_WIDTH < 0.7:
        return None
    return ((x + lx / k, y + ly / k), (x + rx / k, y + ry / k))


def detect_face(rgb):
    """uint8 [H, W, 3] -> (face box (x, y, w, h) or None, eye centres ((x, y), (x, y)) or None),
    in the input's pixel coordinates (the box is that of the upright search).

    The largest frontal face wins; its eyes are searched in the upper 60% of the box, resized to
    a fixed width. Faces tilted by more than the cascade tolerates are found by searching the
    photo rotated by each of ROTATIONS in turn."""
    import cv2

    face_cascade, _ = _classifiers()
    h, w = rgb.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if scale < 1.0:
        gray = cv2.resize(
            gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
        )
    gray = cv2.equalizeHist(gray)
    gh, gw = gray.shape
    min_side = max(24, int(0.08 * min(gh, gw)))
    first_box = None
    region, (ox, oy) = gray, (0, 0)  # rotated retries search around an upright face, if any
    for angle in ROTATIONS:
        rh, rw = region.shape
        rot = cv2.getRotationMatrix2D((rw / 2, rh / 2), angle, 1.0)
        view = (
            region
            if angle == 0
            else cv2.warpAffine(
                region, rot, (rw, rh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
        )
        faces = face_cascade.detectMultiScale(
            view, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side)
        )
        if len(faces) == 0:
            continue
        box = tuple(float(v) for v in max(faces, key=lambda r: r[2] * r[3]))
        inv = cv2.invertAffineTransform(rot)

        def to_photo(px, py, inv=inv):  # rotated-region pixel -> original photo pixel
            qx, qy = inv @ np.array([px, py, 1.0])
            return (qx + ox) / scale, (qy + oy) / scale

        cx, cy = to_photo(box[0] + box[2] / 2, box[1] + box[3] / 2)
        face = (cx - box[2] / scale / 2, cy - box[3] / scale / 2, box[2] / scale, box[3] / scale)
        eyes = _find_eyes(view, box)
        if eyes is not None:
            return face, tuple(to_photo(ex, ey) for ex, ey in eyes)
        if first_box is None:
            first_box = face
            # search the rotated views only in a window of twice the face around it
            x, y, fw, fh = box
            x0, y0 = int(max(0, x - fw / 2)), int(max(0, y - fh / 2))
            x1, y1 = int(min(gw, x + 1.5 * fw)), int(min(gh, y + 1.5 * fh))
            region, (ox, oy) = gray[y0:y1, x0:x1], (x0, y0)
    return first_box, None


def _eye_transform(eyes):
    """2x3 similarity matrix mapping the detected eyes onto CELEBA_EYES."""
    (lx, ly), (rx, ry) = eyes
    (tlx, tly), (trx, try_) = CELEBA_EYES
    src = complex(rx - lx, ry - ly)
    dst = complex(trx - tlx, try_ - tly)
    a = dst / src  # rotation + scale as one complex number
    t = complex(tlx, tly) - a * complex(lx, ly)
    return np.array([[a.real, -a.imag, t.real], [a.imag, a.real, t.imag]], np.float64)


def _box_transform(box):
    x, y, w, _ = box
    tx, ty, tw = CELEBA_FACE_BOX
    s = tw / w
    return np.array([[s, 0.0, tx - s * x], [0.0, s, ty - s * y]], np.float64)


def _warp(rgb, matrix):
    import cv2

    # Anti-alias first when shrinking a lot: warpAffine samples, it does not average.
    s = float(np.hypot(matrix[0, 0], matrix[1, 0]))
    if s < 0.5:
        f = 1.0 / (2 * s)
        h, w = rgb.shape[:2]
        rgb = cv2.resize(
            rgb, (max(1, round(w / f)), max(1, round(h / f))), interpolation=cv2.INTER_AREA
        )
        matrix = matrix @ np.array([[f, 0, 0], [0, f, 0], [0, 0, 1]], np.float64)
    return cv2.warpAffine(
        rgb, matrix, ALIGNED_SIZE, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def _centre_crop(rgb):
    """The largest centred crop with CelebA's 178:218 aspect, resized to 178x218."""
    import cv2

    h, w = rgb.shape[:2]
    aw, ah = ALIGNED_SIZE
    if w * ah > h * aw:  # too wide
        cw, ch = h * aw / ah, h
    else:
        cw, ch = w, w * ah / aw
    left, top = (w - cw) / 2, (h - ch) / 2
    s = aw / cw
    matrix = np.array([[s, 0, -s * left], [0, s, -s * top]], np.float64)
    return (
        _warp(rgb, matrix)
        if s < 0.5
        else cv2.warpAffine(
            rgb, matrix, ALIGNED_SIZE, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
        )
    )


def align_face(rgb, image_size):
    """Align a photo (uint8 [H, W, 3]) like CelebA and resize it to the model's size.

    Returns an `Alignment` (see there); never raises for a photo without a face.
    """
    from PIL import Image

    from glow_tf.data.images import crop_and_resize

    rgb = np.ascontiguousarray(np.asarray(rgb, np.uint8)[..., :3])
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB image [H, W, 3], got shape {rgb.shape}")
    box, eyes = detect_face(rgb)
    if eyes is not None:
        aligned, method, notice = _warp(rgb, _eye_transform(eyes)), 'eyes', ''
    elif box is not None:
        aligned, method = _warp(rgb, _box_transform(box)), 'face'
        notice = (
            "Face found but not both eyes: aligned by the face box only (the face may be tilted)."
        )
    else:
        aligned, method = _centre_crop(rgb), 'centre'
        notice = (
            "No face found: using a centre crop of the photo. For a good result use a "
            "frontal face that fills a good part of the picture."
        )
    image = crop_and_resize(Image.fromarray(aligned), int(image_size))
    return Alignment(
        image=image, aligned=aligned, method=method, face_box=box, eyes=eyes, notice=notice
    )
