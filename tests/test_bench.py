"""The benchmark harness (bench/bench_glow.py) runs in --quick mode and prints valid JSON lines."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_bench_quick_prints_table_and_json_lines():
    cmd = [
        sys.executable,
        str(REPO / 'bench' / 'bench_glow.py'),
        '--quick',
        '--cases',
        'a_affine,mem_sweep',
        '--iters',
        '1',
        '--sweep-iters',
        '1',
        '--sweep-depths',
        '1,2',
        '--sweep-modes',
        'plain,reversible',
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=str(REPO), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [
        json.loads(line[5:]) for line in proc.stdout.splitlines() if line.startswith('JSON ')
    ]
    by_case = {}
    for r in records:
        by_case.setdefault(r['case'], []).append(r)
    assert set(by_case) == {'a_affine', 'mem_sweep', 'machine'}

    (a,) = by_case['a_affine']
    for impl in ('glow_tf', 'tfp'):
        d = a[impl]
        for key in (
            'train_img_s',
            'sample_img_s',
            'sample_s_per_batch',
            'peak_step_mb',
            'achieved_gflops',
        ):
            assert math.isfinite(d[key]) and d[key] > 0, (impl, key, d[key])
    ratio = a['ratio_glow_tf_over_tfp']
    assert all(
        math.isfinite(ratio[k]) and ratio[k] > 0
        for k in ('train_throughput', 'sample_throughput', 'peak_memory')
    )
    assert a['train_gflop_per_image'] > 0 and a['conv_peak_gflops'] > 0

    sweep = {(r['memory_mode'], r['depth']): r for r in by_case['mem_sweep']}
    assert set(sweep) == {('plain', 1), ('plain', 2), ('reversible', 1), ('reversible', 2)}
    assert all(r['peak_step_mb'] > 0 and r['time_over_plain'] > 0 for r in sweep.values())
    (machine,) = by_case['machine']
    assert set(machine['memory_sweep_depth_ratio']) == {'plain', 'reversible'}
    # the human-readable tables
    assert '| a_affine | **glow_tf / TFP** |' in proc.stdout
    assert '| reversible | 2 |' in proc.stdout


def test_flop_count_matches_hand_count():
    sys.path.insert(0, str(REPO))
    import glow_tf
    from bench.common import forward_flops_per_image

    model = glow_tf.Glow(
        image_shape=(8, 8, 3), n_levels=2, depth=1, width=16, flow_coupling='affine'
    )
    # level 0: 4x4 px, C=12: invconv 144, conv3x3 6->16, conv1x1 16->16, zero-conv3x3 16->12,
    #          split prior zero-conv3x3 6->12;  level 1: 2x2 px, C=24: 576, 12->16, 256, 16->24
    level0 = 16 * (144 + 9 * 6 * 16 + 256 + 9 * 16 * 12 + 9 * 6 * 12)
    level1 = 4 * (576 + 9 * 12 * 16 + 256 + 9 * 16 * 24)
    assert forward_flops_per_image(model) == 2 * (level0 + level1)


def test_revisions_runs_this_tree_against_a_git_revision(tmp_path):
    """bench/revisions.py times this tree and a revision's package in two live workers, each
    importing its own glow_tf (the workers check where glow_tf came from), and writes JSON. The
    three invocations run at the same time (each keeps about one core busy)."""
    script = [sys.executable, str(REPO / 'bench' / 'revisions.py')]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    train, trainer = tmp_path / 'train.json', tmp_path / 'trainer.json'
    # the harness's training step of a --quick model
    cmd = script + ['--base', 'HEAD', '--quick', '--iters', '2', '--warmup', '1']
    cmd += ['--json', str(train)]
    # --what trainer: the trainer's own step (gradient + update) of a tiny model, two precisions
    trainer_cmd = script + ['--base', 'HEAD', '--what', 'trainer', '--models', 'tiny']
    trainer_cmd += ['--iters', '1', '--warmup', '1', '--base_precision', 'bf16']
    trainer_cmd += ['--json', str(trainer)]
    bad_cmd = script + ['--base', 'no-such-rev']
    procs, logs = [], []
    try:
        for i, (c, e) in enumerate(((cmd, env), (trainer_cmd, env), (bad_cmd, None))):
            logs.append(tmp_path / f'stderr{i}.txt')  # files: a full pipe would block a child
            with open(logs[-1], 'w') as f:
                procs.append(subprocess.Popen(c, stdout=f, stderr=f, cwd=str(REPO), env=e))
        for p in procs:
            p.wait(timeout=300)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    (proc, trainer_proc, bad), (err, trainer_err, bad_err) = procs, [f.read_text() for f in logs]

    assert proc.returncode == 0, err[-3000:]
    result = json.loads(train.read_text())
    (row,) = result['rows']
    assert (row['case'], row['mode'], row['what'], row['iters']) == (
        'a_affine',
        'plain',
        'train',
        2,
    )
    assert row['this_s'] > 0 and row['base_s'] > 0
    assert math.isfinite(row['ratio_this_over_base']) and row['ratio_this_over_base'] > 0
    assert row['first_this_s'] > row['this_s'] and row['first_base_s'] > row['base_s']  # tracing
    assert len(result['base_commit']) == 40

    assert trainer_proc.returncode == 0, trainer_err[-3000:]
    result = json.loads(trainer.read_text())
    (row,) = result['rows']
    assert row['model'] == 'tiny' and result['precision'] == {'this': 'fp32', 'base': 'bf16'}
    assert row['first_this_s'] > row['this_s'] > 0 and row['first_base_s'] > row['base_s'] > 0

    assert bad.returncode != 0 and "--base 'no-such-rev' is not a commit" in bad_err


def test_learning_curves_from_json_without_matplotlib(tmp_path, monkeypatch, capsys):
    """Without matplotlib, learning_curves.py asks for it by name before doing anything (exit 2);
    `--plot ''` merges the JSON outputs and reports the file it wrote."""
    import pytest

    from bench import learning_curves

    monkeypatch.setitem(sys.modules, 'matplotlib', None)  # `import matplotlib` raises
    run = {'main': {'points': [{'step': 100, 'train_time': 9.0, 'raw': 2.0, 'ema': 2.1}]}}
    (tmp_path / 'm.json').write_text(json.dumps(run))
    merged = tmp_path / 'merged.json'
    argv = ['--from-json', str(tmp_path / 'm.json'), '--json-out', str(merged)]
    with pytest.raises(SystemExit) as e:
        learning_curves.main(argv + ['--plot', str(tmp_path / 'c.png')])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert 'matplotlib' in err and ".[bench]" in err and not merged.exists()
    learning_curves.main(argv + ['--plot', ''])
    assert capsys.readouterr().out.strip() == f'wrote {merged}'
    assert json.loads(merged.read_text()) == run
    with pytest.raises(SystemExit) as e:
        learning_curves.main(['--from-json', str(tmp_path / 'absent.json'), '--plot', ''])
    assert e.value.code == 2 and 'absent.json' in capsys.readouterr().err


def test_ring_allreduce_model_and_its_fit():
    """t = 2(N-1)·a + 2(N-1)/N · S / B, checked by hand; the fit recovers a and B from exact
    times."""
    sys.path.insert(0, str(REPO))
    from bench.allreduce import fit_latency_bandwidth, ring_allreduce_seconds

    # 8 workers, 700 MB at 150 GB/s, 5 us: 14 · 5e-6 + 1.75 · 700e6 / 150e9 = 8.237 ms
    assert math.isclose(ring_allreduce_seconds(700e6, 8, 150e9, 5e-6), 8.2367e-3, rel_tol=1e-4)
    assert ring_allreduce_seconds(700e6, 1, 150e9, 5e-6) == 0.0
    rows = [
        {'bytes': s, 'seconds': ring_allreduce_seconds(s, 4, 2e9, 3e-4)}
        for s in (4e3, 6.4e4, 5e5, 8e6, 1.28e8)
    ]
    latency, bandwidth = fit_latency_bandwidth(rows, 4)
    assert math.isclose(latency, 3e-4, rel_tol=1e-6) and math.isclose(bandwidth, 2e9, rel_tol=1e-6)
    # times that noise made fall with size (a negative slope): each term from its own end
    noisy = [{'bytes': 4e3, 'seconds': 2e-3}, {'bytes': 5e5, 'seconds': 1.5e-3}]
    latency, bandwidth = fit_latency_bandwidth(noisy + [{'bytes': 6.4e4, 'seconds': 1.8e-3}], 2)
    assert latency > 0 and bandwidth > 0


def test_allreduce_bench_runs_under_horovodrun(tmp_path):
    import shutil

    import pytest

    if shutil.which('horovodrun') is None:
        pytest.fail('horovodrun is not installed (scripts/install.sh builds Horovod)')
    out = tmp_path / 'allreduce.json'
    cmd = ['horovodrun', '-np', '2', '-H', 'localhost:2', '--gloo', sys.executable]
    cmd += [str(REPO / 'bench' / 'allreduce.py'), '--quick', '--out', str(out)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=str(REPO), env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert 'vector units' in proc.stdout
    summary = json.loads(out.read_text())
    assert summary['workers'] == 2 and len(summary['rows']) == 3
    assert all(r['seconds'] > 0 and r['bytes'] > 0 for r in summary['rows'])
    assert summary['bandwidth_Bps'] > 0 and summary['latency_s'] >= 0


def test_step_profile_measures_trace_graph_and_batch_floor():
    sys.path.insert(0, str(REPO))
    from bench.common import QUICK_CASES
    from bench.step_profile import profile_case

    case = QUICK_CASES['s_mnist']  # 8x8x1, 2 levels x 2 steps, batch 4
    result = profile_case(case, batches=[1], iters=2)
    # the training step's graph holds the forward pass and its gradient
    assert result['step_ops'] > 2 * result['forward_ops'] > 0
    assert sum(result['step_ops_by_type'].values()) <= result['step_ops']
    assert result['trace_step_s'] > 0 and result['first_run_s'] > 0
    assert set(result['step_s']) == {1, case.batch}
    assert result['overhead_share'] == result['step_s'][1] / result['step_s'][case.batch]


def test_update_step_bench_compares_the_flat_and_per_variable_updates():
    sys.path.insert(0, str(REPO))
    from bench.update_step import VARIANTS, measure

    res = measure('tiny', batch=4, rounds=1, steps=1)
    rows = res['variants']
    assert set(rows) == set(VARIANTS) and res['variables'] > 10
    # per variable, Keras's update builds several operations and the flat one about five
    assert rows['flat']['ops'] < rows['keras']['ops'] < rows['keras_guarded']['ops']
    assert all(
        r['trace_s'] > 0 and r['update_ms'] > 0 and r['step_ms'] > r['update_ms']
        for r in rows.values()
    )


def test_trainer_bench_models_are_valid_runs_and_the_p1_ones_match_their_cases(tmp_path):
    sys.path.insert(0, str(REPO))
    from bench.common import FULL_CASES
    from bench.update_step import MODELS, trainer_config
    from glow_tf.runs.config import TrainConfig

    for model in MODELS:
        cfg = TrainConfig(**trainer_config(model), logdir=str(tmp_path)).validate_flags()
        assert cfg.n_batch_init == cfg.n_batch_train
    for model, case in [('p1_additive', 'a_additive'), ('p1_affine', 'a_affine')]:
        cfg, case = TrainConfig(**trainer_config(model), logdir=str(tmp_path)), FULL_CASES[case]
        assert (cfg.n_levels, cfg.depth, cfg.width) == (case.levels, case.depth, case.width)
        assert cfg.n_batch_train == case.batch and cfg.flow_coupling == (case.coupling == 'affine')


def test_epoch_turnover_times_both_pipeline_settings(capsys):
    sys.path.insert(0, str(REPO))
    from bench.epoch_turnover import main

    main(['--epochs', '2', '--steps', '3', '--load_ms', '5'])
    out = capsys.readouterr().out
    result = json.loads(next(l for l in out.splitlines() if l.startswith('JSON '))[5:])
    assert set(result['rows']) == {'glow_tf (autotune off)', 'tf.data default (autotune on)'}
    for rows in result['rows'].values():
        assert len(rows) == 2
        assert all(r['build_s'] > 0 and r['batches_s'] > 0 and r['delete_s'] >= 0 for r in rows)
    assert '| glow_tf (autotune off) |' in out and 'vector units' in out


def test_op_split_divides_a_call_into_convolutions_and_the_rest():
    sys.path.insert(0, str(REPO))
    from bench.common import QUICK_CASES
    from bench.step_profile import EXECUTOR_EVENTS, op_split

    result = op_split(QUICK_CASES['a_additive'], calls=2)
    assert set(result['conv_reference_gflops']) == {'conv1x1', 'conv3x3'}
    for what in ('train', 'sample'):
        d = result[what]
        assert 0 < d['conv_ms'] < d['op_ms'] and d['wall_ms'] > 0
        assert d['conv_share'] == d['conv_ms'] / d['op_ms'] and d['conv_gflops_in_graph'] > 0
        others = d['costliest_other_ops_ms']
        assert others and not any('Conv2D' in k or 'MatMul' in k for k in others)
        assert not any(k in EXECUTOR_EVENTS or k.startswith('__') for k in others)
    # the training step runs the forward pass and its gradient: more convolution time
    assert result['train']['conv_ms'] > result['sample']['conv_ms']


def test_frozen_weights_bench_compares_the_two_loadings(logdir, capsys):
    sys.path.insert(0, str(REPO))
    from bench.frozen_weights import main

    args = ['--model', str(logdir), '--batches', '1,3', '--iters', '1', '--n_test', '8']
    main(args + ['--n_samples', '3'])
    out = capsys.readouterr().out
    result = json.loads(next(l for l in out.splitlines() if l.startswith('JSON '))[5:])
    agree, speed = result['agreement'], result['speed']
    assert 'vector units' in out and set(speed) == {'1', '3'} and agree['frozen_flag']
    assert all(r['decode_ms_frozen'] > 0 and r['encode_speedup'] > 0 for r in speed.values())
    assert agree['decoded_pixels_differing'] == 0 and agree['latent_max_abs_difference'] < 1e-4
    bits = agree['bits_per_dim']
    assert abs(bits['frozen'] - bits['reads']) < 1e-5 and bits['reads'] > 0
    assert all(s > 0 for s in result['first_decode_s'].values())


def test_inference_precision_compares_fp32_with_auto(logdir, capsys):
    sys.path.insert(0, str(REPO))
    from bench.inference_precision import main

    main(['--model', str(logdir), '--batches', '1,3', '--iters', '1', '--n_test', '8'])
    out = capsys.readouterr().out
    result = json.loads(next(l for l in out.splitlines() if l.startswith('JSON '))[5:])
    acc, speed = result['accuracy'], result['speed']
    assert 'vector units' in out and set(speed) == {'1', '3'}
    assert all(r['decode_ms_fp32'] > 0 and r['encode_speedup'] > 0 for r in speed.values())
    bits = acc['bits_per_dim']
    if result['auto_resolves_to'] == 'fp32':  # no bfloat16 units: the same model twice
        assert bits['auto'] == bits['fp32'] and acc['sample_values_differing'] == 0
    else:  # bf16 coupling networks: nearly the same likelihood, a few pixels moved by rounding
        assert abs(bits['auto'] - bits['fp32']) < 0.01 and acc['sample_values_differing'] > 0
