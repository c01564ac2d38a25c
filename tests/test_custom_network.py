"""A user's own coupling network (issue 22 item 3): the flow layers take their network injected,
so a Glow with a small ResNet block in every coupling trains on real digits, stays invertible
and saves / loads through Keras like the paper's model."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import glow_tf


@keras.saving.register_keras_serializable(package='test_custom_network')
class ResidualNet(keras.layers.Layer):
    """conv3x3 -> ReLU -> (conv3x3 -> ReLU) + skip -> zero-initialised conv1x1."""

    def __init__(self, width, out_channels, **kwargs):
        super().__init__(**kwargs)
        self.width, self.out_channels = width, out_channels
        self.conv_in = keras.layers.Conv2D(width, 3, padding='same', activation='relu')
        self.conv_mid = keras.layers.Conv2D(width, 3, padding='same', activation='relu')
        self.conv_out = keras.layers.Conv2D(out_channels, 1, kernel_initializer='zeros')

    def build(self, input_shape):
        self.conv_in.build(input_shape)
        self.conv_mid.build(tuple(input_shape[:-1]) + (self.width,))
        self.conv_out.build(tuple(input_shape[:-1]) + (self.width,))

    def call(self, x):
        h = self.conv_in(x)
        return self.conv_out(h + self.conv_mid(h))

    def get_config(self):
        return {**super().get_config(), 'width': self.width, 'out_channels': self.out_channels}


@keras.saving.register_keras_serializable(package='test_custom_network')
class ResidualNets:
    def __init__(self, width=16):
        self.width = width

    def __call__(self, in_channels, out_channels, name=None):
        return ResidualNet(self.width, out_channels, name=name)

    def get_config(self):
        return {'width': self.width}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@pytest.fixture
def digits(shared_data):
    from glow_tf.data import load_source

    src = load_source('mnist', data_dir=str(shared_data / 'mnist'), image_size=16)
    x = next(iter(src.train(256, repeat=False, shuffle=False)))[0].numpy()
    return x[:192], x[192:]


def test_a_resnet_coupling_network_trains_round_trips_and_saves(digits, tmp_path):
    x_train, x_test = digits
    model = glow_tf.Glow(
        image_shape=(16, 16, 3),
        n_levels=2,
        depth=2,
        flow_coupling='affine',
        coupling_network=ResidualNets(width=16),
        seed=1,
    )
    nets = [step.coupling.nn for step in model.flow_steps]
    assert all(isinstance(n, ResidualNet) for n in nets) and len(nets) == 4
    assert nets[0].out_channels == 2 * (12 - 6)  # affine: shift and scale for C_b channels

    model.compile(optimizer=keras.optimizers.Adamax(2e-3))
    before = model.evaluate(x_test, batch_size=64, return_dict=True, verbose=0)['bits_x']
    model.fit(x_train, batch_size=32, epochs=4, verbose=0)
    after = model.evaluate(x_test, batch_size=64, return_dict=True, verbose=0)['bits_x']
    assert np.isfinite(after) and after < before - 0.5, (before, after)
    # the networks' weights moved (the zero-initialised output layer included)
    assert float(tf.reduce_max(tf.abs(nets[0].conv_out.kernel))) > 0

    x = glow_tf.preprocess(x_test[:8], noise=False)
    eps = model.encode(x)
    np.testing.assert_allclose(model.decode(eps).numpy(), x.numpy(), atol=1e-4)

    path = tmp_path / 'resnet_glow.keras'
    model.save(path)
    again = keras.models.load_model(path)
    assert isinstance(again.flow_steps[0].coupling.nn, ResidualNet)
    assert again.get_config()['coupling_network'] == model.get_config()['coupling_network']
    np.testing.assert_allclose(again(x).numpy(), model(x).numpy(), rtol=1e-5)


def test_any_factory_builds_and_a_wrong_network_is_named():
    model = glow_tf.Glow(
        image_shape=(8, 8, 3),
        n_levels=1,
        depth=1,
        coupling_network=lambda n_in, n_out, name: ResidualNet(4, n_out, name=name),
    )
    assert model(tf.zeros([1, 8, 8, 3])).shape == (1,)  # a plain function works too
    with pytest.raises(ValueError, match='coupling_network'):
        glow_tf.Glow(image_shape=(8, 8, 3), n_levels=1, depth=1, coupling_network=3)
