"""--inference writes what the original wrote (the encoded test set, x.npy / z.npy, whose latents
decode back to the images), and a class-conditional run logs the class error (pred_loss)."""

import json

import numpy as np

from glow_tf.cli.train import main
from tests.test_train_resume import records, tiny_argv


def test_inference_arrays_decode_back_to_the_test_images(tmp_path, shared_data):
    logdir = tmp_path / 'run'
    main(tiny_argv(logdir, '--max_steps', '4'))
    result = main(tiny_argv(logdir, '--inference'))
    x = np.load(logdir / 'inference' / 'x.npy')
    z = np.load(logdir / 'inference' / 'z.npy')
    assert result['arrays'] == {
        'x': str(logdir / 'inference' / 'x.npy'),
        'z': str(logdir / 'inference' / 'z.npy'),
    }
    assert x.dtype == np.uint8 and x.shape == (200, 8, 8, 3) and z.shape == (200, 8, 8, 3)

    from glow_tf.data import load_source
    from glow_tf.tools.trained import load_trained_model

    source = load_source('cifar10', image_size=8, n_test=200)
    expected = np.concatenate([b[0].numpy() for b in source.test(50)])
    np.testing.assert_array_equal(x, expected)
    flow = load_trained_model(str(logdir))
    np.testing.assert_array_equal(flow.decode(z), x)
    # the latents are the model's standardised ε: roughly unit scale, not the images
    assert 0.2 < np.mean(z**2) < 5.0


def test_class_conditional_run_logs_the_class_error(tmp_path, shared_data):
    logdir = tmp_path / 'ycond'
    main(
        tiny_argv(
            logdir,
            '--ycond',
            '--weight_y',
            '0.5',
            '--max_steps',
            '6',
            '--log_every',
            '3',
            '--epochs_full_valid',
            '1',
        )
    )
    for rec in records(logdir / 'train.jsonl') + records(logdir / 'test.jsonl'):
        assert 0.0 <= rec['pred_loss'] <= 1.0 and rec['bits_y'] > 0
    test = records(logdir / 'test.jsonl')[-1]
    # 10 classes and a barely trained head: the error rate is that of near-guessing
    assert test['pred_loss'] > 0.5 and test['n_test'] == 200
    assert json.loads((logdir / 'config.json').read_text())['ycond'] is True
