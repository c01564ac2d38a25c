"""The face editor's JSON API (glow_tf/editor) on a tiny trained Glow, real CelebA faces and real
attribute directions: exact encodes, edits equal to the latent arithmetic, mixing, sampling,
photo alignment, and bad requests answered with a 4xx message by a server that keeps serving."""

import io
import json
import threading
import urllib.error
import urllib.request
import uuid

import numpy as np
import pytest

from tests import editor_testing as ed
from tests import tiny_model as fx
from tests.editor_testing import client_fixture, editor_fixture, post  # noqa: F401

pytest.importorskip('flask')
pytest.importorskip('cv2')


def direction(editor, name):
    return editor._matrix[editor.names.index(name)].reshape(editor.image_shape)


def test_info_and_gallery(client, editor):
    info = client.get('/api/info').get_json()
    d = np.load(ed.editor_files(None)[1])  # attributes with both positive and negative faces
    assert info['attributes'] == [
        str(n) for n, p, q in zip(d['names'], d['n_pos'], d['n_neg']) if p and q
    ]
    assert len(info['attributes']) >= 35 and 'Smiling' in info['attributes']
    assert set(info['default_attributes']) <= set(info['attributes'])
    assert 'Smiling' in info['default_attributes'] and info['image_shape'] == [16, 16, 3]
    assert info['sample_temperature'] == 0.7  # no manifest: the paper's temperature
    assert info['fingerprint'] == editor.flow.fingerprint
    faces = client.get('/api/gallery').get_json()['faces']
    assert [f['name'] for f in faces] == list(ed.GALLERY)
    from glow_tf.tools.images import load_images

    want = load_images([fx.CELEBA_IMAGES / ed.GALLERY[0]], editor.image_shape)[0]
    np.testing.assert_array_equal(ed.decode_data_url(faces[0]['image']), want)
    page = client.get('/')
    assert page.status_code == 200 and b'editor.js' in page.data
    assert client.get('/static/editor.js').status_code == 200


def test_warm_up_compiles_the_model_and_caches_the_face_the_page_opens_with(tmp_path_factory):
    from glow_tf.editor.app import create_app

    editor = ed.make_editor(tmp_path_factory)  # a new flow: nothing compiled, nothing cached
    assert not editor._faces and editor.flow.decode_fn.experimental_get_tracing_count() == 0
    assert editor.warm_up() > 0
    assert editor.flow.encode_fn.experimental_get_tracing_count() == 1
    assert editor.flow.decode_fn.experimental_get_tracing_count() == 1
    assert list(editor._faces) == list(editor.gallery)  # what the page asks for first, cached
    encoded = editor.timings['encode']
    faces = create_app(editor).test_client().get('/api/gallery').get_json()['faces']
    assert [f['id'] for f in faces] == list(editor.gallery)
    assert editor.timings['encode'] == encoded  # answered from the cache: nothing encoded again
    assert all(editor.face(f['id']).exact for f in faces)  # decode(encode(x)) == x


def test_an_unreadable_gallery_file_is_skipped_with_a_warning(tmp_path_factory, tmp_path, caplog):
    import shutil

    from glow_tf.editor.engine import build_editor

    logdir, directions, gallery = ed.editor_files(tmp_path_factory)
    shutil.copy(gallery / ed.GALLERY[0], tmp_path / 'a.jpg')
    (tmp_path / 'b.jpg').write_bytes(b'not a jpeg')
    editor = build_editor(str(logdir), str(directions), str(tmp_path))
    assert len(editor.gallery) == 2
    with caplog.at_level('WARNING', logger='glow_tf.editor'):
        faces = editor.gallery_faces()
    assert [f.meta['file'] for f in faces] == ['a.jpg']
    assert any('b.jpg' in r.getMessage() for r in caplog.records)


def test_warm_up_without_a_readable_gallery_face_compiles_on_a_grey_image(
    tmp_path_factory, tmp_path
):
    from glow_tf.editor.engine import build_editor

    logdir, directions, _ = ed.editor_files(tmp_path_factory)
    (tmp_path / 'b.jpg').write_bytes(b'not a jpeg')
    editor = build_editor(str(logdir), str(directions), str(tmp_path))
    assert editor.warm_up() > 0 and not editor._faces
    assert editor.flow.encode_fn.experimental_get_tracing_count() == 1
    assert editor.flow.decode_fn.experimental_get_tracing_count() == 1


