"""Flags -> TrainConfig: the original's flags and published commands, validation, derived values."""

import json
import math
import shlex

import numpy as np
import pytest

from glow_tf.cli.train import build_parser, config_from_args, main
from glow_tf.runs.config import ConfigError, TrainConfig
from glow_tf.training.optim import learning_rate

# Commands from the original README (mpiexec prefix stripped, first choice of each [a/b/c]).
PUBLISHED = [
    "--depth 1",
    "--problem cifar10 --image_size 32 --n_level 3 --depth 32 --flow_permutation 2 "
    "--flow_coupling 1 --seed 0 --learntop --lr 0.001 --n_bits_x 8",
    "--problem imagenet-oord --image_size 64 --n_level 4 --depth 48 --flow_permutation 2 "
    "--flow_coupling 1 --seed 0 --learntop --lr 0.001 --n_bits_x 8",
    "--problem lsun_realnvp --category bedroom --image_size 64 --n_level 3 --depth 48 "
    "--flow_permutation 2 --flow_coupling 1 --seed 0 --learntop --lr 0.001 --n_bits_x 8",
    "--problem celeba --image_size 256 --n_level 6 --depth 32 --flow_permutation 2 "
    "--flow_coupling 0 --seed 0 --learntop --lr 0.001 --n_bits_x 5",
    "--problem cifar10 --image_size 32 --n_level 3 --depth 32 --flow_permutation 2 "
    "--flow_coupling 0 --seed 0 --learntop --lr 0.001 --n_bits_x 5 --ycond --weight_y=0.01",
]


def parse(argv):
    return config_from_args(build_parser().parse_args(argv)).validate_flags()


@pytest.mark.parametrize('cmd', PUBLISHED)
def test_published_commands_parse(cmd):
    cfg = parse(shlex.split(cmd))
    if '--n_level' in cmd:
        assert cfg.n_levels == int(cmd.split('--n_level ')[1].split()[0])
    assert cfg.optimizer == 'adamax' and cfg.n_batch_train == 64 and cfg.epochs_warmup == 10


def test_original_defaults():
    cfg = parse([])
    assert (cfg.problem, cfg.n_levels, cfg.depth, cfg.width) == ('cifar10', 3, 32, 512)
    assert (cfg.flow_permutation, cfg.flow_coupling, cfg.n_bits_x) == (2, 0, 8)
    assert (cfg.n_batch_train, cfg.n_batch_test, cfg.n_batch_init) == (64, 50, 256)
    assert (cfg.lr, cfg.beta1, cfg.epochs, cfg.epochs_warmup) == (0.001, 0.9, 1000000, 10)
    assert (cfg.epochs_full_valid, cfg.epochs_full_sample, cfg.polyak_epochs) == (50, 50, 1)
    assert (cfg.n_train, cfg.n_test, cfg.weight_y, cfg.image_size, cfg.seed) == (
        50000,
        -1,
        0.0,
        -1,
        0,
    )
    assert cfg.resolved_memory_mode == 'checkpoint'  # --gradient_checkpointing 1 in the original
    assert not (cfg.learntop or cfg.ycond or cfg.inference or cfg.lu)


def test_model_kwargs():
    cfg = parse(
        [
            '--flow_permutation',
            '0',
            '--flow_coupling',
            '1',
            '--learntop',
            '--ycond',
            '--gradient_checkpointing',
            '0',
        ]
    ).resolve((32, 32, 3), 10000, 10)[0]
    kw = cfg.to_model_kwargs()
    assert kw == dict(
        image_shape=(32, 32, 3),
        n_levels=3,
        depth=32,
        width=512,
        flow_permutation='reverse',
        flow_coupling='affine',
        lu_decomposed=False,
        learntop=True,
        n_classes=10,
        memory_mode='plain',
        seed=0,
        edge_bias=True,
        learntop_form='conv',
        precision='fp32',
        conv_forms='auto',
        shared_steps='inference',
    )
    assert (
        parse(['--edge_bias', '0']).resolve((32, 32, 3), 100, 10)[0].to_model_kwargs()['edge_bias']
        is False
    )
    assert (
        parse(['--lu', '--memory_mode', 'reversible'])
        .resolve((32, 32, 3), 100, 10)[0]
        .to_model_kwargs()['memory_mode']
        == 'reversible'
    )
    assert parse([]).resolve((32, 32, 3), 100, 10)[0].to_model_kwargs()['n_classes'] == 0


