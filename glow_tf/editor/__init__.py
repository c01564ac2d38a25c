"""The browser face editor (`demo.py`): a Flask app over a trained Glow, face alignment, and the
static page."""
