#!/usr/bin/env python
"""Face editor latency: a slider move, a photo upload, and the same edit through manipulate.py.

    python bench/editor_latency.py                             # the shipped model (models/celeba64)
    python bench/editor_latency.py --model runs/celeba64 --directions runs/d.npz --n 50

Measured on a real threaded server on 127.0.0.1 (what the page talks to), plus the server-side
parts alone:

  slider_move      POST /api/edit of a cached face with a new strength each time (never the same
                   latent twice): decode z + Σ α_i d_i, PNG-encode, base64, JSON; round trip.
                   `slider_move_server` is the same work without HTTP (FaceEditor.edit + PNG).
                   Target: at most 150 ms.
  upload           POST /api/encode of a 1024x768 JPEG photo of a face (a CelebA face enlarged,
                   tilted and pasted on a background; a different tilt each time so nothing is
                   cached): decode, detect + align, encode, decode, two PNGs. Target: at most 1.5 s.
  page_ready       `python demo.py` started in a fresh process; --open_after seconds after it
                   prints its URL (a person opening the page), the page's two first requests:
                   GET /api/gallery (every gallery face encoded) and POST /api/encode of the
                   first face. Also: seconds to listen, and the model's compile time it prints.
  manipulate_edit  `python manipulate.py edit ... --strengths S` in a fresh process, the CLI way
                   to get the same one edited image (interpreter, TensorFlow import, model load,
                   trace, encode, decode, PNG); `ratio_manipulate_over_slider` = its wall time over
                   the slider move's median round trip.

Prints a table and one `JSON {...}` line. Times are medians (also p90 and max) over --n tries
after --warmup untimed ones; the machine is shared, so compare ratios, not absolute times.
"""

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def stats(times):
    times = sorted(times)
    return {
        'median_ms': round(1000 * statistics.median(times), 2),
        'p90_ms': round(1000 * times[min(len(times) - 1, int(0.9 * len(times)))], 2),
        'max_ms': round(1000 * times[-1], 2),
        'n': len(times),
    }


def photo_jpeg(angle, size=(1024, 768)):
    """A CelebA face (178x218 aligned original, or the 89x109 copy enlarged) tilted by `angle`,
    enlarged 2.5x and pasted on a plain background, as JPEG bytes."""
    import cv2
    import numpy as np
    from PIL import Image

    root = os.path.join(REPO, '..', 'shared', 'data', 'celeba-subset')
    full = os.path.join(root, 'img_align_celeba', '000001.jpg')
    if os.path.exists(full):
        face = np.asarray(Image.open(full).convert('RGB'))
    else:  # the packaged model's bundled faces
        faces = os.path.join(REPO, 'models', 'celeba64_5bit', 'faces')
        face = np.asarray(
            Image.open(os.path.join(faces, sorted(os.listdir(faces))[0]))
            .convert('RGB')
            .resize((178, 218), Image.BICUBIC)
        )
    canvas = np.full((size[1], size[0], 3), 120, np.uint8)
    m = cv2.getRotationMatrix2D((89, 109), angle, 2.5)
    m[:, 2] += (size[0] * 0.3, size[1] * 0.15)
    img = cv2.warpAffine(face, m, size, dst=canvas, borderMode=cv2.BORDER_TRANSPARENT)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format='JPEG', quality=90)
    return buf.getvalue()


def http(url, body, content_type):
    import urllib.request

    req = urllib.request.Request(url, data=body)
    req.add_header('Content-Type', content_type)
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())


def multipart(payload, filename='photo.jpg'):
    boundary = 'glowbenchboundary'
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{filename}"'
            f'\r\nContent-Type: image/jpeg\r\n\r\n'
        ).encode()
        + payload
        + f'\r\n--{boundary}--\r\n'.encode()
    )
    return body, f'multipart/form-data; boundary={boundary}'


