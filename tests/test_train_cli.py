"""train.py's command line: --config files (JSON / YAML, a run's own config.json), help texts,
errors under horovodrun, and what a run writes for TensorBoard (hparams, config, scalars)."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from glow_tf.cli.train import build_parser, main, parse_config
from glow_tf.runs.config import TrainConfig

RUN_FLAGS = [
    '--problem',
    'mnist',
    '--image_size',
    '16',
    '--n_levels',
    '2',
    '--depth',
    '3',
    '--width',
    '24',
    '--flow_coupling',
    '1',
    '--learntop',
    '--lr',
    '0.002',
    '--beta2',
    '0.99',
    '--memory_mode',
    'reversible',
    '--n_batch_train',
    '16',
    '--weight_decay',
    '0.999',
    '--log_every',
    '7',
    '--no_progress',
    '--inject_nan_steps',
    '3,5',
    '--logdir',
    'runs/x',
]


def _parse(argv):
    return parse_config(build_parser(), argv)


def _user_fields(cfg):
    return {k: v for k, v in cfg.to_dict().items() if k not in TrainConfig.DERIVED}


def test_config_json_of_a_run_reproduces_its_flags(tmp_path):
    flags = _parse(RUN_FLAGS)
    resolved, plan = flags.resolve((16, 16, 3), 10000, 10)  # the trainer saves as config.json
    path = tmp_path / 'config.json'
    resolved.save(str(path), plan)
    assert json.loads(path.read_text())['train_its'] == plan.train_its  # for reference

    again = _parse(['--config', str(path)])
    assert _user_fields(again) == _user_fields(resolved)
    assert again.resolve((16, 16, 3), 10000, 10) == (resolved, plan)
    assert (again.depth, again.memory_mode, again.progress, again.inject_nan_steps) == (
        3,
        'reversible',
        False,
        [3, 5],
    )

    # flags on the command line win over the file; the rest still comes from it
    over = _parse(['--config', str(path), '--depth', '5', '--lr', '0.01', '--logdir', 'runs/y'])
    assert (over.depth, over.lr, over.logdir) == (5, 0.01, 'runs/y')
    assert {k: v for k, v in _user_fields(over).items() if k not in ('depth', 'lr', 'logdir')} == {
        k: v for k, v in _user_fields(resolved).items() if k not in ('depth', 'lr', 'logdir')
    }


def test_yaml_config_with_override(tmp_path):
    path = tmp_path / 'celeba.yaml'
    path.write_text(
        "# a CelebA run\nproblem: celeba\nimage_size: 64\nn_levels: 4\n"
        "depth: 16\nlearntop: yes\nlr: 5e-4\nn_bits_x: 5\ninject_nan_steps: [1, 2]\n"
        "train_its: 123   # derived fields are recomputed, so ignored\n"
    )
    cfg = _parse(['--config', str(path), '--n_bits_x', '8'])
    assert (cfg.problem, cfg.image_size, cfg.n_levels, cfg.depth) == ('celeba', 64, 4, 16)
    assert cfg.learntop is True and cfg.lr == 0.0005 and cfg.n_bits_x == 8
    assert cfg.inject_nan_steps == [1, 2] and not hasattr(cfg, 'train_its')
    assert cfg.width == TrainConfig().width  # untouched options keep their defaults


@pytest.mark.parametrize(
    'content,name,expected',
    [
        ('{"depth": 4, "no_such_option": 1}', 'c.json', "unknown option(s) ['no_such_option']"),
        ('{"depth": "four"}', 'c.json', "depth: expected an integer, got 'four'"),
        ('{"learntop": 1}', 'c.json', 'learntop: expected true or false'),
        ('{"depth": 4,}', 'c.json', 'not valid JSON'),
        ('depth: [1\n', 'c.yaml', 'not valid YAML'),
        ('[1, 2]', 'c.json', 'expected a mapping'),
        (None, 'missing.json', 'cannot read it'),
    ],
)
def test_bad_config_files_name_the_file_and_key(tmp_path, capsys, content, name, expected):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(SystemExit) as e:
        main(['--config', str(path), '--logdir', str(tmp_path / 'run')])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f'--config: {path}: ' in err and expected in err
    assert 'Traceback' not in err and not (tmp_path / 'run').exists()


def test_help_has_examples_and_no_misleading_defaults(monkeypatch):
    text = build_parser().format_help()
    assert 'examples:' in text and 'train.py --config runs/cifar10/config.json' in text
    for bad in ('(default: True)', '(default: False)', '(default: None)', '(default: )'):
        assert bad not in text
    flat = ' '.join(text.split())
    no_progress = flat.split('--no_progress')[-1].split('examples:')[0]
    assert 'default' in no_progress and '(default:' not in no_progress
    # a default stated in the help text is not repeated by the formatter
    beta2 = flat.rsplit('--beta2 BETA2', 1)[1].split('--polyak_epochs')[0]
    assert beta2.count('default') == 1
    assert '(default: 50)' in flat.rsplit('--log_every LOG_EVERY', 1)[1]
    # the console script names itself
    monkeypatch.setattr(sys, 'argv', ['/usr/local/bin/glow-train'])
    assert build_parser().prog == 'glow-train'
    monkeypatch.setattr(sys, 'argv', ['train.py'])
    assert build_parser().prog == 'train.py'


def test_flag_errors_under_horovodrun_are_one_line_from_rank_0(monkeypatch, capsys, tmp_path):
    argv = ['--flow_permutation', '3', '--logdir', str(tmp_path / 'run')]
    monkeypatch.setenv('HOROVOD_RANK', '1')
    for bad in (argv, ['--no_such_flag', '1']):
        with pytest.raises(SystemExit) as e:
            main(bad)
        assert e.value.code == 2 and capsys.readouterr().err == ''  # other ranks: quiet
    monkeypatch.setenv('HOROVOD_RANK', '0')
    for bad, expected in (
        (argv, '--flow_permutation: invalid choice: 3 (choose from 0, 1, 2)'),
        (['--no_such_flag', '1'], 'unrecognized arguments: --no_such_flag'),
    ):
        with pytest.raises(SystemExit) as e:
            main(bad)
        err = capsys.readouterr().err
        assert e.value.code == 2 and err.count('\n') == 1 and expected in err
        assert 'usage:' not in err
    monkeypatch.delenv('HOROVOD_RANK')  # a plain process keeps argparse's usage text
    with pytest.raises(SystemExit):
        main(['--no_such_flag', '1'])
    assert 'usage:' in capsys.readouterr().err


def _events(logdir):
    import tensorflow as tf

    for path in sorted(Path(logdir, 'tensorboard').glob('events.out.tfevents.*')):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                yield event.step, value


def test_run_writes_hparams_config_and_scalars_and_fixes_the_test_batch(
    tmp_path, shared_data, capsys
):
    """The CIFAR-10 subset's 1017 test images with the default 50-image test batch; progress."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import plugin_data_pb2

    logdir = tmp_path / 'run'
    argv = [
        '--problem',
        'cifar10',
        '--data_dir',
        str(shared_data / 'cifar10-subset'),
        '--image_size',
        '8',
        '--n_levels',
        '2',
        '--depth',
        '2',
        '--width',
        '16',
        '--n_batch_train',
        '8',
        '--n_batch_init',
        '32',
        '--anchor_size',
        '0',
        '--n_train',
        '48',
        '--max_steps',
        '4',
        '--log_every',
        '2',
        '--epochs_full_sample',
        '0',
        '--gradient_checkpointing',
        '0',
        '--logdir',
        str(logdir),
    ]
    main(argv)
    captured = capsys.readouterr()
    out, err = captured.out, captured.err
    assert 'note: --n_batch_test' in out and 'using test batch 9' in out
    # progress on stderr (not disabled here): the slow set-up steps with their times, and bars
    assert 'building the model (2 levels x 2 steps, width 16): ' in err
    assert 'data-dependent init on 32 images: ' in err
    assert 'epoch 1:' in err and 'test:' in err and '/113' in err
    assert '\r' not in err  # stderr is not a terminal here: whole lines, no redrawn bar
    final = [json.loads(line) for line in (logdir / 'test.jsonl').read_text().splitlines()][-1]
    assert final['n_test'] == 1017 and final['step'] == 4

    hparams, experiment, texts, scalars = {}, None, [], {}
    for step, value in _events(logdir):
        plugin = value.metadata.plugin_data.plugin_name
        if plugin == 'hparams':
            data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
            if data.HasField('session_start_info'):
                hparams = {
                    k: json.loads(
                        json.dumps(
                            v.number_value
                            if v.HasField('number_value')
                            else v.string_value
                            if v.HasField('string_value')
                            else v.bool_value
                        )
                    )
                    for k, v in data.session_start_info.hparams.items()
                }
            if data.HasField('experiment'):
                experiment = data.experiment
        elif plugin == 'text':
            texts.append(tf.make_ndarray(value.tensor).item().decode())
        elif plugin == 'scalars':
            scalars.setdefault(value.tag, []).append(step)
    assert hparams['depth'] == 2 and hparams['width'] == 16 and hparams['problem'] == 'cifar10'
    assert hparams['memory_mode'] == 'plain' and hparams['learntop'] is False
    assert 'test/bits_x' in [m.name.tag for m in experiment.metric_infos]
    assert scalars['test/bits_x'] == [4]  # the metric the dashboard shows, at the end
    assert scalars['train/bits_x'] == [2, 4]  # every --log_every steps
    saved = json.loads((logdir / 'config.json').read_text())
    assert len(texts) == 1 and json.loads(texts[0].strip('`\n')) == saved

    # and the run's config.json repeats the run's flags
    assert _user_fields(_parse(['--config', str(logdir / 'config.json')])) == {
        k: v for k, v in saved.items() if k not in TrainConfig.DERIVED
    }


