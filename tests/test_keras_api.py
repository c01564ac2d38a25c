"""Glow through Keras's own verbs: compile / fit / evaluate on real MNIST, the Polyak callback,
`model.save` + `keras.models.load_model`, `model.export`, and `summary()` shapes."""

import io

import keras
import numpy as np
import pytest
import tensorflow as tf

import glow_tf
from glow_tf.runs import checkpoint_format as ckpt_lib
from glow_tf.training.callbacks import PolyakAveraging

SIZE = 16


def tiny_glow(**kw):
    args = dict(
        image_shape=(SIZE, SIZE, 3),
        n_levels=2,
        depth=2,
        width=32,
        flow_coupling='additive',
        memory_mode='plain',
    )
    args.update(kw)
    return glow_tf.Glow(**args)


@pytest.fixture(scope='module')
def mnist(shared_data):
    """Real MNIST at 16x16: 1024 train and 256 test images (uint8) with their labels."""
    from glow_tf.data import load_source

    src = load_source('mnist', data_dir=str(shared_data / 'mnist'), image_size=SIZE)
    train = [b for b in src.train(256, seed=1, repeat=False, shuffle=True).take(4)]
    test = [b for b in src.test(256).take(1)]
    cat = lambda batches, i: np.concatenate([b[i].numpy() for b in batches])
    return cat(train, 0), cat(train, 1), cat(test, 0), cat(test, 1)


def test_fit_trains_the_glow_objective_on_mnist(mnist):
    x_train, _, x_test, _ = mnist
    keras.utils.set_random_seed(0)
    model = tiny_glow()
    model.compile(optimizer=keras.optimizers.Adamax(3e-3))
    assert not model.is_initialized
    before = model.evaluate(x_test, batch_size=128, verbose=0, return_dict=True)
    history = model.fit(x_train, batch_size=64, epochs=3, verbose=0).history
    after = model.evaluate(x_test, batch_size=128, verbose=0, return_dict=True)

    assert model.is_initialized  # fit ran the data-dependent init on its first batch
    assert set(history) == {'loss', 'bits_x'} and len(history['loss']) == 3
    # the loss is bits/dim (unconditional: loss == bits_x);
    # measured 6.9 -> 5.2 train, 9.5 -> 4.9 test
    assert history['loss'] == pytest.approx(history['bits_x'])
    assert history['loss'][-1] < history['loss'][0] - 0.8, history
    assert after['bits_x'] < before['bits_x'] - 2.0, (before, after)
    # evaluate's bits/dim is the model's own objective: -log2 p(x) per sub-pixel, dequantised
    direct = float(tf.reduce_mean(model.bits_per_dim(x_test, n_bits_x=8)))
    assert after['bits_x'] == pytest.approx(direct, abs=0.02)


def test_fit_on_a_labelled_dataset_with_the_class_term_and_polyak(mnist):
    x_train, y_train, x_test, y_test = mnist
    keras.utils.set_random_seed(1)
    model = tiny_glow(n_classes=10, learntop=True)
    model.compile(optimizer=keras.optimizers.Adam(2e-3), n_bits_x=5, weight_y=0.5)
    train = tf.data.Dataset.from_tensor_slices((x_train, y_train)).batch(64)
    test = tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(128)

    seen = {}

    class Recorder(keras.callbacks.Callback):  # raw weights just before the average is put in
        def on_train_end(self, logs=None):
            seen['raw'] = [v.numpy() for v in self.model.trainable_variables]

        def on_test_begin(self, logs=None):
            seen.setdefault('validated_with', [v.numpy() for v in self.model.trainable_variables])

    polyak = PolyakAveraging(decay=0.9)
    history = model.fit(
        train, epochs=2, validation_data=test, verbose=0, callbacks=[Recorder(), polyak]
    ).history
    assert {'loss', 'bits_x', 'bits_y', 'val_loss', 'val_bits_x', 'val_bits_y'} <= set(history)
    for e in range(2):  # loss = bits_x + weight_y * bits_y
        assert history['loss'][e] == pytest.approx(
            history['bits_x'][e] + 0.5 * history['bits_y'][e], rel=1e-4
        )
    assert history['bits_y'][-1] < np.log2(10)  # the classifier head learnt something

    averaged = [v.numpy() for v in model.trainable_variables]
    shadow = [s.numpy() for s in polyak.ema.shadow]
    np.testing.assert_allclose(
        np.concatenate([a.ravel() for a in averaged]),
        np.concatenate([s.ravel() for s in shadow]),
        atol=0,
    )
    diff = max(float(np.abs(a - r).max()) for a, r in zip(averaged, seen['raw']))
    assert diff > 1e-4  # the model now holds the average, not the last raw weights
    # the first validation pass ran with the averaged weights of epoch 1, not the raw ones
    assert any(
        float(np.abs(v - r).max()) > 1e-5 for v, r in zip(seen['validated_with'], seen['raw'])
    )