def page_ready(model, open_after):
    """`demo.py --model model` in a fresh process: seconds until it listens, then (open_after s
    after its URL is printed) the round trips of the page's first two requests, and the compile
    time the editor prints."""
    import re
    import socket
    import urllib.request

    with socket.socket() as sock:  # a free port
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, os.path.join(REPO, 'demo.py'), '--model', model, '--port', str(port)]
    env = dict(os.environ, PYTHONPATH=REPO, PYTHONUNBUFFERED='1')
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith('open http'):
                break
        else:
            sys.exit(f"demo.py did not start: {''.join(lines)[-2000:]}")
        listening = time.perf_counter() - start
        time.sleep(open_after)
        url = f'http://127.0.0.1:{port}'
        t0 = time.perf_counter()
        with urllib.request.urlopen(url + '/api/gallery', timeout=300) as resp:
            first = json.loads(resp.read())['faces'][0]['id']
        t1 = time.perf_counter()
        http(url + '/api/encode', json.dumps({'gallery': first}).encode(), 'application/json')
        t2 = time.perf_counter()
        for line in proc.stdout:  # the warm-up's line (printed by now: the requests waited)
            lines.append(line)
            if 'ready (' in line or 'failed' in line:
                break
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    ready = re.search(r'ready \(([0-9.]+) s\)', ''.join(lines))
    return {
        'listening_s': round(listening, 2),
        'open_after_s': open_after,
        'gallery_ms': round(1000 * (t1 - t0), 1),
        'first_face_ms': round(1000 * (t2 - t1), 1),
        'compile_s': float(ready.group(1)) if ready else None,
    }


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    p.add_argument('--model', default=os.path.join(REPO, 'models', 'celeba64_5bit'))
    p.add_argument('--directions', default=None, help="Default: the packaged model's.")
    p.add_argument('--attribute', default='Smiling')
    p.add_argument('--n', type=int, default=40, help="Timed tries per measurement.")
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--n_upload', type=int, default=10)
    p.add_argument('--n_cli', type=int, default=2, help="manipulate.py runs (the best is used).")
    p.add_argument(
        '--open_after', type=float, default=6.0, help="page_ready: seconds before the page opens."
    )
    args = p.parse_args(argv)

    import logging

    import numpy as np

    from glow_tf.editor.app import create_app, data_url

    logging.getLogger('werkzeug').setLevel(logging.ERROR)  # no access log lines
    import threading

    from werkzeug.serving import make_server

    from glow_tf.editor.engine import build_editor

    editor = build_editor(args.model, args.directions)
    name = (
        editor.names[editor.names.index(args.attribute)]
        if args.attribute in editor.names
        else editor.names[0]
    )
    face_id = next(iter(editor.gallery)) if editor.gallery else editor.sample(0.7, 0).id
    face = editor.face(face_id)
    strengths = np.linspace(-2, 2, args.n + args.warmup + 1)[:-1]

    # server side only: edit (decode of the cached latent) + PNG + base64
    server_times = []
    for i, a in enumerate(strengths):
        t0 = time.perf_counter()
        image, _ = editor.edit(face_id, {name: float(a) + 1e-3})
        data_url(image)
        if i >= args.warmup:
            server_times.append(time.perf_counter() - t0)

    app = create_app(editor)
    server = make_server('127.0.0.1', 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f'http://127.0.0.1:{server.server_port}'
    try:
        slider = []
        for i, a in enumerate(strengths):
            body = json.dumps({'face': face_id, 'strengths': {name: float(a) + 2e-3}}).encode()
            t0 = time.perf_counter()
            out = http(base + '/api/edit', body, 'application/json')
            if i >= args.warmup:
                slider.append(time.perf_counter() - t0)
        assert out['image'].startswith('data:image/png')
        uploads, methods = [], []
        angles = np.linspace(-12, 12, args.n_upload + 1)
        for i, ang in enumerate(angles):
            body, ctype = multipart(photo_jpeg(float(ang)))
            t0 = time.perf_counter()
            out = http(base + '/api/encode', body, ctype)
            if i >= 1:
                uploads.append(time.perf_counter() - t0)
                methods.append(out['alignment']['method'])
    finally:
        server.shutdown()
        thread.join(10)

    # the same edit through the CLI, in a fresh process
    with tempfile.TemporaryDirectory() as tmp:
        face_png = os.path.join(tmp, 'face.png')
        from glow_tf.tools.images import save_png

        save_png(face_png, face.input)
        directions = args.directions or os.path.join(
            args.model, editor.manifest.get('directions', '')
        )
        cmd = [
            sys.executable,
            os.path.join(REPO, 'manipulate.py'),
            'edit',
            '--model',
            args.model,
            '--directions',
            directions,
            '--attribute',
            name,
            '--strengths',
            '1',
            '--images',
            face_png,
            '--out',
            os.path.join(tmp, 'edit.png'),
        ]
        cli = []
        for _ in range(args.n_cli):
            t0 = time.perf_counter()
            proc = subprocess.run(
                cmd, capture_output=True, text=True, cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO)
            )
            cli.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                sys.exit(f"manipulate.py edit failed: {proc.stderr[-2000:]}")
        from PIL import Image

        cli_image = np.asarray(Image.open(os.path.join(tmp, 'edit.png')).convert('RGB'))
    same = bool(np.array_equal(cli_image, editor.edit(face_id, {name: 1.0})[0]))
    ready = page_ready(args.model, args.open_after)

    result = {
        'model': editor.flow.description,
        'image_shape': list(editor.image_shape),
        'attribute': name,
        'face': face_id,
        'slider_move': stats(slider),
        'slider_move_server': stats(server_times),
        'upload': stats(uploads),
        'upload_alignment': {m: methods.count(m) for m in set(methods)},
        'page_ready': ready,
        'manipulate_edit_s': round(min(cli), 2),
        'manipulate_edit_runs_s': [round(t, 2) for t in cli],
        'manipulate_edit_same_image': same,
        'ratio_manipulate_over_slider': round(min(cli) / statistics.median(slider), 1),
        'targets': {'slider_move_ms': 150, 'upload_ms': 1500},
        'machine': {'cpus': os.cpu_count(), 'python': platform.python_version()},
    }
    print(f"model {result['model']} {'x'.join(map(str, editor.image_shape))}")
    print(f"{'measurement':<28}{'median ms':>12}{'p90 ms':>10}{'max ms':>10}{'n':>5}")
    for key in ('slider_move', 'slider_move_server', 'upload'):
        s = result[key]
        print(
            f"{key:<28}{s['median_ms']:>12.1f}{s['p90_ms']:>10.1f}{s['max_ms']:>10.1f}{s['n']:>5}"
        )
    print(
        f"demo.py (fresh process): listening after {ready['listening_s']:.1f} s; the page opened "
        f"{ready['open_after_s']:g} s later: gallery {ready['gallery_ms']:.0f} ms, first face "
        f"{ready['first_face_ms']:.0f} ms (model compiled in {ready['compile_s']} s meanwhile)"
    )
    print(
        f"manipulate.py edit (fresh process): {result['manipulate_edit_s']:.2f} s = "
        f"{result['ratio_manipulate_over_slider']}x a slider move; same image: {same}"
    )
    print('JSON ' + json.dumps(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())
