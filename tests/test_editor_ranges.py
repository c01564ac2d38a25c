"""The editor API's level-wise and range endpoints (glow_tf/editor/ranges.py) on the session's tiny
trained Glow, real held-out CelebA faces and real attribute directions: variations, edits
restricted to levels, the original demo's manipulate_range / mix_range, and GIF / MP4 downloads
from a real server; bad requests get a 4xx naming the field."""

import json
import urllib.error
import urllib.request

import numpy as np
import pytest

from tests import editor_testing as ed
from tests.editor_testing import client_fixture, editor_fixture, post  # noqa: F401

pytest.importorskip('flask')
pytest.importorskip('cv2')


def images(out):
    return np.stack([ed.decode_data_url(u) for u in out['images']])


def gallery_face(client, name):
    face = post(client, '/api/encode', {'gallery': name})[1]
    return face['face'], ed.decode_data_url(face['input'])


def direction(editor, name):
    return editor._matrix[editor.names.index(name)].reshape(editor.image_shape)


def test_info_lists_the_levels(client):
    info = client.get('/api/info').get_json()
    assert info['levels'] == [[8, 8, 6], [4, 4, 24]]  # level 1 (finest), level 2
    assert info['max_points'] >= 24 and info['max_variations'] >= 6


def test_variations(client, editor):
    from glow_tf.tools.levels import variations

    face, x = gallery_face(client, 'gallery-008201')
    body = {'face': face, 'keep': [2], 'temperature': 0.6, 'n': 4, 'seed': 9}
    code, out = post(client, '/api/variations', body)
    assert code == 200 and out['keep'] == [2] and out['seed'] == 9
    got = images(out)
    np.testing.assert_array_equal(got, variations(editor.flow, x[None], [2], 4, 0.6, 9)[0])
    assert len({g.tobytes() for g in got}) == 4
    code, same = post(client, '/api/variations', body)
    np.testing.assert_array_equal(images(same), got)  # seeded: deterministic
    code, out = post(client, '/api/variations', {**body, 'keep': [1, 2]})
    assert (images(out) == x).all()  # keeping every level reproduces the face
    # keeping nothing is sampling: variation 0 is /api/sample's face for that seed
    code, out = post(client, '/api/variations', {**body, 'keep': [], 'temperature': 0.7})
    code, s = post(client, '/api/sample', {'temperature': 0.7, 'seed': 9})
    np.testing.assert_array_equal(images(out)[0], ed.decode_data_url(s['image']))
    code, out = post(client, '/api/variations', {'face': face, 'keep': [2]})
    assert code == 200 and isinstance(out['seed'], int) and len(out['images']) == 6


def test_level_restricted_edit(client, editor):
    from glow_tf.tools.manipulation import edit

    face, x = gallery_face(client, 'gallery-008305')
    d = direction(editor, 'Smiling')
    for levels in ([1], [2]):
        body = {'face': face, 'strengths': {'Smiling': 1.5}, 'levels': levels}
        code, out = post(client, '/api/edit', body)
        assert code == 200 and out['levels'] == levels
        want = edit(editor.flow, x[None], d, [1.5], levels=levels)[0, 0]
        np.testing.assert_array_equal(ed.decode_data_url(out['image']), want)
    code, out = post(client, '/api/edit', {'face': face, 'strengths': {'Smiling': 1.5}})
    assert out['levels'] is None
    np.testing.assert_array_equal(
        ed.decode_data_url(out['image']), edit(editor.flow, x[None], d, [1.5])[0, 0]
    )


def test_range_endpoints(client, editor):
    from glow_tf.tools.manipulation import edit, interpolate

    face, x = gallery_face(client, 'gallery-008101')
    body = {'face': face, 'attribute': 'smiling', 'points': 5, 'scale': 2.0}
    code, out = post(client, '/api/manipulate_range', body)
    assert code == 200 and out['strengths'] == [-2.0, -1.0, 0.0, 1.0, 2.0]
    want = edit(editor.flow, x[None], direction(editor, 'Smiling'), out['strengths'])[0]
    np.testing.assert_array_equal(images(out), want)
    np.testing.assert_array_equal(images(out)[2], x)
    code, out = post(client, '/api/manipulate_range', {**body, 'levels': [2]})
    want = edit(editor.flow, x[None], direction(editor, 'Smiling'), out['strengths'], levels=[2])
    np.testing.assert_array_equal(images(out), want[0])

    other, y = gallery_face(client, 'gallery-008420')
    code, out = post(client, '/api/mix_range', {'a': face, 'b': other, 'points': 4})
    assert code == 200 and out['t'] == pytest.approx([0, 1 / 3, 2 / 3, 1])
    np.testing.assert_array_equal(images(out), interpolate(editor.flow, x, y, 4))


