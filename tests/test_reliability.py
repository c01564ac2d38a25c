"""Never lose a run (docs/reliability.md): resume walks back over corrupt checkpoints, a previous
run is never silently started over, best/ only improves, non-finite updates are rolled back and
never saved, SIGTERM stops with a checkpoint, and every user-side fault is a message with exit
status 2."""

import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from glow_tf.cli.train import main
from tests.test_train_resume import REPO, assert_same_state, read_ckpt, records, tiny_argv


def ckpt_steps(d):
    return sorted(
        int(n[5:-6]) for n in os.listdir(d) if n.startswith('ckpt-') and n.endswith('.index')
    )


def run_exit(argv, capsys):
    """main(argv) expected to exit: (code, stderr)."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    return e.value.code, capsys.readouterr().err


@pytest.fixture(scope='module')
def straight8(tmp_path_factory, shared_data):
    """An uninterrupted 8-step run (checkpoints every 2 steps, all kept)."""
    logdir = tmp_path_factory.mktemp('straight') / 'run'
    main(
        tiny_argv(logdir, '--max_steps', '8', '--ckpt_every_steps', '2', '--keep_checkpoints', '9')
    )
    return logdir


# ---------------------------------------------------------------------------- 1. data loss
def test_resume_walks_back_to_newest_loadable_checkpoint(tmp_path, straight8, capsys):
    logdir = tmp_path / 'run'
    main(
        tiny_argv(logdir, '--max_steps', '6', '--ckpt_every_steps', '2', '--keep_checkpoints', '9')
    )
    out = capsys.readouterr().out
    for s in (2, 4, 6):  # a line for every checkpoint written
        assert f"checkpoint step {s}: {logdir / 'checkpoints' / f'ckpt-{s}'}" in out
    first_test = records(logdir / 'test.jsonl')[-1]
    assert first_test['step'] == 6 and ckpt_steps(logdir / 'best') == [6]
    ck = logdir / 'checkpoints'
    data6 = next(ck.glob('ckpt-6.data-*'))
    data6.write_bytes(data6.read_bytes()[: data6.stat().st_size // 2])  # truncated
    (ck / 'ckpt-4.index').unlink()  # deleted
    (ck / 'checkpoint').write_text('')  # empty state file
    (ck / 'ckpt-7_temp').mkdir()  # a cut-off save
    (ck / 'ckpt-7_temp' / 'part-00000-of-00001.data-00000-of-00001').write_bytes(b'x' * 10)

    result = main(
        tiny_argv(logdir, '--max_steps', '8', '--ckpt_every_steps', '2', '--keep_checkpoints', '9')
    )
    err = capsys.readouterr().err
    assert 'ckpt-6: unreadable' in err and 'ckpt-4: ckpt-4.index is missing' in err
    assert f"resuming from {ck / 'ckpt-2'}, the newest checkpoint that loads" in err
    assert 'ckpt-7_temp' in err and not (ck / 'ckpt-7_temp').exists()
    assert result['step'] == 8
    assert (ck / 'ckpt-2.index').exists()  # the intact older checkpoint survives
    # steps 3..8 replayed exactly: same state and one curve as the uninterrupted run
    _, resumed = read_ckpt(logdir)
    _, straight = read_ckpt(straight8)
    best = 'state/vars/best_test_loss/.ATTRIBUTES/VARIABLE_VALUE'
    # best_test_loss differs by design: the resumed run remembers best/ of the first run
    assert resumed.pop(best) == pytest.approx(first_test['loss']) and straight.pop(best) > 1e9
    assert_same_state(resumed, straight)
    assert [r['step'] for r in records(logdir / 'train.jsonl')] == [6, 8]
    tests = records(logdir / 'test.jsonl')  # records after the restored step 2 were dropped
    assert [t['step'] for t in tests] == [8] and tests[0]['loss'] < first_test['loss']
    assert ckpt_steps(logdir / 'best') == [8]  # a better model replaces best/

    # resuming with another bit depth or data set is refused (units of the curves would mix)
    code, err = run_exit(tiny_argv(logdir, '--max_steps', '9', '--n_bits_x', '5'), capsys)
    assert code == 2 and '--n_bits_x: 5 differs from the checkpoint' in err
    code, err = run_exit(
        tiny_argv(logdir, '--max_steps', '9', '--problem', 'mnist', '--image_size', '8'), capsys
    )
    assert code == 2 and "--problem: 'mnist' differs" in err
    (logdir / 'config.json').write_text('{"depth": 2,')  # garbled: named, no traceback
    code, err = run_exit(tiny_argv(logdir, '--max_steps', '9'), capsys)
    assert code == 2 and f"{logdir / 'config.json'}: not a readable training config" in err


def test_previous_run_is_never_silently_started_over(tmp_path, straight8, capsys):
    logdir = tmp_path / 'run'
    shutil.copytree(straight8, logdir)
    ck = logdir / 'checkpoints'
    for p in ck.glob('ckpt-*.data-*'):
        p.write_bytes(b'\0' * p.stat().st_size)  # every checkpoint corrupt
    (ck / 'checkpoint').write_text('garbled {{{ not a proto')
    before = sorted(os.listdir(ck))
    code, err = run_exit(tiny_argv(logdir, '--max_steps', '2'), capsys)
    assert code == 2
    assert 'holds a previous run' in err and 'none of its checkpoints loads' in err
    assert '--start_over' in err and 'ckpt-8: unreadable' in err
    assert [p for p in before if p != 'checkpoint'] == [
        p for p in sorted(os.listdir(ck)) if not p.startswith('checkpoint')
    ]  # nothing deleted

    result = main(tiny_argv(logdir, '--max_steps', '2', '--start_over'))
    assert result['step'] == 2
    moved = [p for p in logdir.iterdir() if p.name.startswith('previous-')]
    assert len(moved) == 1 and ckpt_steps(moved[0] / 'checkpoints') == [2, 4, 6, 8]
    assert [r['step'] for r in records(logdir / 'train.jsonl')] == [2]
    capsys.readouterr()
    # the same command requeued (still with --start_over) resumes instead of starting again
    result = main(tiny_argv(logdir, '--max_steps', '3', '--start_over'))
    assert result['step'] == 3 and '--start_over ignored' in capsys.readouterr().err
    assert len([p for p in logdir.iterdir() if p.name.startswith('previous-')]) == 1
    assert [r['step'] for r in records(logdir / 'train.jsonl')] == [2, 3]


def test_best_is_only_replaced_by_a_better_model(tmp_path, shared_data, capsys):
    """best/ holds a checkpoint kept for loss 0.5 (better than this model reaches): the run's test
    passes must not replace it, although the run itself starts with best_test_loss = inf."""
    import tensorflow as tf

    from glow_tf.runs import checkpoint_format as ckpt_lib

    logdir = tmp_path / 'run'
    state = ckpt_lib.TrainState()
    state.set(step=100, best_test_loss=0.5)
    tf.train.CheckpointManager(
        tf.train.Checkpoint(state=ckpt_lib.variable_group(state.vars)),
        str(logdir / 'best'),
        1,
        checkpoint_name='ckpt',
    ).save(100)
    main(tiny_argv(logdir, '--max_steps', '6', '--epochs_full_valid', '1'))
    tests = records(logdir / 'test.jsonl')
    assert [t['step'] for t in tests] == [6] and not tests[0]['best'] and tests[0]['loss'] > 0.5
    assert ckpt_steps(logdir / 'best') == [100]


# ---------------------------------------------------------------------------- 2. flags, guards
@pytest.mark.parametrize(
    'flag,value,text',
    [
        ('--lr', 'inf', 'must be a finite number'),
        ('--lr', '1e39', 'must be in (0, 1]'),
        ('--lr', '1e4', 'must be in (0, 1]'),
        ('--lr', 'nan', 'must be a finite number'),
        ('--beta1', 'nan', 'must be a finite number'),
        ('--weight_y', 'inf', 'must be a finite'),
        ('--ckpt_every_minutes', '-1', 'must be >= 0'),
    ],
)
def test_nonfinite_or_insane_flags_are_refused(tmp_path, capsys, flag, value, text):
    code, err = run_exit(tiny_argv(tmp_path / 'x', flag, value), capsys)
    assert code == 2 and f'{flag}: {text}' in err
    assert not (tmp_path / 'x').exists()


def test_update_making_weights_nonfinite_is_rolled_back(tmp_path, shared_data, capsys):
    """An infinite learning rate at step 3 (test hook) makes the weights inf after the update: it is
    rolled back exactly -- the run equals one where step 3 was skipped before the update -- and
    no checkpoint is written at that step (checkpoints every minute-fraction = every good step)."""
    main(
        tiny_argv(
            tmp_path / 'skip',
            '--max_steps',
            '5',
            '--inject_nan_steps',
            '3',
            '--ckpt_every_minutes',
            '1e-9',
        )
    )
    capsys.readouterr()
    main(
        tiny_argv(
            tmp_path / 'roll',
            '--max_steps',
            '5',
            '--inject_inf_lr_steps',
            '3',
            '--ckpt_every_minutes',
            '1e-9',
            '--keep_checkpoints',
            '9',
        )
    )
    cap = capsys.readouterr()
    assert 'step 3: the update made weights or their averages non-finite; rolled back' in cap.err
    assert [s for s in range(1, 6) if f'checkpoint step {s}:' in cap.out] == [1, 2, 4, 5]
    assert ckpt_steps(tmp_path / 'roll' / 'checkpoints') == [1, 2, 4, 5]
    _, rolled = read_ckpt(tmp_path / 'roll')
    _, skipped = read_ckpt(tmp_path / 'skip')
    assert_same_state(rolled, skipped)
    assert all(np.all(np.isfinite(v)) for k, v in rolled.items() if 'best_test_loss' not in k)


# ---------------------------------------------------------------------------- 3. SIGTERM / SIGINT
@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_with_checkpoint_of_last_step(tmp_path, shared_data, sig):
    logdir = tmp_path / 'run'
    argv = tiny_argv(
        logdir,
        '--max_steps',
        '100000',
        '--log_every',
        '1',
        '--verbose',
        '--ckpt_every_minutes',
        '0',
        n_train=80000,
    )
    proc = subprocess.Popen(
        [sys.executable, str(REPO / 'train.py')] + argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, 'GLOW_NO_HOROVOD': '1', 'PYTHONPATH': str(REPO)},
    )
    try:
        for line in proc.stdout:  # wait until it is training
            if line.startswith('train step 3 '):
                break
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, err[-3000:]
    name = signal.Signals(sig).name
    prefix, state = read_ckpt(logdir)
    step = int(prefix.rsplit('-', 1)[1])
    assert f"stopped by {name} at step {step}; checkpoint at {prefix}" in err
    assert step >= 3 and int(state['state/vars/step/.ATTRIBUTES/VARIABLE_VALUE']) == step
    assert records(logdir / 'train.jsonl')[-1]['step'] == step
    if sig == signal.SIGTERM:  # the checkpoint is that of an uninterrupted run to the same step
        main(
            tiny_argv(
                tmp_path / 'straight',
                '--max_steps',
                str(step),
                '--ckpt_every_minutes',
                '0',
                n_train=80000,
            )
        )
        _, straight = read_ckpt(tmp_path / 'straight')
        best = 'state/vars/best_test_loss/.ATTRIBUTES/VARIABLE_VALUE'
        state.pop(best), straight.pop(best)  # the straight run ends with a test pass
        assert_same_state(state, straight, atol=1e-6)


# ---------------------------------------------------------------------------- 4. messages
def test_logdir_that_is_a_file_or_under_a_file(tmp_path, shared_data, capsys):
    (tmp_path / 'f').write_text('x')
    code, err = run_exit(tiny_argv(tmp_path / 'f', '--max_steps', '1'), capsys)
    assert code == 2 and f"--logdir: {tmp_path / 'f'} is a file, not a directory" in err
    code, err = run_exit(tiny_argv(tmp_path / 'f' / 'sub', '--max_steps', '1'), capsys)
    assert code == 2 and f"{tmp_path / 'f'} is a file, so the directory cannot be created" in err


def _mount_tmpfs(path, options):
    path.mkdir()
    r = subprocess.run(
        ['mount', '-t', 'tmpfs', '-o', options, 'tmpfs', str(path)], capture_output=True, text=True
    )
    return r.returncode == 0


@pytest.fixture
def tmpfs(tmp_path):
    """mount(tmpfs) as root; a directory with permissions 0555 / skip otherwise."""
    mounted = []

    def make(name, options):
        p = tmp_path / name
        if os.geteuid() == 0 and _mount_tmpfs(p, options):
            mounted.append(p)
            return p
        return None

    yield make
    for p in mounted:
        subprocess.run(['umount', '-l', str(p)], check=False)


def test_read_only_logdir(tmp_path, tmpfs, shared_data, capsys):
    ro = tmpfs('ro', 'ro,size=1m')
    if ro is None:
        ro = tmp_path / 'ro'
        ro.mkdir()
        ro.chmod(0o555)
    code, err = run_exit(tiny_argv(ro / 'run', '--max_steps', '1'), capsys)
    assert code == 2 and f"--logdir: {ro / 'run'} cannot be created ({ro} is not writable)" in err


def test_disk_full_names_file_and_keeps_previous_checkpoint(tmp_path, tmpfs, shared_data, capsys):
    # the tiny model's checkpoint is ~0.38 MiB and the run's other files ~0.4 MiB: the first
    # checkpoint fits, the second does not
    disk = tmpfs('disk', 'size=1000k')
    if disk is None:
        pytest.skip('needs root to mount a small tmpfs (disk-full)')
    logdir = disk / 'run'
    code, err = run_exit(tiny_argv(logdir, '--max_steps', '6', '--ckpt_every_steps', '2'), capsys)
    assert code == 2, err
    assert f"could not write checkpoint {logdir / 'checkpoints'}/ckpt-" in err
    assert 'MiB free on that file system' in err and 'is intact' in err
    from glow_tf.runs.checkpoint_format import verify_checkpoint

    steps = ckpt_steps(logdir / 'checkpoints')
    assert steps and all(
        verify_checkpoint(str(logdir / 'checkpoints' / f'ckpt-{s}')) is None for s in steps
    )
    assert not [n for n in os.listdir(logdir / 'checkpoints') if '_temp' in n]


def test_corrupt_checkpoint_and_config_in_sample_and_manipulate(tmp_path, logdir, capsys):
    from glow_tf.cli import manipulate, sample

    run = tmp_path / 'run'
    shutil.copytree(logdir, run)
    ck = run / 'checkpoints'
    for p in list(ck.glob('ckpt-3.*')):  # an older, intact copy as ckpt-1
        shutil.copy(p, ck / p.name.replace('ckpt-3', 'ckpt-1'))
    data = next(ck.glob('ckpt-3.data-*'))
    blob = bytearray(data.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # one flipped byte: checksum mismatch
    data.write_bytes(bytes(blob))
    with pytest.raises(SystemExit) as e:
        sample.main(['--model', str(run), '--n', '1', '--out', str(tmp_path / 's.png')])
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"{ck / 'ckpt-3'}: checkpoint cannot be loaded" in err
    assert f"the newest checkpoint that loads is {ck / 'ckpt-1'}" in err
    with pytest.raises(SystemExit) as e:
        manipulate.main(
            [
                'encode',
                '--model',
                str(run),
                '--images',
                str(tmp_path),
                '--out',
                str(tmp_path / 'z.npz'),
            ]
        )
    assert e.value.code == 2 and 'checkpoint cannot be loaded' in capsys.readouterr().err
    # a garbled config.json and an --out that is a directory
    for p in ck.glob('ckpt-3.*'):
        p.unlink()
    (run / 'config.json').write_text('{"depth": 2,')
    with pytest.raises(SystemExit) as e:
        sample.main(['--model', str(run), '--n', '1', '--out', str(tmp_path / 's.png')])
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"{run / 'config.json'}: not a readable training config" in err
    with pytest.raises(SystemExit) as e:
        sample.main(['--model', str(logdir), '--n', '1', '--out', str(tmp_path)])
    assert e.value.code == 2 and f"--out {tmp_path} is a directory" in capsys.readouterr().err


def test_corrupt_tfrecord_payload_names_shard_and_record(tmp_path, fixtures, data_cache, capsys):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(16)]
    root = tmp_path / 'tfr'
    shards = fixtures.write_tfrecord_shards(root, 'train', images, n_shards=2)
    fixtures.write_tfrecord_shards(root, 'validation', images[:4], n_shards=1)
    blob = bytearray(shards[1].read_bytes())
    size = len(blob) // 8  # 8 records of equal size in this shard
    blob[5 * size + 12 + 40] ^= 0xFF  # inside record 5's payload: its frame header is intact
    shards[1].write_bytes(bytes(blob))
    argv = [
        '--problem',
        'tfr',
        '--data_dir',
        str(root),
        '--image_size',
        '8',
        '--n_levels',
        '2',
        '--depth',
        '1',
        '--width',
        '8',
        '--n_batch_train',
        '4',
        '--n_batch_init',
        '4',
        '--n_batch_test',
        '4',
        '--anchor_size',
        '0',
        '--n_train',
        '16',
        '--n_test',
        '4',
        '--max_steps',
        '8',
        '--epochs_full_valid',
        '1000',
        '--epochs_full_sample',
        '0',
        '--logdir',
        str(tmp_path / 'run'),
        '--no_progress',
    ]
    code, err = run_exit(argv, capsys)
    assert code == 2, err
    assert f"{shards[1]}: record 5 is corrupt" in err

    # a well-framed record whose example holds the wrong number of bytes
    import tensorflow as tf

    shards[1].unlink()
    with tf.io.TFRecordWriter(str(shards[1])) as w:
        for i, img in enumerate(images[:8]):
            data = img.tobytes()[:100] if i == 3 else img.tobytes()
            feat = {
                'shape': tf.train.Feature(int64_list=tf.train.Int64List(value=[8, 8, 3])),
                'data': tf.train.Feature(bytes_list=tf.train.BytesList(value=[data])),
                'label': tf.train.Feature(int64_list=tf.train.Int64List(value=[0])),
            }
            w.write(tf.train.Example(features=tf.train.Features(feature=feat)).SerializeToString())
    code, err = run_exit(argv, capsys)
    assert code == 2 and f"{shards[1]}: record 3 is corrupt (data feature has 100 bytes" in err


# ---------------------------------------------------------------------------- 5. leftovers
def test_converter_failure_leaves_no_shards_and_suggests_skip_bad(tmp_path, fixtures):
    from glow_tf.data import DataError, convert

    rng = np.random.default_rng(0)
    src = tmp_path / 'src'
    for split in ('train', 'test'):
        for i in range(6):
            fixtures.save_image(
                src / split / 'a' / f'{i:03d}.png', fixtures.random_image(rng, 8, 8)
            )
    fixtures.save_image(src / 'train' / 'a' / '005.png', fixtures.random_image(rng, 8, 8, 1), 'L')
    with pytest.raises(DataError, match=r'005\.png: grayscale.*--skip_bad'):
        convert('folder', src, tmp_path / 'out', res=8, shards=3)
    assert not list((tmp_path / 'out').rglob('*.tfrecords*'))