@pytest.mark.parametrize(
    'argv,flag',
    [
        (['--image_size', '30'], '--image_size'),
        (['--image_size', '32', '--n_levels', '6'], '--image_size'),
        (['--flow_permutation', '3'], '--flow_permutation'),
        (['--flow_coupling', '2'], '--flow_coupling'),
        (['--optimizer', 'sgd'], '--optimizer'),
        (['--n_bits_x', '9'], '--n_bits_x'),
        (['--weight_y', '0.1'], '--weight_y'),
        (['--lu', '--flow_permutation', '1'], '--lu'),
        (
            ['--gradient_checkpointing', '0', '--memory_mode', 'checkpoint'],
            '--gradient_checkpointing',
        ),
        (['--n_batch_train', '0'], '--n_batch_train'),
        (['--no_such_flag', '1'], '--no_such_flag'),
        (['--depth', 'two'], '--depth'),
    ],
)
def test_bad_flags_fail_fast(argv, flag, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(argv + ['--logdir', str(tmp_path / 'run')])
    assert e.value.code == 2
    assert flag in capsys.readouterr().err
    assert not (tmp_path / 'run').exists()


def test_test_batch_is_reduced_to_divide_the_test_set():
    # The CIFAR-10 subset has 1017 = 9 x 113 test images: 50-image batches cannot cover it, the
    # largest per-worker batch <= 50 that does is 9.
    _, p = TrainConfig(image_size=8, n_levels=2).resolve((8, 8, 3), 1017, 10)
    assert (p.local_batch_test, p.full_test_its) == (9, 113)
    assert p.local_batch_test * p.full_test_its == 1017
    assert (
        len(p.notes) == 1 and '--n_batch_test' in p.notes[0] and 'using test batch 9' in p.notes[0]
    )
    # with workers: batch x workers must divide n_test (1000 / (2 x 25) = 20 rounds)
    _, p = TrainConfig(image_size=32, n_batch_test=30, anchor_size=0).resolve(
        (32, 32, 3), 1000, 10, 2
    )
    assert (p.local_batch_test, p.full_test_its) == (25, 20)
    # a batch that already divides is kept, without a note
    _, p = TrainConfig(image_size=32).resolve((32, 32, 3), 10000, 10)
    assert (p.local_batch_test, p.full_test_its, p.notes) == (50, 200, ())


def test_resolve_fills_in_the_data_and_changes_nothing():
    """resolve() returns a new frozen config (the data's size, test set, channels, classes) and
    a separate RunPlan; the flags it was given stay as they were, and neither can be changed."""
    import dataclasses

    flags = TrainConfig(n_test=-1, n_levels=2)
    cfg, plan = flags.resolve((16, 16, 1), 1000, 10, world_size=2)
    assert (flags.image_size, flags.n_test, flags.image_channels, flags.n_classes) == (-1, -1, 3, 0)
    assert (cfg.image_size, cfg.n_test, cfg.image_channels, cfg.n_classes) == (16, 1000, 1, 10)
    assert {f.name for f in dataclasses.fields(cfg)}.isdisjoint(TrainConfig.DERIVED)
    assert plan.world_size == 2 and not hasattr(cfg, 'world_size')
    for obj, name in ((cfg, 'depth'), (plan, 'train_its')):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, name, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.notes = []
    # a resumed run of the old form keeps it (the checkpoint says which); nothing else moves
    old, same = flags.resolve((16, 16, 1), 1000, 10, 2, learntop_form='position')
    assert old.learntop_form == 'position' and same == plan
    assert old.replace(learntop_form=cfg.learntop_form) == cfg


def test_resolve_worker_division_and_anchor():
    cfg = TrainConfig(image_size=32, n_batch_test=50)
    with pytest.raises(ConfigError) as e:
        cfg.resolve((32, 32, 3), 10000, 10, world_size=3)  # 3 x anything does not divide 10000
    assert e.value.flag == '--n_test' and '--n_test 9999' in str(e.value)
    # Anchor rescaling of the original: 64 images at 32px -> 16 at 64px, 1 at 256px.
    _, p64 = TrainConfig(image_size=64, n_levels=4).resolve((64, 64, 3), 50000, 0, world_size=8)
    assert (p64.local_batch_train, p64.local_batch_test, p64.local_batch_init) == (16, 10, 64)
    _, p256 = TrainConfig(image_size=256, n_levels=6).resolve((256, 256, 3), 3000, 0, world_size=40)
    assert (p256.local_batch_train, p256.local_batch_test, p256.full_test_its) == (1, 1, 75)
    _, lit = TrainConfig(image_size=64, n_levels=4, anchor_size=0).resolve((64, 64, 3), 50000, 0, 8)
    assert (lit.local_batch_train, lit.local_batch_test) == (64, 50)
    with pytest.raises(ConfigError) as e:
        TrainConfig(image_size=16, n_levels=2).resolve((32, 32, 3), 100, 10)
    assert e.value.flag == '--image_size'
    with pytest.raises(ConfigError) as e:
        TrainConfig(n_test=20000).resolve((32, 32, 3), 10000, 10)
    assert e.value.flag == '--n_test'
    with pytest.raises(ConfigError) as e:
        TrainConfig(image_size=256, n_levels=6, n_batch_train=8).resolve((256, 256, 3), 10, 0)
    assert e.value.flag == '--n_batch_train' and '--anchor_size 0' in str(e.value)


def test_epoch_warmup_and_beta2():
    c, p = TrainConfig().resolve((32, 32, 3), 10000, 10, world_size=8)
    assert p.train_its == math.ceil(50000 / (64 * 8)) == 98
    assert p.resolved_beta2 == pytest.approx(1 - 1 / 98)
    assert learning_rate(c, p, 0) == 0.0
    assert learning_rate(c, p, 50000 * 5) == pytest.approx(0.0005)
    assert learning_rate(c, p, 50000 * 10) == learning_rate(c, p, 10**9) == pytest.approx(0.001)
    scaled = TrainConfig(lr_scale_by_size=True, epochs_warmup=0).resolve((32, 32, 3), 10000, 10, 8)
    assert learning_rate(*scaled, 0) == pytest.approx(0.008)


def test_config_json_roundtrip(tmp_path):
    c, p = TrainConfig(problem='mnist', depth=3, inject_nan_steps=[2]).resolve(
        (32, 32, 3), 10000, 10
    )
    c.save(tmp_path / 'config.json', p)
    back = TrainConfig.load(tmp_path / 'config.json')
    assert back == c
    saved = json.loads((tmp_path / 'config.json').read_text())
    assert saved['depth'] == 3 and saved['local_batch_train'] == p.local_batch_train


def test_adamax_matches_original_update():
    """Keras Adamax + our per-step lr factor == the original optim.adamax (numpy reference)."""
    import tensorflow as tf

    from glow_tf.training.optim import make_optimizer, step_learning_rate

    cfg, plan = TrainConfig(n_train=640, n_batch_train=64).resolve((32, 32, 3), 100, 10)  # 0.9
    opt = make_optimizer(cfg, plan)
    import keras

    v = keras.Variable(np.array([0.5, -1.0, 2.0], np.float32))
    opt.build([v])
    rng = np.random.default_rng(0)
    w, m, u = v.numpy().astype(np.float64), np.zeros(3), np.zeros(3)
    b1, b2, lr = 0.9, plan.resolved_beta2, 0.01
    for t in range(1, 6):
        g = rng.standard_normal(3)
        opt.learning_rate.assign(step_learning_rate(opt, 'adamax', lr, b2))
        opt.apply_gradients([(tf.constant(g, tf.float32), v)])
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        m = b1 * m + (1 - b1) * g
        u = np.maximum(b2 * u, np.abs(g))
        w = w - alpha * m / (u + 1e-8)
    np.testing.assert_allclose(v.numpy(), w, rtol=1e-5, atol=1e-6)


def test_flag_numbering_of_the_original_is_kept():
    """--flow_permutation / --flow_coupling integers mean what they meant in the original, while
    the names are defined once, by the model's layers."""
    from glow_tf.flows.coupling import Coupling
    from glow_tf.flows.flow_step import PERMUTATIONS
    from glow_tf.runs import config

    assert config.PERMUTATIONS == {0: 'reverse', 1: 'shuffle', 2: '1x1'}
    assert config.COUPLINGS == {0: 'additive', 1: 'affine'}
    assert set(config.PERMUTATIONS.values()) == set(PERMUTATIONS)
    assert set(config.COUPLINGS.values()) == set(Coupling.KINDS)


def test_every_option_field_has_exactly_one_flag_and_every_flag_a_field():
    """Flags are declared once, as TrainConfig fields: the parser is generated from them."""
    import dataclasses

    from glow_tf.runs import config

    parser = build_parser()
    by_dest = {}
    for action in parser._actions:
        if action.option_strings and action.dest not in ('help', 'config'):
            by_dest.setdefault(action.dest, []).append(action.option_strings)
    options = {f.name: config.flag_name(f) for f in config.option_fields()}
    assert {name: [[flag]] for name, flag in options.items()} == by_dest
    # the other fields are not flags: facts of the model resolve() fills in (config.json)
    others = {f.name for f in dataclasses.fields(TrainConfig)} - set(options)
    assert others == {'learntop_form', 'image_channels', 'n_classes'}
    # hidden testing flags stay out of --help but parse
    text = parser.format_help()
    assert '--inject_nan_steps' not in text and '--no_progress' in text
    cfg = config_from_args(parser.parse_args(['--inject_inf_lr_steps', '4,9', '--no_progress']))
    assert cfg.inject_inf_lr_steps == [4, 9] and cfg.progress is False


@pytest.mark.parametrize(
    'values,flag,message',
    [
        ({'memory_mode': 'fast'}, '--memory_mode', "must be one of plain, checkpoint, reversible"),
        ({'edge_bias': 2}, '--edge_bias', 'must be one of 0, 1'),
        ({'depth': 0}, '--depth', 'must be >= 1, got 0'),
        ({'width': 0}, '--width', 'width must be a positive number of hidden channels'),
        ({'n_levels': 0}, '--n_levels', 'n_levels must be >= 1, got 0'),
        ({'image_size': 30}, '--image_size', 'divisible by 2**n_levels = 8'),
        ({'anchor_size': -1}, '--anchor_size', 'must be >= 0, got -1'),
        ({'epochs_warmup': float('inf')}, '--epochs_warmup', 'must be a finite number'),
        ({'beta2': float('nan')}, '--beta2', 'must be a finite number'),
        ({'progress': True, 'max_nonfinite': 0}, '--max_nonfinite', 'must be >= 1'),
    ],
)
def test_config_file_values_are_checked_like_flags(tmp_path, values, flag, message):
    """A value from a --config file skips argparse's checks; validate_flags names the flag."""
    path = tmp_path / 'c.json'
    path.write_text(json.dumps(values))  # json writes inf / nan as Infinity / NaN
    cfg = TrainConfig(**TrainConfig.read_file(str(path)))
    with pytest.raises(ConfigError) as e:
        cfg.validate_flags()
    assert e.value.flag == flag and message in str(e.value)


def test_model_flags_cover_every_glow_argument():
    """to_model_kwargs maps flags onto all of Glow's arguments; MODEL_FLAGS names the flag
    behind each (what an error about a model argument blames)."""
    import inspect

    from glow_tf.model.glow import Glow
    from glow_tf.runs import config

    # coupling_network is a Python object (a user's network), not something a flag can name
    params = set(inspect.signature(Glow.__init__).parameters) - {'self', 'kwargs'}
    params -= {'coupling_network'}
    kwargs = parse([]).resolve((32, 32, 3), 100, 10)[0].to_model_kwargs()
    assert set(kwargs) == set(config.MODEL_FLAGS) == params
    flags = {config.flag_name(f) for f in config.option_fields()}
    assert {f for f in config.MODEL_FLAGS.values() if f} <= flags


@pytest.mark.parametrize(
    'values,argument',
    [
        ({'depth': 0}, 'depth'),
        ({'width': -4}, 'width'),
        ({'n_levels': 0}, 'n_levels'),
        ({'image_size': 12, 'n_levels': 3}, 'image_shape'),
    ],
)
def test_the_config_checks_model_flags_with_the_models_own_check(values, argument):
    """A model option is validated in one place, by the model: the config's error carries the
    message Glow's constructor raises for the same value, blamed on the flag behind it."""
    from glow_tf.errors import ArgumentError
    from glow_tf.model.glow import Glow
    from glow_tf.runs.config import MODEL_FLAGS

    cfg = TrainConfig(**{'image_size': 16, 'n_levels': 2, 'depth': 1, 'width': 4, **values})
    with pytest.raises(ConfigError) as from_config:
        cfg.validate_flags()
    kwargs = dict(
        image_shape=(cfg.image_size, cfg.image_size, 3),
        n_levels=cfg.n_levels,
        depth=cfg.depth,
        width=cfg.width,
        memory_mode=cfg.resolved_memory_mode,
    )
    with pytest.raises(ArgumentError) as from_model:
        Glow(**kwargs)
    assert from_model.value.argument == argument
    assert from_config.value.flag == MODEL_FLAGS[argument]
    assert str(from_model.value) in str(from_config.value)


@pytest.mark.parametrize(
    'values,flag,check,args',
    [
        ({'weight_y': 0.5}, '--weight_y', 'check_weight_y', (0.5, 0)),
        ({'n_bits_x': 9}, '--n_bits_x', 'check_n_bits', (9,)),
    ],
)
def test_training_options_are_checked_by_the_models_own_functions(values, flag, check, args):
    """--weight_y and --n_bits_x are checked once, by the model's functions (which Glow.compile
    uses too); the config only names the flag."""
    from glow_tf.errors import ArgumentError
    from glow_tf.model import glow, preprocessing

    function = getattr(glow, check, None) or getattr(preprocessing, check)
    with pytest.raises(ArgumentError) as from_model:
        function(*args)
    with pytest.raises(ConfigError) as from_config:
        TrainConfig(**values).validate_flags()
    assert from_config.value.flag == flag and str(from_model.value) in str(from_config.value)


def test_integer_flag_codes_are_literal_maps_onto_the_layers_names():
    """--flow_permutation / --flow_coupling codes mean what the original's mean, whatever order
    the layers list their kinds in; every enum flag declares its choices (--memory_mode's are
    the model's own MEMORY_MODES)."""
    from glow_tf.flows.coupling import Coupling
    from glow_tf.flows.flow_step import PERMUTATIONS as PERMUTATION_NAMES
    from glow_tf.runs.config import COUPLINGS, PERMUTATIONS, option_fields

    assert PERMUTATIONS == {0: 'reverse', 1: 'shuffle', 2: '1x1'}
    assert COUPLINGS == {0: 'additive', 1: 'affine'}
    assert set(PERMUTATIONS.values()) == set(PERMUTATION_NAMES)
    assert set(COUPLINGS.values()) == set(Coupling.KINDS)
    enum_flags = {
        'flow_permutation',
        'flow_coupling',
        'optimizer',
        'precision',
        'conv_forms',
        'shared_steps',
        'edge_bias',
        'gradient_checkpointing',
        'restore_weights',
        'memory_mode',
    }
    declared = {f.name for f in option_fields() if f.metadata['choices'] is not None}
    assert enum_flags <= declared, enum_flags - declared
    for flag, bad in [('--flow_permutation', '3'), ('--optimizer', 'sgd'), ('--precision', 'x')]:
        with pytest.raises(SystemExit):
            parse([flag, bad])