def _log_probs(model, x_uint8):
    return model(glow_tf.preprocess(x_uint8, 8, noise=False)).numpy()


def test_save_and_load_model_round_trip(tmp_path, mnist):
    x_train, _, x_test, _ = mnist
    keras.utils.set_random_seed(2)
    model = tiny_glow(
        flow_permutation='1x1', lu_decomposed=True, learntop=True, flow_coupling='affine'
    )
    model.compile(optimizer='adam', n_bits_x=7)
    model.fit(x_train[:256], batch_size=64, epochs=1, verbose=0)
    path = str(tmp_path / 'glow.keras')
    model.save(path)

    loaded = keras.models.load_model(path)  # no custom_objects: the classes are registered
    assert isinstance(loaded, glow_tf.Glow) and loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(_log_probs(loaded, x_test[:16]), _log_probs(model, x_test[:16]))
    assert loaded.is_initialized and loaded.n_bits_x == 7
    assert loaded.optimizer.iterations.numpy() == model.optimizer.iterations.numpy() == 4
    # and it keeps training where it left off, without a second data-dependent init
    loaded.fit(x_train[:64], batch_size=64, epochs=1, verbose=0)
    assert loaded.optimizer.iterations.numpy() == 5

    # the other layer kinds (shuffle permutation, class-conditional prior), uncompiled
    other = tiny_glow(flow_permutation='shuffle', n_classes=10)
    other.initialize_from_data(x_train, mnist[1], batch_size=64)
    other.save(str(tmp_path / 'other.keras'))
    back = keras.models.load_model(str(tmp_path / 'other.keras'))
    x, y = glow_tf.preprocess(x_test[:16], 8, noise=False), mnist[3][:16]
    np.testing.assert_array_equal(back(x, y).numpy(), other(x, y).numpy())
    assert [type(s.mix).__name__ for s in back.flow_steps] == ['ChannelPermutation'] * 4


def test_export_without_a_signature_gives_the_same_log_likelihoods(tmp_path, mnist):
    x_train, y_train, x_test, y_test = mnist
    for n_classes in (0, 10):
        model = tiny_glow(n_classes=n_classes)
        model.initialize_from_data(x_train, y_train if n_classes else None, batch_size=64)
        out = str(tmp_path / f'export{n_classes}')
        model.export(out, verbose=False)
        served = tf.saved_model.load(out)
        x = glow_tf.preprocess(x_test[:8], 8, noise=False)
        if n_classes:
            y = tf.constant(y_test[:8], tf.int32)
            np.testing.assert_allclose(served.serve(x, y).numpy(), model(x, y).numpy(), rtol=1e-6)
        else:
            np.testing.assert_allclose(served.serve(x).numpy(), model(x).numpy(), rtol=1e-6)


def test_summary_shows_every_layer_shape():
    model = tiny_glow()
    text = io.StringIO()
    model.summary(print_fn=lambda line, **_: text.write(line + '\n'), expand_nested=True)
    text = text.getvalue()
    assert '?' not in text
    for name in ('level0_step0', 'level1_step1', 'level0_split', 'top_prior'):
        assert name in text
    assert '(None, 8, 8, 12)' in text and '(None, 4, 4, 24)' in text  # levels 0 and 1
    assert '(None, 8, 8, 6)' in text  # ε factored out at level 0


def test_checkpoint_names_do_not_depend_on_the_model_name():
    # Keras paths start with the model's name, which a second model in the same process gets
    # numbered (glow_1); checkpoint names drop it, so train.py can resume in-process.
    first, second = tiny_glow(), tiny_glow()
    assert first.name != second.name
    assert first.variables[0].path.startswith(f'{first.name}/level0/level0_step0/')
    names = [list(ckpt_lib.model_variable_names(m)) for m in (first, second)]
    assert names[0] == names[1] and names[0][0].startswith('level0.level0_step0.')
