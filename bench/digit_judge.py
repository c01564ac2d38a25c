"""The digit judge: a small CNN classifier trained on the 60,000 official MNIST training images.

It is a classifier, not a density or a perceptual metric: it says whether a sample looks enough
like one digit class that the CNN gives that class p >= 0.9 ("confident"), and which classes
the confident samples cover. A model that draws one clean digit only would score a high
confident share with 1 class covered; blobs and strokes between digits score a low share.

Model samples are uint8 [n, 32, 32, 3]: `glow_tf.data.mnist` zero-pads 28x28 digits by 2 pixels
on every side and replicates the gray channel, so `to_mnist_gray` crops the 2-pixel border and
averages the 3 channels (exact on real images, whose channels are equal).

    judge = digit_judge()                  # trained once (~1-2 min CPU), then cached
    score_digits(images, judge) -> {'n', 'confident_share', 'classes_present', ...}
"""

import keras
import numpy as np

from bench.judge_cache import cached_judge

CONFIDENT = 0.9  # a sample is confident when its top class has p >= this
PAD = 2  # glow_tf.data.mnist pads 28x28 to 32x32 with this many zero rows/columns per side

RECIPE = {
    'judge': 'digits',
    'architecture': 'conv32-pool-conv64-pool-dense128-dropout0.25-softmax10 v1',
    'data': 'MNIST official training set, 60000 images, /255',
    'n_train': 60000,
    'epochs': 2,
    'batch': 128,
    'optimizer': 'adam 1e-3',
    'seed': 0,
}


def to_mnist_gray(images):
    """uint8 [n, 32, 32, 3] (the model's padded RGB) -> uint8 [n, 28, 28]; [n, 28, 28] passes
    through. The inverse of glow_tf.data.mnist's padding: drop the 2-pixel border, average RGB."""
    x = np.asarray(images)
    if x.ndim == 3 and x.shape[1:] == (28, 28):
        return x.astype(np.uint8)
    if x.ndim != 4 or x.shape[1:] != (32, 32, 3):
        raise ValueError(f'expected digit images [n, 32, 32, 3] or [n, 28, 28], got {x.shape}')
    crop = x[:, PAD : 32 - PAD, PAD : 32 - PAD, :].astype(np.float64)
    return np.round(crop.mean(axis=-1)).astype(np.uint8)


def build_digit_cnn():
    """Keras CNN 28x28x1 in [0, 1] -> 10 class probabilities."""
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(32, 3, activation='relu'),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(64, 3, activation='relu'),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation='relu'),
            keras.layers.Dropout(0.25),
            keras.layers.Dense(10, activation='softmax'),
        ]
    )


def train_digit_cnn(model, images, labels, epochs, batch, verbose=0):
    """Fit `model` on uint8 images (any form `to_mnist_gray` takes) and int labels."""
    x = to_mnist_gray(images)[..., None].astype(np.float32) / 255.0
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss='sparse_categorical_crossentropy',
        metrics=['accuracy'],
    )
    model.fit(x, np.asarray(labels), epochs=epochs, batch_size=batch, shuffle=True, verbose=verbose)
    return model


def load_mnist(split, n=None, data_dir=None):
    """(uint8 [n, 32, 32, 3], int32 [n]) through glow_tf's loader (the model's own data)."""
    from glow_tf.data.loaders import load_source

    source = load_source(
        'mnist',
        data_dir,
        32,
        n_train=n if split == 'train' else None,
        n_test=n if split == 'test' else None,
    )
    x, y, _ = source.arrays[split]
    return x, y


def digit_judge(data_dir=None, cache_dir=None):
    """The cached digit judge (trained on first use, ~1-2 min of CPU; progress on stderr)."""

    def train(model):
        x, y = load_mnist('train', RECIPE['n_train'], data_dir)
        train_digit_cnn(model, x, y, RECIPE['epochs'], RECIPE['batch'], verbose=2)

    return cached_judge('digits', RECIPE, build_digit_cnn, train, cache_dir)


def digit_probabilities(images, judge):
    """float [n, 10] class probabilities of uint8 digit images."""
    x = to_mnist_gray(images)[..., None].astype(np.float32) / 255.0
    return np.asarray(judge.predict(x, batch_size=256, verbose=0))


def score_probabilities(p, threshold=CONFIDENT):
    """The judge's numbers from class probabilities p [n, 10]:

    confident_share = #{i : max_k p[i, k] >= threshold} / n; classes_present = how many of the
    10 digits are the top class of at least one confident sample; class_counts = confident
    samples per digit.
    """
    p = np.asarray(p)
    top = p.argmax(axis=1)
    confident = p.max(axis=1) >= threshold
    counts = np.bincount(top[confident], minlength=10)
    return {
        'n': int(len(p)),
        'threshold': threshold,
        'confident_share': float(confident.mean()) if len(p) else 0.0,
        'classes_present': int((counts > 0).sum()),
        'class_counts': [int(c) for c in counts],
    }


def score_digits(images, judge=None, threshold=CONFIDENT):
    """Score uint8 digit images [n, 32, 32, 3] (model samples) or [n, 28, 28] with the digit
    judge (default: the cached one): see `score_probabilities`."""
    judge = judge or digit_judge()
    return score_probabilities(digit_probabilities(images, judge), threshold)
