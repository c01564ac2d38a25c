"""A real multi-host launch: `horovodrun -np 2 -H 127.0.0.2:1,127.0.0.3:1 --gloo` over ssh.

Horovod treats 127.0.0.2 and 127.0.0.3 as remote hosts and starts each worker through ssh. The
test starts its own sshd (Debian's openssh-server; a host key and a client key made for the test,
its own config, listening on those two addresses on a free port) and tears it down afterwards.
Each "host" gets its own working directory (host_127.0.0.2/, host_127.0.0.3/) and the run writes to
a relative --logdir, as on machines with local disks: rank 0's host must hold every file, the other
host none. Then:
  1. an uninterrupted run to STEPS steps (the reference);
  2. the same command in a fresh place, SIGTERM to rank 1 only: both ranks stop after the same
     step, rank 0 writes a checkpoint, exit status 143;
  3. the same command again: resumes; SIGKILL to rank 1 after its next checkpoint: the run ends
     (horovodrun exits non-zero) within a bounded time instead of hanging;
  4. the same command again: resumes from rank 0's last checkpoint and ends with exactly the
     reference's weights, EMA, optimiser state and counters.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_train_resume import assert_same_state, read_ckpt, records

REPO = Path(__file__).resolve().parents[1]
HOSTS = ('127.0.0.2', '127.0.0.3')
STEPS = 16

pytestmark = pytest.mark.skipif(
    shutil.which('horovodrun') is None
    or not os.path.exists('/usr/sbin/sshd')
    or shutil.which('ssh') is None
    or os.geteuid() != 0,
    reason='needs horovodrun, openssh-server (scripts/install.sh) and root to run sshd',
)


def free_port():
    with socket.socket() as s:
        s.bind((HOSTS[0], 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def sshd(tmp_path_factory):
    """(port, identity file, bin dir with an `ssh` that keeps known_hosts in the test dir)."""
    d = tmp_path_factory.mktemp('sshd')
    for name in ('host_key', 'client_key'):
        subprocess.run(
            ['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', str(d / name)], check=True
        )
    shutil.copy(d / 'client_key.pub', d / 'authorized_keys')
    port = free_port()
    (d / 'sshd_config').write_text(
        '\n'.join(
            [
                f'Port {port}',
                *(f'ListenAddress {h}' for h in HOSTS),
                f'HostKey {d / "host_key"}',
                f'AuthorizedKeysFile {d / "authorized_keys"}',
                f'PidFile {d / "sshd.pid"}',
                'UsePAM no',
                'PermitRootLogin prohibit-password',
                'PasswordAuthentication no',
                'KbdInteractiveAuthentication no',
                'StrictModes no',
                'LogLevel ERROR',
                '',
            ]
        )
    )
    # the client side: horovod calls `ssh -o ... HOST -p PORT -i KEY CMD`; this wrapper adds a
    # private known_hosts so the test leaves ~/.ssh alone
    bindir = d / 'bin'
    bindir.mkdir()
    (bindir / 'ssh').write_text(
        f'#!/bin/sh\nexec {shutil.which("ssh")} -o UserKnownHostsFile='
        f'{d / "known_hosts"} -o LogLevel=ERROR -o BatchMode=yes "$@"\n'
    )
    (bindir / 'ssh').chmod(0o755)
    os.makedirs('/run/sshd', exist_ok=True)  # sshd's privilege-separation directory
    proc = subprocess.Popen(
        ['/usr/sbin/sshd', '-D', '-e', '-f', str(d / 'sshd_config')],
        stderr=open(d / 'sshd.log', 'w'),
    )
    try:
        for _ in range(100):  # wait until both addresses accept connections
            try:
                for h in HOSTS:
                    socket.create_connection((h, port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail('sshd did not start: ' + (d / 'sshd.log').read_text())
                time.sleep(0.1)
        yield port, d / 'client_key', bindir
    finally:
        proc.terminate()
        proc.wait(10)


def launch(sshd, root, logdir, extra=()):
    """Popen of the multi-host horovodrun; each host runs train.py in root/host_<address>/."""
    port, key, bindir = sshd
    root.mkdir(parents=True, exist_ok=True)
    worker = root / "worker.sh"
    worker.write_text(
        '#!/bin/sh\n# one working directory per "host", as with local disks\n'
        f'mkdir -p {root}/host_$HOROVOD_HOSTNAME && cd {root}/host_$HOROVOD_HOSTNAME '
        f'&& exec {sys.executable} {REPO / "train.py"} "$@"\n'
    )
    argv = [
        '--problem',
        'cifar10',
        '--image_size',
        '8',
        '--n_levels',
        '2',
        '--depth',
        '1',
        '--width',
        '8',
        '--flow_coupling',
        '1',
        '--n_batch_train',
        '4',
        '--n_batch_init',
        '8',
        '--anchor_size',
        '0',
        '--n_train',
        '8000',
        '--n_test',
        '200',
        '--n_batch_test',
        '50',
        '--epochs_warmup',
        '1',
        '--epochs_full_valid',
        '1000',
        '--epochs_full_sample',
        '0',
        '--gradient_checkpointing',
        '0',
        '--max_steps',
        str(STEPS),
        '--ckpt_every_steps',
        '2',
        '--ckpt_every_minutes',
        '0',
        '--log_every',
        '1',
        '--verbose',
        '--no_progress',
        '--logdir',
        logdir,
        *extra,
    ]
    env = {
        **os.environ,
        'PATH': f'{bindir}{os.pathsep}{os.environ["PATH"]}',
        'PYTHONPATH': str(REPO),
        'TF_CPP_MIN_LOG_LEVEL': '2',
        'OMP_NUM_THREADS': '1',
        'GLOW_CACHE_DIR': str(root / 'cache'),
    }
    env.pop('GLOW_NO_HOROVOD', None)
    cmd = [
        'horovodrun',
        '-np',
        '2',
        '-H',
        ','.join(f'{h}:1' for h in HOSTS),
        '--gloo',
        '-p',
        str(port),
        '--ssh-identity-file',
        str(key),
        '--network-interface',
        'lo',
        '--start-timeout',
        '60',
        'sh',
        str(worker),
        *argv,
    ]
    return subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def worker_pid(rank, logdir):
    """pid of the train.py process of `rank` (found through its environment)."""
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            cmd = open(f'/proc/{pid}/cmdline', 'rb').read().split(b'\0')
            env = open(f'/proc/{pid}/environ', 'rb').read().split(b'\0')
        except OSError:
            continue
        if (
            any(c.endswith(b'train.py') for c in cmd)
            and logdir.encode() in cmd
            and f'HOROVOD_RANK={rank}'.encode() in env
        ):
            return int(pid)
    return None


def wait_for(proc, predicate, timeout=240):
    """Read proc's output until predicate(line) is true; returns the output so far."""
    out = []
    deadline = time.time() + timeout
    for line in proc.stdout:
        out.append(line)
        if predicate(line) or time.time() > deadline:
            break
    return ''.join(out)


