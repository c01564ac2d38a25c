"""The editor's web server: a Flask app serving the page and a small JSON API.

    app = create_app(editor)              # editor: a glow_tf.editor.engine.FaceEditor
    app.run('127.0.0.1', 8000, threaded=True)

API (all answers are JSON; images are PNG data URLs `data:image/png;base64,...`):

    GET  /api/info                       model, attributes (all, default sliders), limits
    GET  /api/gallery                    {"faces": [{"id", "name", "image"}]}
    POST /api/encode   multipart field `image` (a photo: aligned + encoded), or JSON
                       {"gallery": "<id>"}
                       -> {"face", "input", "reconstruction", "exact",
                           "alignment": {"method", "face_found", "notice", ...}}
    POST /api/edit     {"face": id, "strengths": {"Smiling": 0.8, "Young": -0.5},
                        "levels": [3, 4]?}   (levels: 1 = finest; default all)
                       -> {"image", "strengths", "levels"}
    POST /api/mix      {"a": id, "b": id, "t": 0.3, "strengths": {...}?}  -> {"image"}
    POST /api/sample   {"temperature": 0.7, "seed": 123?}
                       -> {"face", "image", "seed", "temperature"}
    POST /api/variations, /api/manipulate_range, /api/mix_range, /api/animate
                       level-wise variations, the original demo's range endpoints and GIF /
                       MP4 downloads: see glow_tf/editor/ranges.py

Errors: 4xx with {"error": "<what was wrong>"}: 400 malformed request, 404 unknown face or
route, 405 wrong method, 413 upload larger than `max_upload_bytes`, 415 not an accepted image
type, 422 a well-formed request the editor cannot do (unknown attribute, out-of-range number,
image with too many pixels, undecodable file). Unexpected failures answer 500 with a message; the
server keeps serving after any of them.

Nothing from the client is unpickled or evaluated: JSON bodies are parsed by Flask's JSON parser
and checked field by field; uploads are bounded in bytes (Flask's MAX_CONTENT_LENGTH, checked
before the body is read), decoded by PIL only for the accepted formats, and refused above
`max_pixels` pixels before any pixel data is decoded (PIL's decompression-bomb check is an
error here, not a warning).
"""

from __future__ import annotations

import base64
import io
import logging
import os
import time
import warnings

import numpy as np

from glow_tf.editor.engine import UnknownFace, png_bytes
from glow_tf.errors import InputError

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'static')
ACCEPTED_FORMATS = ('JPEG', 'PNG', 'WEBP', 'BMP', 'GIF')
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000

log = logging.getLogger('glow_tf.editor')


class ApiError(Exception):
    """An error answered as JSON {"error": message} with an HTTP status.

    Args:
        status: the HTTP status code (400, 404, 413, 415, 422, ...).
        message: what was wrong with the request, for the page to show.
    """

    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = int(status), message


def data_url(image):
    return 'data:image/png;base64,' + base64.b64encode(png_bytes(image)).decode('ascii')


