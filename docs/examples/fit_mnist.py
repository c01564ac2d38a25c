"""Glow.fit on MNIST at 16x16 (uint8 arrays) with Polyak averaging, then the test bits/dim.

Run from the project root: `python docs/examples/fit_mnist.py` (the README's results table).
"""

import time

import keras
import numpy as np

import glow_tf
from glow_tf.data import load_source
from glow_tf.training import PolyakAveraging

src = load_source('mnist', data_dir='../shared/data/mnist', image_size=16)
x_train = np.concatenate([x.numpy() for x, _ in src.train(1000, repeat=False, shuffle=False)])
x_test = np.concatenate([x.numpy() for x, _ in src.test(1000)])
print(x_train.shape, x_test.shape, x_train.dtype)

keras.utils.set_random_seed(0)
model = glow_tf.Glow(
    image_shape=(16, 16, 3),
    n_levels=2,
    depth=4,
    width=64,
    flow_coupling='additive',
    memory_mode='plain',
)
model.compile(optimizer=keras.optimizers.Adamax(2e-3))
t0 = time.time()
model.fit(x_train, batch_size=64, epochs=2, callbacks=[PolyakAveraging(decay=0.99)], verbose=2)
t_fit = time.time() - t0
print(model.evaluate(x_test, batch_size=500, return_dict=True, verbose=0), f'fit {t_fit:.0f}s')
