"""Animated exports of edits: an attribute sweep or an interpolation as a GIF or an MP4.

    sweep_strengths(points, scale)    α_k = scale · (-1 + 2k / (points - 1)), k = 0..points-1
                                      (the original demo's manipulate_range: -scale .. +scale)
    ping_pong(frames, hold)           hold the first frame, play forward, hold the last twice as
                                      long, play backward, hold the first (a seamless loop, as
                                      the original's videos.py looped its clips)
    enlarge(frames, scale)            nearest-neighbour enlargement by an integer factor
    animation_bytes(frames, fmt, fps) GIF (Pillow, always available) or MP4 (H.264 through the
                                      ffmpeg binary the `imageio-ffmpeg` wheel ships)
    save_animation(path, frames, fps) the format from the file name (.gif / .mp4)

Frames are uint8 [N, H, W, C] (C = 1 or 3). MP4 needs H and W even (yuv420p): frames are padded
by one edge pixel when they are not.
"""

import io
import os
import tempfile

import numpy as np

from glow_tf.errors import InputError
from glow_tf.fileio import atomic_write_bytes

FORMATS = ('gif', 'mp4')
MAX_FPS = 60


def sweep_strengths(points, scale=1.0):
    """`points` strengths evenly spaced from -scale to +scale (both included)."""
    if int(points) < 2:
        raise InputError(f"a sweep needs at least 2 points, got {points}")
    return [float(a) for a in np.linspace(-float(scale), float(scale), int(points))]


def ping_pong(frames, hold=4):
    """frames [N, ...] -> first × hold, forward, last × 2·hold, backward, first × hold."""
    frames = list(frames)
    first, last = [frames[0]] * int(hold), [frames[-1]] * (2 * int(hold))
    return np.stack(first + frames + last + frames[::-1] + first)


def enlarge(frames, scale):
    """uint8 [N, H, W, C] -> [N, H·scale, W·scale, C] by repeating pixels."""
    scale = int(scale)
    if scale < 1:
        raise InputError(f"enlargement factor must be an integer >= 1, got {scale}")
    return np.repeat(np.repeat(np.asarray(frames, np.uint8), scale, 1), scale, 2)


def _rgb(frames):
    frames = np.asarray(frames, np.uint8)
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3) or len(frames) == 0:
        raise ValueError(f"expected frames uint8 [N, H, W, 1 or 3], got shape {frames.shape}")
    return np.repeat(frames, 3, -1) if frames.shape[-1] == 1 else frames


def gif_bytes(frames, fps):
    """An endlessly looping GIF of the frames (Pillow; exact colours for <= 256 per frame)."""
    from PIL import Image

    images = [Image.fromarray(f) for f in _rgb(frames)]
    buf = io.BytesIO()
    # GIF delays are whole 10 ms units (12 fps plays at 1 / 80 ms = 12.5 fps); browsers treat
    # delays under 20 ms as 100 ms, so faster rates are capped at 50 fps
    duration = max(20, 10 * int(round(100 / float(fps))))
    images[0].save(
        buf, format='GIF', save_all=True, append_images=images[1:], duration=duration, loop=0
    )
    return buf.getvalue()


def ffmpeg_exe():
    """The ffmpeg binary shipped in the `imageio-ffmpeg` wheel; InputError saying how to get it."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise InputError(
            "MP4 export needs the imageio-ffmpeg package (it ships an ffmpeg binary): "
            "pip install imageio-ffmpeg==0.8.1, or write a .gif instead"
        ) from None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as e:
        raise InputError(
            f"MP4 export: imageio-ffmpeg has no ffmpeg binary for this platform ({e}); "
            "write a .gif instead"
        ) from None


def mp4_bytes(frames, fps):
    """An H.264 MP4 (yuv420p) of the frames, encoded by imageio-ffmpeg's ffmpeg binary."""
    ffmpeg_exe()
    import imageio_ffmpeg

    frames = _rgb(frames)
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode='edge')
    fd, path = tempfile.mkstemp(suffix='.mp4')
    os.close(fd)
    try:
        writer = imageio_ffmpeg.write_frames(
            path,
            (frames.shape[2], frames.shape[1]),
            fps=float(fps),
            codec='libx264',
            macro_block_size=1,
            ffmpeg_log_level='error',
        )
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
        writer.close()
        with open(path, 'rb') as f:
            return f.read()
    finally:
        os.unlink(path)


def check_fps(fps):
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 1 <= fps <= MAX_FPS:
        raise InputError(f"frames per second must be a number in [1, {MAX_FPS}], got {fps!r:.40}")
    return float(fps)


def animation_bytes(frames, fmt, fps=12):
    """The frames as a 'gif' or 'mp4' file's bytes."""
    fps = check_fps(fps)
    if fmt == 'gif':
        return gif_bytes(frames, fps)
    if fmt == 'mp4':
        return mp4_bytes(frames, fps)
    raise InputError(f"animation format must be one of {', '.join(FORMATS)}, got {fmt!r:.40}")


def format_of(path):
    """'gif' or 'mp4' from a file name; InputError for any other extension."""
    ext = os.path.splitext(os.fspath(path))[1].lower().lstrip('.')
    if ext not in FORMATS:
        raise InputError(
            f"{path}: an animation is written as .gif or .mp4 (got {'.' + ext if ext else 'no'} "
            "extension)"
        )
    return ext


def save_animation(path, frames, fps=12):
    """Write the frames to `path` (.gif or .mp4), atomically. Returns the file's size in bytes."""
    data = animation_bytes(frames, format_of(path), fps)
    atomic_write_bytes(os.fspath(path), lambda f: f.write(data))
    return len(data)