def test_encode_is_exact_and_strength_zero_gives_the_input_back(client):
    code, face = post(client, '/api/encode', {'gallery': 'gallery-008201'})
    assert code == 200 and face['exact'] is True
    x = ed.decode_data_url(face['input'])
    np.testing.assert_array_equal(ed.decode_data_url(face['reconstruction']), x)
    for strengths in ({}, {'Smiling': 0}, {'smiling': 0.0, 'Male': 0}):
        code, out = post(client, '/api/edit', {'face': face['face'], 'strengths': strengths})
        assert code == 200
        np.testing.assert_array_equal(ed.decode_data_url(out['image']), x)


def test_sliders_combine_as_latent_arithmetic(client, editor):
    from glow_tf.tools.manipulation import edit

    code, face = post(client, '/api/encode', {'gallery': 'gallery-008305'})
    x = ed.decode_data_url(face['input'])
    code, one = post(client, '/api/edit', {'face': face['face'], 'strengths': {'Smiling': 1.5}})
    assert code == 200 and one['strengths'] == {'Smiling': 1.5}
    got = ed.decode_data_url(one['image'])
    # the same edit through glow_tf.tools.manipulation (what `manipulate.py edit` runs)
    np.testing.assert_array_equal(
        got, edit(editor.flow, x[None], direction(editor, 'Smiling'), [1.5])[0, 0]
    )
    assert (got != x).mean() > 0.3
    code, two = post(
        client, '/api/edit', {'face': face['face'], 'strengths': {'smiling': 0.7, 'Male': -0.4}}
    )
    assert two['strengths'] == {'Smiling': 0.7, 'Male': -0.4}
    z = editor.flow.encode(x[None])[0]
    want = editor.flow.decode(
        (
            z
            + np.float32(0.7) * direction(editor, 'Smiling')
            + np.float32(-0.4) * direction(editor, 'Male')
        )[None]
    )[0]
    np.testing.assert_array_equal(ed.decode_data_url(two['image']), want)


def test_mix_endpoints_are_the_faces_and_the_middle_is_the_interpolation(client, editor):
    from glow_tf.tools.manipulation import interpolate

    a = post(client, '/api/encode', {'gallery': 'gallery-008101'})[1]
    b = post(client, '/api/encode', {'gallery': 'gallery-008420'})[1]
    xa, xb = ed.decode_data_url(a['input']), ed.decode_data_url(b['input'])
    for t, want in ((0, xa), (1, xb), (0.5, interpolate(editor.flow, xa, xb, 3)[1])):
        code, out = post(client, '/api/mix', {'a': a['face'], 'b': b['face'], 't': t})
        assert code == 200
        np.testing.assert_array_equal(ed.decode_data_url(out['image']), want)


def test_sample_matches_sample_py_and_is_editable(client, editor):
    code, s = post(client, '/api/sample', {'temperature': 0.7, 'seed': 11})
    assert code == 200 and s['seed'] == 11
    img = ed.decode_data_url(s['image'])
    np.testing.assert_array_equal(img, editor.flow.sample(1, 0.7, seed=11)[0])
    code, out = post(client, '/api/edit', {'face': s['face'], 'strengths': {'Young': 0}})
    np.testing.assert_array_equal(ed.decode_data_url(out['image']), img)
    code, out = post(client, '/api/edit', {'face': s['face'], 'strengths': {'Young': 1}})
    assert code == 200 and (ed.decode_data_url(out['image']) != img).any()


