"""The editor's production server: waitress, a threaded pure-Python WSGI server (Werkzeug's
development server, which Flask's `app.run` starts, warns against serving users with it).

    server = make_server(create_app(editor), '127.0.0.1', 8000)
    server.run()          # until Ctrl-C; server.close() from another thread stops it
"""

# Multipart framing around the largest accepted upload; the app itself answers 413 with a
# message for a too-large image, waitress only cuts off bodies far beyond that.
BODY_MARGIN_BYTES = 1 << 20


def make_server(app, host, port, max_upload_bytes, threads=4):
    """A waitress server for `app` on host:port (port 0 = a free one: `server.effective_port`).

    Args:
        app: the WSGI app (`glow_tf.editor.app.create_app`).
        host, port: where to listen.
        max_upload_bytes: the app's upload limit; request bodies over it plus a margin are refused
            by the server before the app reads them.
        threads: requests served at once (the model engine serialises its own work).
    """
    from waitress import create_server

    return create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        max_request_body_size=int(max_upload_bytes) + BODY_MARGIN_BYTES,
        ident='glow_tf editor',
    )
