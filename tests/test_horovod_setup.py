"""The installed Horovod: built with TensorFlow + Gloo, and two local ranks can allreduce."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).parent / 'workers' / 'allreduce_check.py'
pytestmark = pytest.mark.skipif(
    shutil.which('horovodrun') is None, reason='horovodrun not on PATH: run scripts/install.sh'
)


def _env():
    return {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2', 'CUDA_VISIBLE_DEVICES': ''}


def test_check_build_shows_tensorflow_and_gloo():
    out = subprocess.run(
        ['horovodrun', '--check-build'], capture_output=True, text=True, timeout=120, env=_env()
    ).stdout
    assert '[X] TensorFlow' in out, out
    controllers = out.split('Available Controllers:')[1].split('Available Tensor Operations:')[0]
    assert '[X] Gloo' in controllers, out


def test_two_ranks_allreduce_rank_dependent_tensors():
    cmd = ['horovodrun', '-np', '2', '-H', 'localhost:2', '--gloo', sys.executable, str(WORKER)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = [
        json.loads(line.split('RESULT ', 1)[1])
        for line in proc.stdout.splitlines()
        if 'RESULT ' in line
    ]
    assert sorted(r['rank'] for r in results) == [0, 1], proc.stdout
    for r in results:
        assert r['size'] == 2
        # rank 0 holds [0, 10], rank 1 holds [1, 20]
        assert r['average'] == pytest.approx([0.5, 15.0])
        assert r['sum'] == pytest.approx([1.0, 30.0])
