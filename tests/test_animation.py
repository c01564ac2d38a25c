"""Animated exports (glow_tf/tools/animation.py and `manipulate.py animate`): an attribute sweep
and an interpolation of real faces with the session's tiny trained Glow, written as GIF (Pillow)
and MP4 (imageio-ffmpeg's ffmpeg), read back and compared with the decoded frames."""

import sys

import numpy as np
import pytest

from tests import tiny_model as fx


def read_gif(path_or_bytes):
    import io

    from PIL import Image, ImageSequence

    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with Image.open(src) as im:
        assert im.format == 'GIF' and im.info.get('loop') == 0
        durations = []
        frames = []
        for frame in ImageSequence.Iterator(im):
            durations.append(frame.info['duration'])
            frames.append(np.asarray(frame.convert('RGB')))
    return np.stack(frames), durations


def read_mp4(path):
    imageio_ffmpeg = pytest.importorskip('imageio_ffmpeg')
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta['size']
    frames = [np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader]
    return np.stack(frames), meta


def test_sweep_strengths_and_loop():
    from glow_tf.errors import InputError
    from glow_tf.tools.animation import enlarge, ping_pong, sweep_strengths

    assert sweep_strengths(5, 2.0) == [-2.0, -1.0, 0.0, 1.0, 2.0]
    with pytest.raises(InputError, match='at least 2 points'):
        sweep_strengths(1)
    frames = np.arange(3)[:, None, None, None] * np.ones((3, 2, 2, 1), np.uint8)
    order = ping_pong(frames, hold=2)[:, 0, 0, 0].tolist()
    assert order == [0, 0, 0, 1, 2, 2, 2, 2, 2, 2, 1, 0, 0, 0]
    big = enlarge(frames, 3)
    assert big.shape == (3, 6, 6, 1) and (big[2] == 2).all()


def test_gif_and_mp4_hold_the_frames(tmp_path):
    from glow_tf.tools.animation import save_animation

    rng = np.random.default_rng(0)
    # few colours per frame, so the GIF palette is exact
    palette = rng.integers(0, 256, (8, 3), dtype=np.uint8)
    frames = palette[rng.integers(0, 8, (5, 32, 48))]
    size = save_animation(tmp_path / 'a.gif', frames, fps=10)
    got, durations = read_gif(str(tmp_path / 'a.gif'))
    assert size == (tmp_path / 'a.gif').stat().st_size
    np.testing.assert_array_equal(got, frames)
    assert durations == [100] * 5

    smooth = np.stack([np.full((32, 48, 3), 40 * k, np.uint8) for k in range(5)])
    save_animation(tmp_path / 'a.mp4', smooth, fps=10)
    got, meta = read_mp4(tmp_path / 'a.mp4')
    assert got.shape == smooth.shape and meta['fps'] == 10
    assert np.abs(got.astype(int) - smooth).mean() < 4  # H.264 is lossy
    save_animation(tmp_path / 'odd.mp4', smooth[:, :31, :47], fps=10)  # padded to even sizes
    assert read_mp4(tmp_path / 'odd.mp4')[0].shape == (5, 32, 48, 3)


def test_bad_formats_and_missing_ffmpeg(monkeypatch, tmp_path):
    from glow_tf.errors import InputError
    from glow_tf.tools.animation import animation_bytes, save_animation

    frames = np.zeros((2, 8, 8, 3), np.uint8)
    with pytest.raises(InputError, match=r'clip\.avi: an animation is written as \.gif or \.mp4'):
        save_animation(tmp_path / 'clip.avi', frames)
    with pytest.raises(InputError, match=r'frames per second must be a number in \[1, 60\]'):
        animation_bytes(frames, 'gif', fps=0)
    monkeypatch.setitem(sys.modules, 'imageio_ffmpeg', None)  # as if it were not installed
    with pytest.raises(InputError, match='MP4 export needs the imageio-ffmpeg package'):
        animation_bytes(frames, 'mp4')
    assert animation_bytes(frames, 'gif')[:6] == b'GIF89a'  # GIF needs only Pillow


def test_cli_animate_sweep_and_interpolation(monkeypatch, logdir, flow, tmp_path, capsys):
    from glow_tf.cli.manipulate import main
    from glow_tf.tools.images import load_images
    from glow_tf.tools.manipulation import edit, interpolate, save_directions

    fx.patch_load_trained_model(monkeypatch)
    files = fx.celeba_files(2, start=300)
    faces = load_images(files, flow.image_shape)
    dirs = tmp_path / 'dirs.npz'
    d = np.random.default_rng(2).normal(size=(1, 16, 16, 3)).astype(np.float32)
    save_directions(dirs, flow, ['Smiling'], d, [1], [1])
    m = ['--model', str(logdir), '--no_progress']
    sweep = ['animate', *m, '--directions', str(dirs), '--attribute', 'Smiling']
    out = tmp_path / 'smile.gif'
    argv = [*sweep, '--images', files[0], '--points', '5', '--scale', '2', '--enlarge', '1']
    assert main([*argv, '--no_loop', '--out', str(out)]) == 0
    assert '5 frames (Smiling from -2 to 2)' in capsys.readouterr().out
    got, _ = read_gif(str(out))
    want = edit(flow, faces[:1], d[0], [-2, -1, 0, 1, 2])[0]
    assert got.shape == want.shape
    np.testing.assert_array_equal(got[2], faces[0])  # strength 0: the input (256 px: exact)
    for g, w in zip(got, want):
        assert np.abs(g.astype(int) - w).mean() < 3  # GIF palette of each frame

    out = tmp_path / 'mix.mp4'
    assert main(['animate', *m, '--images', *files, '--points', '6', '--out', str(out)]) == 0
    assert 'looped, 64x64' in capsys.readouterr().out
    got, meta = read_mp4(out)
    line = interpolate(flow, faces[0], faces[1], 6)
    loop = [0] * 4 + list(range(6)) + [5] * 8 + list(range(5, -1, -1)) + [0] * 4
    assert got.shape == (len(loop), 64, 64, 3) and meta['fps'] == 12
    want = np.repeat(np.repeat(line[loop], 4, 1), 4, 2)
    assert np.abs(got.astype(int) - want).mean() < 12  # H.264 of a 16x16 face enlarged 4x

    def fails(argv, *needles):
        fx.assert_usage_error(main, argv, capsys, *needles)

    o = ['--out', str(tmp_path / 'x.gif')]
    fails(['animate', *m, '--images', files[0], *o], '--images: give two images')
    fails([*sweep, '--images', *files, *o], 'takes one image')
    fails([*argv, '--out', str(tmp_path / 'x.webm')], 'x.webm', '.gif or .mp4')
    fails([*argv, '--points', '1', *o], '--points must be >= 2')
    fails([*argv, '--fps', '0', *o], 'frames per second')
    fails([*argv, '--levels', '3', *o], '--levels: level 3 does not exist')
    fails(['animate', *m, '--images', *files, '--levels', '1', *o], '--levels applies to')
