"""Shared by tests/test_editor_api.py and tests/test_editor_browser.py (no tests here): the face
editor over the session's tiny trained Glow (tests/tiny_model.py) with real attribute directions
from labelled CelebA faces, held-out gallery faces, a real threaded HTTP server on 127.0.0.1, and
photos to upload."""

import contextlib
import io
import shutil
import threading

import numpy as np
import pytest

from tests import tiny_model as fx

_CACHE = {}
GALLERY = ('008101.jpg', '008201.jpg', '008305.jpg', '008420.jpg')  # test split of the subset


def editor_files(tmp_path_factory):
    """(logdir, directions.npz, gallery dir), built once per session."""
    if 'files' not in _CACHE:
        from glow_tf.tools import manipulation as M

        logdir = fx.tiny_logdir(tmp_path_factory)
        flow = fx.tiny_flow(tmp_path_factory)
        root = tmp_path_factory.mktemp('editor')
        files, labels, names = M.celeba_labels(fx.CELEBA_ATTR, fx.CELEBA_IMAGES, n_images=96)
        d, n_pos, n_neg = M.compute_directions(flow, files, labels, names)
        directions = M.save_directions(
            root / 'directions.npz', flow, names, d, n_pos, n_neg, 'test'
        )
        gallery = root / 'gallery'
        gallery.mkdir()
        for f in GALLERY:
            shutil.copy(fx.CELEBA_IMAGES / f, gallery / f)
        _CACHE['files'] = (logdir, directions, gallery)
    return _CACHE['files']


def make_editor(tmp_path_factory):
    from glow_tf.editor.engine import build_editor

    logdir, directions, gallery = editor_files(tmp_path_factory)
    return build_editor(str(logdir), str(directions), str(gallery))


@pytest.fixture(scope='module', name='editor')
def editor_fixture(tmp_path_factory):
    """Fixture `editor`: a module's FaceEditor (import editor_fixture into the test module)."""
    return make_editor(tmp_path_factory)


@pytest.fixture(scope='module', name='client')
def client_fixture(editor):
    """Fixture `client`: a Flask test client of `editor`'s app (import client_fixture)."""
    from glow_tf.editor.app import create_app

    return create_app(editor).test_client()


def post(client, path, body):
    """(status, JSON answer) of a JSON POST through a Flask test client."""
    resp = client.post(path, json=body)
    return resp.status_code, resp.get_json()


@contextlib.contextmanager
def serve(app):
    """Run a Flask app on demo.py's own server (waitress, threaded) at 127.0.0.1:<free port>;
    yields its base URL."""
    from glow_tf.editor.server import make_server

    server = make_server(app, '127.0.0.1', 0, max_upload_bytes=10 * 2**20)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{server.effective_port}'
    finally:
        # waitress's loop runs while any connection is open, and a browser keeps its keep-alive
        # connections: close them as waitress's idle-channel maintenance does (will_close), wake
        # the loop, so the thread ends now instead of after the 10 s join timeout
        for channel in list(server.active_channels.values()):
            channel.will_close = True
        server.pull_trigger()
        server.close()
        thread.join(10)


def decode_data_url(url):
    import base64

    from PIL import Image

    assert url.startswith('data:image/png;base64,')
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(',', 1)[1]))).convert('RGB'))


def photo_with_face(angle=12.0, scale=2.0, size=(800, 600)):
    """A real CelebA face (178x218 aligned original) rotated, enlarged and pasted at an
    off-centre position on a plain background: uint8 [H, W, 3]."""
    import cv2
    from PIL import Image

    face = np.asarray(Image.open(fx.CELEBA / 'img_align_celeba' / '000001.jpg').convert('RGB'))
    canvas = np.full((size[1], size[0], 3), 90, np.uint8)
    m = cv2.getRotationMatrix2D((89, 109), angle, scale)
    m[:, 2] += (size[0] * 0.35, size[1] * 0.2)
    return cv2.warpAffine(face, m, size, dst=canvas, borderMode=cv2.BORDER_TRANSPARENT)


def png_file_bytes(rgb, fmt='PNG'):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt)
    return buf.getvalue()