def _fetch(url, body):
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={'Content-Type': 'application/json'}
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_animated_downloads_and_bad_requests_on_a_real_server(editor, tmp_path):
    from glow_tf.editor.app import create_app
    from tests.test_animation import read_gif, read_mp4

    face, x = gallery_face(create_app(editor).test_client(), 'gallery-008201')
    other = 'gallery-008420'
    with ed.serve(create_app(editor)) as base:
        sweep = {'kind': 'sweep', 'face': face, 'attribute': 'Smiling', 'points': 5}
        code, headers, data = _fetch(f'{base}/api/animate', {**sweep, 'loop': False, 'enlarge': 1})
        assert code == 200 and headers['Content-Type'] == 'image/gif'
        assert headers['Content-Disposition'] == 'attachment; filename="glow-sweep-Smiling.gif"'
        frames, durations = read_gif(data)
        assert frames.shape == (5, 16, 16, 3) and durations == [80] * 5  # GIF delays: 10 ms units
        np.testing.assert_array_equal(frames[2], x)  # strength 0 (16x16: an exact palette)

        mix = {'kind': 'mix', 'a': face, 'b': other, 'points': 3, 'format': 'mp4', 'fps': 8}
        code, headers, data = _fetch(f'{base}/api/animate', mix)
        assert code == 200 and headers['Content-Type'] == 'video/mp4'
        (tmp_path / 'm.mp4').write_bytes(data)
        frames, meta = read_mp4(tmp_path / 'm.mp4')
        assert frames.shape == (4 + 3 + 8 + 3 + 4, 64, 64, 3) and meta['fps'] == 8

        bad = [
            ('/api/variations', {'face': face}, 422, "'keep' is required"),
            ('/api/variations', {'face': face, 'keep': [3]}, 422, 'level 3 does not exist'),
            ('/api/variations', {'face': face, 'keep': ['1']}, 422, 'integers'),
            ('/api/variations', {'face': face, 'keep': [1], 'n': 1000}, 422, 'n must be'),
            ('/api/variations', {'face': face, 'keep': [1], 'temperature': 9}, 422, 'temperature'),
            ('/api/variations', {'face': 'nobody', 'keep': [1]}, 404, 'unknown face'),
            ('/api/edit', {'face': face, 'levels': 2}, 422, 'list of level numbers'),
            ('/api/edit', {'face': face, 'levels': []}, 422, 'at least one level'),
            ('/api/manipulate_range', {**sweep, 'points': 10_000}, 422, 'points must be'),
            ('/api/manipulate_range', {**sweep, 'points': 1}, 422, 'points must be'),
            ('/api/manipulate_range', {**sweep, 'scale': 1e9}, 422, 'scale must be'),
            ('/api/manipulate_range', {**sweep, 'attribute': 'Smilling'}, 422, 'Did you mean'),
            ('/api/mix_range', {'a': face, 'b': other, 'points': 'many'}, 422, 'points must be'),
            ('/api/animate', {**sweep, 'format': 'avi'}, 422, "'format' must be one of gif, mp4"),
            ('/api/animate', {**sweep, 'fps': 1000}, 422, 'frames per second'),
            ('/api/animate', {**sweep, 'enlarge': 100}, 422, "'enlarge' must be in [1, 8]"),
            ('/api/animate', {**sweep, 'loop': 'yes'}, 422, "'loop' must be true or false"),
            ('/api/animate', {**sweep, 'kind': 'zoom'}, 422, "'kind' must be 'sweep' or 'mix'"),
            ('/api/animate', [1, 2], 400, 'JSON object'),
        ]
        for path, body, status, needle in bad:
            code, _, data = _fetch(base + path, body)
            assert code == status, (path, body, code, data)
            assert needle in json.loads(data)['error'], (path, body, data)
        code, _, data = _fetch(f'{base}/api/mix_range', {'a': face, 'b': other, 'points': 2})
        assert code == 200 and len(json.loads(data)['images']) == 2  # still serving
