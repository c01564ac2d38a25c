"""`demo.py`: the browser face editor (Glow's interactive demo) on http://127.0.0.1:8000.

    python demo.py                                   # the face model shipped in models/
    python demo.py --model runs/celeba64 --directions runs/directions.npz --port 8080
    python demo.py --host 0.0.0.0                    # reachable from other machines (no auth!)

--model is a packaged editor model directory (models/celeba64), a training log dir, a checkpoint or
an exported SavedModel; --directions a file from `manipulate.py directions` for that same model
(default: the packaged model's). The gallery shows held-out CelebA faces: the test split of the
CelebA data under ../shared/data (docs/data.md) when it is there, else the faces bundled with the
model, or --gallery DIR. Exit status 2 for bad arguments (the message names the flag or file).
"""

import argparse
import contextlib
import os
import sys
import threading
from pathlib import Path

from glow_tf.cli import exit_on_input_error

DEFAULT_MODEL_NAME = 'celeba64_5bit'


def default_model():
    """The face model shipped in the repository (models/<name> beside the glow_tf package)."""
    return str(Path(__file__).resolve().parents[2] / 'models' / DEFAULT_MODEL_NAME)


def build_parser():
    p = argparse.ArgumentParser(
        prog='demo.py',
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 1)[1],
    )
    p.add_argument(
        '--host',
        default='127.0.0.1',
        help="Address to bind (default 127.0.0.1: this computer only).",
    )
    p.add_argument('--port', type=int, default=8000, help="Port (default 8000).")
    p.add_argument(
        '--model',
        default=None,
        help="Packaged model dir, training log dir, checkpoint "
        f"or SavedModel (default: models/{DEFAULT_MODEL_NAME}).",
    )
    p.add_argument(
        '--directions',
        default=None,
        help="Attribute directions .npz for this model (default: the packaged model's).",
    )
    p.add_argument(
        '--gallery',
        default=None,
        help="Directory of aligned face images, or a CelebA directory whose test split is shown.",
    )
    p.add_argument('--n_gallery', type=int, default=24, help="Gallery faces shown (default 24).")
    p.add_argument('--max_upload_mb', type=float, default=10.0, help="Largest accepted upload.")
    return p


def warm_up(editor):
    """Compile the model while the page loads (`FaceEditor.warm_up`), and say when it is done."""
    print("glow_tf editor: compiling the model (its first use; a few seconds)...", flush=True)
    try:
        seconds = editor.warm_up()
    except Exception as e:  # best effort: the first request compiles instead
        print(f"glow_tf editor: compiling ahead failed ({e}); requests will compile it", flush=True)
        return
    print(f"glow_tf editor: ready ({seconds:.1f} s); edits are interactive now", flush=True)


def main(argv=None):
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port must be in 1..65535, got {args.port}")
    if args.max_upload_mb <= 0:
        parser.error(f"--max_upload_mb must be > 0, got {args.max_upload_mb}")
    model = args.model or default_model()
    if args.model is None and not os.path.isdir(model):
        parser.error(f"the shipped model is missing ({model}); pass --model LOGDIR_OR_EXPORT")
    from glow_tf.editor.app import create_app
    from glow_tf.editor.engine import build_editor

    editor = exit_on_input_error(
        lambda: build_editor(model, args.directions, args.gallery, args.n_gallery), parser.prog
    )
    app = create_app(editor, max_upload_bytes=int(args.max_upload_mb * 2**20))
    print(
        f"glow_tf editor: {editor.flow.description}, {len(editor.names)} attributes, "
        f"{len(editor.gallery)} gallery faces",
        flush=True,
    )
    from glow_tf.editor.server import make_server

    max_upload_bytes = int(args.max_upload_mb * 2**20)
    try:
        server = make_server(app, args.host, args.port, max_upload_bytes)
    except OSError as e:  # the port is taken, or the host is not this machine's
        parser.error(f"--host {args.host} --port {args.port}: cannot listen there ({e.strerror})")
    print(f"open http://{args.host}:{args.port}/  (Ctrl-C stops)", flush=True)
    threading.Thread(target=warm_up, args=(editor,), daemon=True).start()
    try:
        server.run()
    except KeyboardInterrupt:
        print("glow_tf editor: stopped", flush=True)
    finally:
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C while closing
            server.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