def decode_upload(data, max_pixels=MAX_PIXELS, name='upload'):
    """Image file bytes -> uint8 RGB [H, W, 3], or ApiError (415 wrong type, 422 too large or
    undecodable). EXIF orientation is applied (phone photos)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    from glow_tf.data.errors import DataError
    from glow_tf.data.images import to_rgb

    if not data:
        raise ApiError(400, f"{name}: empty file")
    with warnings.catch_warnings():
        warnings.simplefilter('error', Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
        except UnidentifiedImageError:
            raise ApiError(
                415, f"{name}: not an image of an accepted type ({', '.join(ACCEPTED_FORMATS)})"
            ) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ApiError(
                422, f"{name}: image has too many pixels (at most {max_pixels:,})"
            ) from None
        except (OSError, SyntaxError, ValueError, EOFError) as e:  # e.g. a header cut short
            raise ApiError(
                422, f"{name}: cannot read the image; the file is corrupt or truncated ({e})"
            ) from None
        w, h = img.size
        if w < 1 or h < 1:
            raise ApiError(422, f"{name}: image has no pixels ({w}x{h})")
        if w * h > max_pixels:
            raise ApiError(
                422,
                f"{name}: image is {w}x{h} = {w * h:,} pixels; at most {max_pixels:,} are accepted",
            )
        try:
            img.load()
            img = ImageOps.exif_transpose(img)
            img = to_rgb(img, name, strict=False)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ApiError(
                422, f"{name}: image has too many pixels (at most {max_pixels:,})"
            ) from None
        except DataError as e:
            raise ApiError(422, str(e)) from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as e:
            raise ApiError(
                422, f"{name}: cannot decode the image; the file is corrupt or truncated ({e})"
            ) from None
    return np.asarray(img, np.uint8)


def favicon_png(size=32):
    """PNG bytes of the page's icon: a face-coloured disc with two eyes (drawn, no file)."""
    from PIL import Image, ImageDraw

    img = Image.new('RGBA', (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.ellipse((2, 2, size - 3, size - 3), fill=(224, 172, 140, 255))
    for x in (size * 11 // 32, size * 19 // 32):
        draw.ellipse(
            (x - 2, size * 12 // 32 - 2, x + 2, size * 12 // 32 + 2), fill=(40, 30, 30, 255)
        )
    out = io.BytesIO()
    img.save(out, 'PNG')
    return out.getvalue()


def _json_body(request):
    if not request.is_json:
        raise ApiError(400, "expected a JSON body (Content-Type: application/json)")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


def _number(body, key, default):
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ApiError(422, f"'{key}' must be a number, got {value!r:.40}")
    return value


def create_app(editor, max_upload_bytes=MAX_UPLOAD_BYTES, max_pixels=MAX_PIXELS):
    """The Flask app for one FaceEditor (see the module docstring for the API)."""
    from flask import Flask, jsonify, request, send_from_directory
    from werkzeug.exceptions import HTTPException

    app = Flask('glow_tf.editor', static_folder=STATIC_DIR, static_url_path='/static')
    app.config['MAX_CONTENT_LENGTH'] = int(max_upload_bytes)
    app.config['JSON_SORT_KEYS'] = False
    app.extensions['glow_editor'] = editor

    def face_json(face, with_images=True):
        out = {'face': face.id, 'source': face.source, 'exact': face.exact, 'meta': face.meta}
        if with_images:
            out['input'] = data_url(face.input)
            out['reconstruction'] = data_url(face.reconstruction)
        return out

    @app.errorhandler(ApiError)
    def api_error(e):
        return jsonify(error=e.message), e.status

    @app.errorhandler(HTTPException)
    def http_error(e):
        if e.code == 413:
            msg = (
                f"upload too large: at most {max_upload_bytes:,} bytes "
                f"({max_upload_bytes / 2**20:.0f} MiB) are accepted"
            )
        else:
            msg = e.description or e.name
        return jsonify(error=msg), e.code

    @app.errorhandler(Exception)
    def unexpected(e):
        log.exception("editor: unexpected error")
        return jsonify(
            error=f"internal error ({type(e).__name__}); the server is still running"
        ), 500

    @app.after_request
    def headers(resp):
        resp.headers['X-Content-Type-Options'] = 'nosniff'
        resp.headers['Content-Security-Policy'] = (
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'"
        )
        resp.headers['Cache-Control'] = 'no-store'
        return resp

    @app.get('/')
    def index():
        return send_from_directory(STATIC_DIR, 'index.html')

    favicon = favicon_png()

    @app.get('/favicon.ico')
    def favicon_ico():  # browsers ask for it whatever the page links; answer, not 404
        return app.response_class(favicon, mimetype='image/png')

    @app.get('/api/info')
    def info():
        out = editor.info()
        out['limits'] = {
            'max_upload_bytes': int(max_upload_bytes),
            'max_pixels': int(max_pixels),
            'image_types': list(ACCEPTED_FORMATS),
        }
        manifest = getattr(editor, 'manifest', None) or {}
        out['about'] = manifest.get('about', {})
        # the Random tab's starting temperature: the one the face judge scored best for a
        # packaged model (model.json `sample_temperature`), else the paper's 0.7
        out['sample_temperature'] = float(manifest.get('sample_temperature', 0.7))
        out['fingerprint'] = editor.flow.fingerprint
        return jsonify(out)

    @app.get('/api/gallery')
    def gallery():
        faces = [
            {'id': face.id, 'name': face.meta.get('file', face.id), 'image': data_url(face.input)}
            for face in editor.gallery_faces()  # an unreadable file is skipped, with a warning
        ]
        return jsonify(faces=faces)

    @app.post('/api/encode')
    def encode():
        t0 = time.perf_counter()
        if request.is_json:
            body = _json_body(request)
            face_id = body.get('gallery')
            if not isinstance(face_id, str):
                raise ApiError(
                    400,
                    "JSON encode requests name a gallery face: {\"gallery\": id}; "
                    "photos are uploaded as multipart field 'image'",
                )
            if face_id not in editor.gallery:
                raise ApiError(404, f"no gallery face {face_id!r:.80}")
            face = editor.face(face_id)
            out = face_json(face)
            out['alignment'] = {'method': 'celeba', 'face_found': True, 'notice': ''}
        else:
            upload = request.files.get('image')
            if upload is None:
                raise ApiError(400, "no file: send the photo as multipart/form-data field 'image'")
            name = os.path.basename(upload.filename or 'upload')[:100] or 'upload'
            data = upload.read(int(max_upload_bytes) + 1)
            if len(data) > max_upload_bytes:
                raise ApiError(413, f"upload too large: at most {max_upload_bytes:,} bytes")
            rgb = decode_upload(data, max_pixels, name)
            from glow_tf.editor.align import align_face

            alignment = align_face(rgb, editor.image_shape[0])
            face = editor.encode(
                alignment.image, 'upload', {'file': name, 'alignment': alignment.to_json()}
            )
            out = face_json(face)
            out['alignment'] = alignment.to_json()
            out['aligned'] = data_url(alignment.aligned)
        out['ms'] = round(1000 * (time.perf_counter() - t0), 1)
        return jsonify(out)

    @app.post('/api/edit')
    def edit():
        body = _json_body(request)
        levels = editor.check_levels(body.get('levels'))
        image, used = editor.edit(body.get('face'), body.get('strengths', {}), levels)
        return jsonify(face=body.get('face'), image=data_url(image), strengths=used, levels=levels)

    @app.post('/api/mix')
    def mix():
        body = _json_body(request)
        t = _number(body, 't', 0.5)
        image, used = editor.mix(body.get('a'), body.get('b'), t, body.get('strengths', {}))
        return jsonify(
            a=body.get('a'), b=body.get('b'), t=float(t), image=data_url(image), strengths=used
        )

    @app.post('/api/sample')
    def sample():
        body = _json_body(request) if request.data else {}
        temperature = _number(body, 'temperature', 0.7)
        seed = body.get('seed')
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ApiError(422, f"'seed' must be an integer, got {seed!r:.40}")
        face = editor.sample(temperature, seed)
        out = face_json(face, with_images=False)
        out.update(
            image=data_url(face.reconstruction),
            seed=face.meta['seed'],
            temperature=face.meta['temperature'],
        )
        return jsonify(out)

    from glow_tf.editor.ranges import add_range_routes

    add_range_routes(app, editor, _json_body, data_url, ApiError)

    # Editor errors: a bad value is 422, an unknown face 404.
    @app.errorhandler(InputError)
    def input_error(e):
        return jsonify(error=str(e)), 422

    @app.errorhandler(UnknownFace)
    def unknown_face(e):
        return jsonify(error=str(e.args[0]) if e.args else 'unknown face'), 404

    return app
