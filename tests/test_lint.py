"""The house style is checked, not hoped for: with the repository's ruff.toml, `ruff format --check`
would change nothing and `ruff check` finds nothing, anywhere in the tree (package, tests, bench,
scripts)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def needs_ruff(test):
    """ruff is a test dependency (setup.py's `test` extra, installed by scripts/install.sh): its
    absence fails the check instead of skipping it, so CI cannot pass without linting."""

    def run():
        assert importlib.util.find_spec('ruff') is not None, (
            "ruff is not installed: `pip install -e .[test]` (or bash scripts/install.sh)"
        )
        test()

    run.__name__, run.__doc__ = test.__name__, test.__doc__
    return run


@needs_ruff
def test_ruff_finds_nothing():
    proc = subprocess.run(
        [
            sys.executable,
            '-m',
            'ruff',
            'check',
            '--no-cache',
            '--config',
            str(REPO / 'ruff.toml'),
            '--output-format',
            'concise',
            '.',
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"ruff check found problems:\n{proc.stdout}{proc.stderr}"


@needs_ruff
def test_ruff_format_would_change_nothing():
    proc = subprocess.run(
        [
            sys.executable,
            '-m',
            'ruff',
            'format',
            '--check',
            '--no-cache',
            '--config',
            str(REPO / 'ruff.toml'),
            '.',
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"ruff format would reformat:\n{proc.stdout}{proc.stderr}"
