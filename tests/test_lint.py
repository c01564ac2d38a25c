"""The house style is checked, not hoped for: with the repository's ruff.toml, `ruff format --check`
would change nothing and `ruff check` finds nothing, anywhere in the tree (package, tests, bench,
scripts)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def ruff(command, *args):
    """`python -m ruff COMMAND --no-cache --config ruff.toml ARGS .` at the repository root.

    ruff is a test dependency (setup.py's `test` extra, installed by scripts/install.sh): its
    absence fails the check instead of skipping it, so CI cannot pass without linting."""
    assert importlib.util.find_spec('ruff') is not None, (
        "ruff is not installed: `pip install -e .[test]` (or bash scripts/install.sh)"
    )
    cmd = [sys.executable, '-m', 'ruff', command, '--no-cache', '--config', str(REPO / 'ruff.toml')]
    return subprocess.run([*cmd, *args, '.'], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_ruff_finds_nothing():
    proc = ruff('check', '--output-format', 'concise')
    assert proc.returncode == 0, f"ruff check found problems:\n{proc.stdout}{proc.stderr}"


def test_ruff_format_would_change_nothing():
    proc = ruff('format', '--check')
    assert proc.returncode == 0, f"ruff format would reformat:\n{proc.stdout}{proc.stderr}"