def test_console_script_prints_no_tensorflow_banner():
    """`glow-train --help` as the installed console script runs it (imports the package, then
    main()), in an environment that does not silence TensorFlow itself."""
    import os
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
    env['PYTHONPATH'] = str(repo) + os.pathsep + env.get('PYTHONPATH', '')
    code = (
        "import sys; sys.argv[0] = '/usr/local/bin/glow-train'\n"
        "from glow_tf.cli.train import main\n"
        "import os, tensorflow  # TensorFlow is loaded now: any banner would be out\n"
        "print('level', os.environ.get('TF_CPP_MIN_LOG_LEVEL'), file=sys.stderr)\n"
        "sys.exit(main())"
    )
    proc = subprocess.run(
        [sys.executable, '-c', code, '--help'],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(repo),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith('usage: glow-train')
    assert proc.stderr == 'level 2\n', proc.stderr  # set before TensorFlow was imported


def test_sample_grids_go_to_tensorboard_per_temperature(tmp_path, shared_data):
    """Every full-sample epoch (1, then each --epochs_full_sample-th) logs one image summary per
    temperature, tagged with it; the logged image is the PNG grid written beside it."""
    import tensorflow as tf
    from PIL import Image

    from glow_tf.tools.sampling import TEMPERATURES

    logdir = tmp_path / 'run'
    # 16 images, batch 8: 2 steps an epoch, 4 epochs; grids at epochs 1, 2 and 4, not 3
    main(
        [
            *('--problem', 'cifar10', '--data_dir', str(shared_data / 'cifar10-subset')),
            *('--image_size', '8', '--n_levels', '2', '--depth', '1', '--width', '8'),
            *('--n_batch_train', '8', '--n_batch_init', '16', '--anchor_size', '0'),
            *('--n_train', '16', '--n_test', '50', '--max_steps', '8', '--epochs_full_valid', '1'),
            *('--epochs_full_sample', '2', '--gradient_checkpointing', '0', '--no_progress'),
            *('--logdir', str(logdir)),
        ]
    )
    images = {}
    for step, value in _events(logdir):
        if value.metadata.plugin_data.plugin_name == 'images':
            width, height, png = tf.make_ndarray(value.tensor)
            images[(value.tag, step)] = (int(width), int(height), tf.io.decode_png(png).numpy())
    tags = [f'samples/T={t:.1f}' for t in TEMPERATURES]
    assert sorted(images) == sorted((tag, step) for tag in tags for step in (2, 4, 8))
    for (tag, step), (width, height, grid) in images.items():
        assert (width, height) == (80, 80) and grid.shape == (80, 80, 3)  # 10 x 10 of 8 x 8
    for t in (0.0, 0.7, 1.0):
        png = np.asarray(Image.open(logdir / 'samples' / f'epoch4_t{t:.1f}.png').convert('RGB'))
        np.testing.assert_array_equal(images[(f'samples/T={t:.1f}', 8)][2], png)
    assert not np.array_equal(images[('samples/T=0.0', 8)][2], images[('samples/T=1.0', 8)][2])


def test_verbose_prints_a_line_per_step_as_the_original(tmp_path, shared_data, capsys):
    common = [
        *('--problem', 'cifar10', '--data_dir', str(shared_data / 'cifar10-subset')),
        *('--image_size', '8', '--n_levels', '2', '--depth', '1', '--width', '8'),
        *('--n_batch_train', '8', '--n_batch_init', '16', '--anchor_size', '0'),
        *('--n_train', '16', '--n_test', '50', '--max_steps', '5', '--log_every', '5'),
        *('--epochs_full_sample', '0', '--gradient_checkpointing', '0', '--no_progress'),
    ]
    main([*common, '--verbose', '--logdir', str(tmp_path / 'v')])
    out = capsys.readouterr().out.splitlines()
    steps = [line for line in out if line.startswith('step ')]
    assert [line.split()[1] for line in steps] == ['1', '2', '3', '4', '5']
    assert all('bits/dim' in line and ' ms' in line for line in steps)
    records = [
        json.loads(line) for line in (tmp_path / 'v' / 'train.jsonl').read_text().splitlines()
    ]
    assert records[-1]['step'] == 5  # the interval record is still written
    main([*common, '--logdir', str(tmp_path / 'q')])
    assert not [line for line in capsys.readouterr().out.splitlines() if line.startswith('step ')]
