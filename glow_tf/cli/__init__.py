"""Command-line entry points (train.py; sample.py and manipulate.py live alongside)."""