def finish(proc, timeout=120):
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail('horovodrun did not end within the time limit (hang):\n' + out[-4000:])
    return out


def test_two_hosts_over_ssh_train_stop_die_and_resume_exactly(tmp_path, sshd, shared_data):
    # 1. reference run
    ref = launch(sshd, tmp_path / 'ref', 'run')
    out = finish(ref, 300)
    assert ref.returncode == 0, out[-4000:]
    rank0, rank1 = (tmp_path / 'ref' / f'host_{h}' for h in HOSTS)
    assert rank1.is_dir() and not list(rank1.iterdir()), list(rank1.rglob('*'))  # rank 1: no files
    assert (rank0 / 'run' / 'checkpoints').is_dir() and (rank0 / 'run' / 'config.json').exists()
    assert '2 worker(s) [horovod]' in out
    _, reference = read_ckpt(rank0 / 'run')

    # 2. SIGTERM to rank 1 only: all stop after the same step, rank 0 writes the checkpoint
    root = tmp_path / 'interrupted'
    logdir = rank0 = root / f'host_{HOSTS[0]}' / 'run'
    proc = launch(sshd, root, 'run')
    out = wait_for(proc, lambda line: 'train step 6 ' in line)
    pid = worker_pid(1, 'run')
    assert pid is not None, out[-3000:]
    os.kill(pid, signal.SIGTERM)
    out += finish(proc)
    prefix, state = read_ckpt(logdir)
    step = int(prefix.rsplit('-', 1)[1])
    assert f'stopped by SIGTERM at step {step}; checkpoint at {prefix}' in out, out[-4000:]
    assert 6 <= step < STEPS and f'checkpoint step {step}: {prefix}' in out
    assert proc.returncode != 0  # horovodrun reports the workers' status 143
    assert not list((root / f'host_{HOSTS[1]}').iterdir())

    # 3. same command: resumes; SIGKILL rank 1 after the next checkpoint -> a bounded, clean end
    proc = launch(sshd, root, 'run')
    out = wait_for(
        proc, lambda line: int((re.findall(r'checkpoint step (\d+):', line) or [0])[0]) > step
    )
    assert f'Resumed from {prefix} at step {step}' in out, out[-4000:]
    pid = worker_pid(1, 'run')
    assert pid is not None, out[-3000:]
    os.kill(pid, signal.SIGKILL)
    out += finish(proc)
    assert proc.returncode != 0, out[-3000:]
    killed_at = int(read_ckpt(logdir)[0].rsplit('-', 1)[1])
    assert step < killed_at < STEPS

    # 4. same command: resumes from rank 0's last checkpoint, ends exactly where the reference did
    proc = launch(sshd, root, 'run')
    out = finish(proc, 300)
    assert proc.returncode == 0, out[-4000:]
    assert f'at step {killed_at}' in out
    prefix, resumed = read_ckpt(logdir)
    assert prefix.endswith(f'ckpt-{STEPS}')
    best = 'state/vars/best_test_loss/.ATTRIBUTES/VARIABLE_VALUE'
    assert_same_state(
        {k: v for k, v in resumed.items() if k != best},
        {k: v for k, v in reference.items() if k != best},
        atol=1e-6,
    )
    steps = [r['step'] for r in records(logdir / 'train.jsonl')]
    assert steps == list(range(1, STEPS + 1))  # one curve, no second start
    assert not list((root / f'host_{HOSTS[1]}').iterdir())
