"""The editor API's level-wise and range endpoints, and animated downloads (added to the app by
`glow_tf.editor.app.create_app`):

    POST /api/variations        {"face": id, "keep": [3, 4], "temperature": 0.7, "n": 6,
                                 "seed": 0?}
                                -> {"images": [n data URLs], "keep", "temperature", "seed"}
    POST /api/manipulate_range  {"face": id, "attribute": "Smiling", "points": 5, "scale": 1.0,
                                 "levels": [3, 4]?}
                                -> {"images": [...], "strengths": [-scale .. scale]}
    POST /api/mix_range         {"a": id, "b": id, "points": 5}  -> {"images": [...], "t": [0..1]}
    POST /api/animate           {"kind": "sweep", <manipulate_range fields>} or
                                {"kind": "mix", <mix_range fields>}, plus "format": "gif"|"mp4",
                                "fps": 12, "loop": true, "enlarge": 4
                                -> the GIF / MP4 file (Content-Disposition: attachment)

Levels are numbered 1 (finest) .. L (coarsest), as `/api/info`'s "levels" lists their shapes.
Bounds: points <= MAX_POINTS, n <= MAX_VARIATIONS, |scale| <= MAX_STRENGTH, fps in [1, 60],
enlarge in [1, MAX_ENLARGE]; a bad value is 422 naming the field. MP4 needs the imageio-ffmpeg
package's ffmpeg binary: without it /api/animate answers 501 with a message (GIF always works).
"""

from glow_tf.errors import InputError
from glow_tf.tools import animation

MAX_ENLARGE = 8
MIMETYPES = {'gif': 'image/gif', 'mp4': 'video/mp4'}


def add_range_routes(app, editor, json_body, data_url, api_error):
    """Register the endpoints above on `app` for `editor` (a FaceEditor). json_body(request) ->
    dict, data_url(image) -> str and api_error(status, message) -> exception come from the app."""
    from flask import Response, jsonify, request

    def frames_of(body):
        kind = body.get('kind')
        if kind == 'sweep':
            images, _ = sweep(body)
            return images, f"{body.get('attribute')}"
        if kind == 'mix':
            images, _ = mix(body)
            return images, 'mix'
        raise api_error(422, f"'kind' must be 'sweep' or 'mix', got {kind!r:.40}")

    def sweep(body):
        return editor.strength_range(
            body.get('face'),
            body.get('attribute'),
            body.get('points', 5),
            body.get('scale', 1.0),
            body.get('levels'),
        )

    def mix(body):
        return editor.mix_range(body.get('a'), body.get('b'), body.get('points', 5))

    @app.post('/api/variations')
    def variations():
        body = json_body(request)
        seed = body.get('seed')
        if seed is None:
            import numpy as np

            seed = int(np.random.default_rng().integers(0, 2**31 - 1))
        keep = body.get('keep')
        if keep is None:
            raise api_error(422, "'keep' is required: a list of level numbers to keep (1 = finest)")
        images = editor.variations(
            body.get('face'), keep, body.get('temperature', 0.7), body.get('n', 6), seed
        )
        return jsonify(
            face=body.get('face'),
            images=[data_url(im) for im in images],
            keep=sorted(set(keep)),
            temperature=float(body.get('temperature', 0.7)),
            seed=seed,
        )

    @app.post('/api/manipulate_range')
    def manipulate_range():
        images, strengths = sweep(json_body(request))
        return jsonify(images=[data_url(im) for im in images], strengths=strengths)

    @app.post('/api/mix_range')
    def mix_range():
        images, ts = mix(json_body(request))
        return jsonify(images=[data_url(im) for im in images], t=ts)

    @app.post('/api/animate')
    def animate():
        body = json_body(request)
        fmt = body.get('format', 'gif')
        if fmt not in animation.FORMATS:
            raise api_error(
                422, f"'format' must be one of {', '.join(animation.FORMATS)}, got {fmt!r:.40}"
            )
        fps = animation.check_fps(body.get('fps', 12))
        enlarge = body.get('enlarge', 4)
        if isinstance(enlarge, bool) or not isinstance(enlarge, int):
            raise api_error(422, f"'enlarge' must be an integer, got {enlarge!r:.40}")
        if not 1 <= enlarge <= MAX_ENLARGE:
            raise api_error(422, f"'enlarge' must be in [1, {MAX_ENLARGE}], got {enlarge}")
        loop = body.get('loop', True)
        if not isinstance(loop, bool):
            raise api_error(422, f"'loop' must be true or false, got {loop!r:.40}")
        if fmt == 'mp4':
            try:
                animation.ffmpeg_exe()
            except InputError as e:
                raise api_error(501, str(e)) from None
        frames, name = frames_of(body)
        if loop:
            frames = animation.ping_pong(frames)
        data = animation.animation_bytes(animation.enlarge(frames, enlarge), fmt, fps)
        filename = f"glow-{body['kind']}-{''.join(c for c in name if c.isalnum())[:40]}.{fmt}"
        return Response(
            data,
            mimetype=MIMETYPES[fmt],
            headers={'Content-Disposition': f'attachment; filename="{filename}"'},
        )
