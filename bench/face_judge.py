"""The face judge: a small CNN trained here to predict CelebA's 40 attributes from 64x64 faces,
whose 128-unit penultimate layer is the feature space of a Frechet distance
(bench/frechet.py) between model samples and real held-out faces.

This is not Inception FID: the features come from a ~0.2M-parameter CNN trained on the 8,100
training faces of the shared CelebA subset (the model's own training split and preprocessing:
`glow_tf.data.loaders.load_source('celeba', ...)`, centre crop + box resize to 64x64), so the
numbers are only comparable with each other (same judge hash, same n), never with published FIDs.
The held-out faces (the last 900 by file name) are never trained on.

    judge = face_judge()                                      # trained once, then cached
    face_frechet(images, judge=judge) -> float                # uint8 [n, 64, 64, 3] vs held-out
    face_features(images, judge) -> float [n, 128]
"""

import sys

import keras
import numpy as np

from bench.frechet import features_frechet
from bench.judge_cache import cached_judge

FEATURES = 128
RECIPE = {
    'judge': 'faces',
    'architecture': 'conv32s2-conv64s2-conv128s2-conv128s2(3x3 relu)-gap-dense128relu-dense40 v1',
    'data': 'CelebA subset training split (first 8100 by file name), glow_tf celeba loader 64x64',
    'loss': 'sigmoid cross-entropy on the 40 attributes (0/1), inputs /255',
    'epochs': 6,
    'batch': 64,
    'optimizer': 'adam 1e-3',
    'augment': 'horizontal flip',
    'seed': 0,
}


def build_face_cnn():
    """Keras CNN 64x64x3 in [0, 1] -> 40 attribute logits; layer 'features' is the penultimate
    128-unit ReLU layer."""
    conv = dict(kernel_size=3, strides=2, padding='same', activation='relu')
    return keras.Sequential(
        [
            keras.Input((64, 64, 3)),
            keras.layers.Conv2D(32, **conv),
            keras.layers.Conv2D(64, **conv),
            keras.layers.Conv2D(128, **conv),
            keras.layers.Conv2D(128, **conv),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(FEATURES, activation='relu', name='features'),
            keras.layers.Dense(40, name='attribute_logits'),
        ]
    )


def train_face_cnn(model, images, attributes, epochs, batch, seed=0, verbose=0):
    """Fit `model` on uint8 faces [n, 64, 64, 3] and +1/-1 attributes [n, 40] (each epoch sees
    every face, half of them mirrored, seeded)."""
    x = np.asarray(images, np.float32) / 255.0
    y = (np.asarray(attributes) > 0).astype(np.float32)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy(threshold=0.0)],
    )
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        flip = rng.random(len(x)) < 0.5
        xe = np.where(flip[:, None, None, None], x[:, :, ::-1], x)
        hist = model.fit(xe, y, epochs=1, batch_size=batch, shuffle=True, verbose=0)
        if verbose:
            print(
                f'face judge epoch {epoch + 1}/{epochs}: loss {hist.history["loss"][-1]:.4f} '
                f'attribute accuracy {hist.history["binary_accuracy"][-1]:.3f}',
                file=sys.stderr,
                flush=True,
            )
    return model


def load_faces(data_dir=None):
    """(train uint8 [8100, 64, 64, 3], train attributes [8100, 40], held-out uint8 [900, ...],
    held-out attributes) through glow_tf's CelebA loader and split."""
    from glow_tf.data.loaders import load_source

    source = load_source('celeba', data_dir, 64)
    x_train, _, a_train = source.arrays['train']
    x_test, _, a_test = source.arrays['test']
    return x_train, a_train, x_test, a_test


def face_judge(data_dir=None, cache_dir=None):
    """The cached face judge (trained on first use, a few minutes of CPU; progress on stderr)."""

    def train(model):
        x, a, _, _ = load_faces(data_dir)
        train_face_cnn(model, x, a, RECIPE['epochs'], RECIPE['batch'], RECIPE['seed'], verbose=1)

    return cached_judge('faces', RECIPE, build_face_cnn, train, cache_dir)


def face_features(images, judge):
    """float [n, 128]: the judge's penultimate-layer features of uint8 faces [n, 64, 64, 3]."""
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[1:] != (64, 64, 3):
        raise ValueError(f'expected faces [n, 64, 64, 3], got {x.shape}')
    head = keras.Model(judge.inputs, judge.get_layer('features').output)
    return np.asarray(head.predict(x.astype(np.float32) / 255.0, batch_size=128, verbose=0))


def face_frechet(images, reference=None, judge=None, data_dir=None):
    """Frechet distance between the judge features of uint8 faces [n, 64, 64, 3] and of
    `reference` faces (default: the 900 held-out faces). Compare only numbers with the same n."""
    judge = judge or face_judge(data_dir)
    if reference is None:
        reference = load_faces(data_dir)[2]
    return features_frechet(face_features(images, judge), face_features(reference, judge))


def box_blur(images, size):
    """Real faces with detail removed: box-downsample uint8 [n, 64, 64, 3] to size x size (block
    means, glow_tf's `area_downsample`), then bilinear-upsample back to 64x64."""
    import tensorflow as tf

    from glow_tf.data.images import area_downsample

    x = np.asarray(images)
    small = area_downsample(x, size, 'box_blur').astype(np.float32)
    up = tf.image.resize(small, x.shape[1:3], method='bilinear').numpy()
    return np.clip(np.round(up), 0, 255).astype(np.uint8)