def test_uploaded_photo_is_aligned_like_celeba_and_encoded(client, editor):
    from PIL import Image

    from glow_tf.editor.align import CELEBA_EYES, align_face, detect_face

    jpeg = ed.png_file_bytes(ed.photo_with_face(angle=12, scale=2.0), 'JPEG')
    resp = client.post(
        '/api/encode',
        data={'image': (io.BytesIO(jpeg), 'me.jpg')},
        content_type='multipart/form-data',
    )
    out = resp.get_json()
    assert resp.status_code == 200, out
    assert out['alignment']['method'] == 'eyes' and out['alignment']['notice'] == ''
    assert out['exact'] is True and out['face'].startswith('upload-')
    # the aligned crop puts the eyes where CelebA's aligned images have them
    aligned = ed.decode_data_url(out['aligned'])
    assert aligned.shape == (218, 178, 3)
    _, eyes = detect_face(aligned)
    assert eyes is not None
    assert np.abs(np.array(eyes) - np.array(CELEBA_EYES)).max() < 4.0
    # the encoded image is that crop at the model's size
    photo = np.asarray(Image.open(io.BytesIO(jpeg)).convert('RGB'))
    np.testing.assert_array_equal(ed.decode_data_url(out['input']), align_face(photo, 16).image)
    # and the upload can be edited like any face
    code, e = post(client, '/api/edit', {'face': out['face'], 'strengths': {'Smiling': 0}})
    np.testing.assert_array_equal(ed.decode_data_url(e['image']), ed.decode_data_url(out['input']))


