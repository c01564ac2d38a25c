"""The house style is checked, not hoped for: with the repository's ruff.toml, `ruff format --check`
would change nothing and `ruff check` finds nothing, anywhere in the tree (package, tests, bench,
scripts)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(
    importlib.util.find_spec('ruff') is None,
    reason="ruff is not installed (pip install -e .[test])",
)
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


@pytest.mark.skipif(
    importlib.util.find_spec('ruff') is None,
    reason="ruff is not installed (pip install -e .[test])",
)
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