def test_truncated_jpeg_upload_is_a_422_naming_the_file(client):
    """A JPEG cut short anywhere (inside its header or its scan data) is the user's file's fault:
    422 with the file's name, never a 500, and the server keeps answering."""
    jpeg = ed.png_file_bytes(ed.photo_with_face(angle=0, scale=2.0), 'JPEG')
    for cut in (100, 300, 600, len(jpeg) // 2):
        resp = client.post(
            '/api/encode',
            data={'image': (io.BytesIO(jpeg[:cut]), 'holiday.jpg')},
            content_type='multipart/form-data',
        )
        out = resp.get_json()
        assert resp.status_code == 422, (cut, out)
        assert 'holiday.jpg' in out['error'] and 'truncated' in out['error'], out
    resp = client.post(
        '/api/encode',
        data={'image': (io.BytesIO(jpeg), 'holiday.jpg')},
        content_type='multipart/form-data',
    )
    assert resp.status_code == 200


def test_favicon_is_served_as_a_png(client):
    from PIL import Image

    resp = client.get('/favicon.ico')
    assert resp.status_code == 200 and resp.mimetype == 'image/png'
    assert Image.open(io.BytesIO(resp.data)).size == (32, 32)


def test_photo_without_a_face_gets_a_centre_crop_and_a_notice(client):
    rng = np.random.default_rng(0)
    flat = np.clip(rng.normal(128, 3, (300, 500, 3)), 0, 255).astype(np.uint8)
    resp = client.post(
        '/api/encode',
        data={'image': (io.BytesIO(ed.png_file_bytes(flat)), 'wall.png')},
        content_type='multipart/form-data',
    )
    out = resp.get_json()
    assert resp.status_code == 200
    assert out['alignment']['method'] == 'centre' and out['alignment']['face_found'] is False
    assert 'No face found' in out['alignment']['notice']


# ---- a real server: bad requests get a 4xx JSON message, and it keeps serving ------------------
def _request(url, data=None, content_type=None, method=None):
    req = urllib.request.Request(url, data=data, method=method)
    if content_type:
        req.add_header('Content-Type', content_type)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _multipart(field, filename, payload):
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
        f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    body += payload + f'\r\n--{boundary}--\r\n'.encode()
    return body, f'multipart/form-data; boundary={boundary}'


def test_bad_requests_get_a_4xx_with_a_message_and_the_server_keeps_serving(editor):
    import pickle

    from glow_tf.editor.app import create_app

    app = create_app(editor, max_upload_bytes=200_000, max_pixels=250_000)
    good_jpeg = ed.png_file_bytes(ed.photo_with_face(size=(400, 300)), 'JPEG')
    with ed.serve(app) as base:

        def js(path, body):
            return _request(base + path, json.dumps(body).encode(), 'application/json')

        cases = [
            # (request, status, words in the message)
            (
                lambda: _request(
                    base + '/api/encode', *_multipart('image', 'x.jpg', b'not an image')
                ),
                415,
                'accepted type',
            ),
            (
                lambda: _request(
                    base + '/api/encode',
                    *_multipart('image', 'cut.jpg', good_jpeg[: len(good_jpeg) // 3]),
                ),
                422,
                'cut.jpg',
            ),
            (
                lambda: _request(
                    base + '/api/encode',
                    *_multipart(
                        'image', 'big.png', ed.png_file_bytes(np.zeros((600, 600, 3), np.uint8))
                    ),
                ),
                422,
                '360,000 pixels',
            ),
            (
                lambda: _request(
                    base + '/api/encode', *_multipart('image', 'huge.bin', b'\0' * 300_000)
                ),
                413,
                'too large',
            ),
            (
                lambda: _request(base + '/api/encode', *_multipart('photo', 'x.jpg', good_jpeg)),
                400,
                "field 'image'",
            ),
            (
                lambda: _request(
                    base + '/api/edit', pickle.dumps({'face': 'x'}), 'application/octet-stream'
                ),
                400,
                'JSON',
            ),
            (
                lambda: _request(base + '/api/edit', b'{"face": ', 'application/json'),
                400,
                'JSON object',
            ),
            (lambda: js('/api/edit', ['face']), 400, 'JSON object'),
            (
                lambda: js('/api/edit', {'face': 'upload-0000', 'strengths': {}}),
                404,
                'unknown face',
            ),
            (lambda: js('/api/edit', {'strengths': {}}), 422, 'face id'),
            (
                lambda: js('/api/edit', {'face': 'gallery-008101', 'strengths': {'Smilling': 1}}),
                422,
                'Did you mean Smiling',
            ),
            (
                lambda: js(
                    '/api/edit', {'face': 'gallery-008101', 'strengths': {'Smiling': 'lots'}}
                ),
                422,
                'must be a number',
            ),
            (
                lambda: js('/api/edit', {'face': 'gallery-008101', 'strengths': {'Smiling': 1e9}}),
                422,
                'finite number',
            ),
            (
                lambda: _request(
                    base + '/api/edit',
                    b'{"face": "gallery-008101", "strengths": {"Male": NaN}}',
                    'application/json',
                ),
                422,
                'finite number',
            ),
            (
                lambda: js('/api/edit', {'face': 'gallery-008101', 'strengths': [1, 2]}),
                422,
                'object',
            ),
            (
                lambda: js('/api/mix', {'a': 'gallery-008101', 'b': 'gallery-008201', 't': 3}),
                422,
                '[0, 1]',
            ),
            (lambda: js('/api/sample', {'temperature': -1}), 422, 'temperature'),
            (lambda: js('/api/sample', {'temperature': 0.5, 'seed': 'abc'}), 422, 'seed'),
            (lambda: js('/api/encode', {'gallery': '../../etc/passwd'}), 404, 'no gallery face'),
            (lambda: _request(base + '/api/nothing'), 404, ''),
            (lambda: _request(base + '/api/edit', method='GET'), 405, ''),
        ]
        for i, (call, status, words) in enumerate(cases):
            code, body = call()
            assert code == status, (i, code, body)
            assert isinstance(body.get('error'), str) and words in body['error'], (i, body)
            assert _request(base + '/api/info')[0] == 200  # still serving
        # and a good upload still works after all that
        code, body = _request(base + '/api/encode', *_multipart('image', 'ok.jpg', good_jpeg))
        assert code == 200 and body['alignment']['face_found']


def test_concurrent_requests_give_the_sequential_answers(editor):
    from glow_tf.editor.app import create_app

    app = create_app(editor)
    faces = [f'gallery-{n[:-4]}' for n in ed.GALLERY]
    jobs = [
        (faces[i % 4], {'Smiling': round(0.25 * (i % 5) - 0.5, 2), 'Young': 0.3}) for i in range(16)
    ]
    want = [editor.edit(f, s)[0] for f, s in jobs]
    got = [None] * len(jobs)
    with ed.serve(app) as base:

        def run(i):
            f, s = jobs[i]
            code, body = _request(
                base + '/api/edit',
                json.dumps({'face': f, 'strengths': s}).encode(),
                'application/json',
            )
            got[i] = (code, body)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    for (code, body), w in zip(got, want):
        assert code == 200
        np.testing.assert_array_equal(ed.decode_data_url(body['image']), w)


def test_demo_cli_reports_bad_arguments(tmp_path, capsys):
    from glow_tf.cli.demo import main

    for argv, words in (
        (['--model', str(tmp_path / 'missing')], 'no such file'),
        (['--port', '70000'], '--port'),
        (['--model', str(tmp_path), '--max_upload_mb', '0'], '--max_upload_mb'),
    ):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        assert words in capsys.readouterr().err


def test_packaged_model_serves_its_bundled_faces_without_shared_data(
    tmp_path, tmp_path_factory, monkeypatch
):
    """A packaged model dir (model.json manifest, config, checkpoint, directions, faces/) on a
    machine without ../shared/data: the gallery is the bundled faces."""
    import json as _json
    import shutil as _shutil

    import glow_tf.data
    from glow_tf.editor.app import create_app
    from glow_tf.editor.engine import build_editor
    from glow_tf.errors import InputError
    from glow_tf.tools import manipulation as M

    logdir = fx.tiny_logdir(tmp_path_factory)
    pkg = tmp_path / 'celeba16'
    _shutil.copytree(logdir, pkg)
    (pkg / 'faces').mkdir()
    for f in ed.GALLERY[:2]:
        _shutil.copy(fx.CELEBA_IMAGES / f, pkg / 'faces' / f)
    raw = fx.tiny_flow(tmp_path_factory, use_ema=False)  # the manifest's weights: model/ group
    files, labels, names = M.celeba_labels(
        fx.CELEBA_ATTR, fx.CELEBA_IMAGES, n_images=64, attributes=['Smiling', 'Male']
    )
    M.save_directions(
        pkg / 'directions.npz', raw, names, *M.compute_directions(raw, files, labels, names)
    )
    (pkg / 'model.json').write_text(
        _json.dumps(
            {
                'format': 'glow_tf.editor_model/1',
                'weights': 'raw',
                'directions': 'directions.npz',
                'faces': 'faces',
                'about': {'test_bits_per_dim': 9.9},
                'sample_temperature': 0.85,
            }
        )
    )
    monkeypatch.setattr(glow_tf.data, 'shared_data_root', lambda: tmp_path / 'no-shared-data')
    editor = build_editor(str(pkg))
    assert list(editor.gallery) == ['gallery-008101', 'gallery-008201'] and editor.names == names
    assert editor.flow.fingerprint == raw.fingerprint
    client = create_app(editor).test_client()
    info = client.get('/api/info').get_json()
    assert info['about'] == {'test_bits_per_dim': 9.9} and '(raw weights)' in info['model']
    assert info['sample_temperature'] == 0.85  # the Random tab starts there
    manifest = _json.loads((pkg / 'model.json').read_text())
    (pkg / 'model.json').write_text(_json.dumps({**manifest, 'sample_temperature': 'warm'}))
    with pytest.raises(InputError, match=r'model\.json: sample_temperature must be a number'):
        build_editor(str(pkg))
    code, face = post(client, '/api/encode', {'gallery': 'gallery-008201'})
    assert code == 200 and face['exact']


def test_demo_serves_through_waitress_and_cuts_off_huge_bodies(editor):
    """demo.py's server is waitress (threaded, production), not Werkzeug's development server;
    a body far over the upload limit is refused by the server before the app reads it."""
    import threading

    from glow_tf.editor.app import create_app
    from glow_tf.editor.server import BODY_MARGIN_BYTES, make_server

    limit = 100_000
    server = make_server(create_app(editor, max_upload_bytes=limit), '127.0.0.1', 0, limit)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f'http://127.0.0.1:{server.effective_port}'
    try:
        with urllib.request.urlopen(base + '/api/info', timeout=60) as resp:
            assert resp.status == 200 and resp.headers['Server'] == 'glow_tf editor'
        # over the app's limit but within the server's margin: the app's own 413 with a message
        code, body = _request(base + '/api/encode', *_multipart('image', 'a.jpg', b'x' * 150_000))
        assert code == 413 and 'too large' in body['error'], body
        # far over: waitress answers 413 from the headers alone, before any body is read, and
        # keeps serving
        import http.client

        conn = http.client.HTTPConnection('127.0.0.1', server.effective_port, timeout=60)
        conn.putrequest('POST', '/api/encode')
        conn.putheader('Content-Type', 'application/octet-stream')
        conn.putheader('Content-Length', str(limit + BODY_MARGIN_BYTES + 10))
        conn.endheaders()  # no body sent
        assert conn.getresponse().status == 413
        conn.close()
        assert _request(base + '/api/info')[0] == 200
    finally:
        server.close()
        thread.join(10)
