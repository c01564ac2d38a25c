"""Keras's training API for `Glow`: compile / fit / evaluate / export, as a mixin.

    model.compile(optimizer, n_bits_x=8, weight_y=0.0)
    model.fit(uint8 images [B, H, W, C] (, labels [B]))    loss = mean(bits_x + weight_y · bits_y)

`fit` trains exactly the objective `train.py` trains (`Glow.objective`, `objective.glow_loss`) on
uint8 images dequantised with fresh U[0, 1) noise, and runs the data-dependent init on its first
batch when the model was never initialised. It is the single-process path; several workers use
`glow_tf.training.Trainer`.

The objective's metric trackers live in a plain holder (`ObjectiveTrackers`), which Keras
neither tracks as model state nor saves, as it does not for its own loss tracker; the first
batch for the init is read by `glow_tf.internals.first_batch`.
"""

import keras
import tensorflow as tf

from glow_tf.internals import first_batch
from glow_tf.model.objective import check_weight_y, glow_loss
from glow_tf.model.preprocessing import check_n_bits, preprocess


class ObjectiveTrackers:
    """The `bits_x` (and `bits_y`) means `fit` / `evaluate` report. A plain holder, so Keras
    does not take the trackers for model state (they are not saved with the weights).

    Args:
        trackers: the `keras.metrics.Mean`s, in the order of `Glow.objective`'s outputs.
    """

    def __init__(self, trackers):
        self.trackers = tuple(trackers)


class KerasFit:
    """compile / fit / evaluate / export of a `Glow` (mixed in before `keras.Model`)."""

    def compile(self, optimizer='adamax', n_bits_x=8, weight_y=0.0, jit_compile=False, **kwargs):
        """Configure `fit` / `evaluate` to train and measure the Glow objective.

        There is no `loss` argument: the loss is `mean(bits_x) + weight_y · mean(bits_y)` from
        `objective` (the trainer's loss), on uint8 images dequantised with fresh U[0, 1) noise.
        `fit`/`evaluate` report `loss` and `bits_x` (bits/dim), plus `bits_y` (class
        cross-entropy in bits) for a class-conditional model.

        Args:
            optimizer: any Keras optimizer (default 'adamax', the original's default).
            n_bits_x: bits per colour channel the images are reduced to (1..8).
            weight_y: weight of the class term (class-conditional models only).
            jit_compile: XLA-compile the steps (off: the flow compiles slowly and gains little
                on CPU).
            **kwargs: other `keras.Model.compile` arguments (`steps_per_execution`, ...).
        """
        if kwargs.get('loss') is not None:
            raise ValueError(
                "Glow.compile takes no `loss`: fit trains the Glow objective "
                "(bits/dim); set n_bits_x / weight_y instead"
            )
        check_n_bits(n_bits_x)
        check_weight_y(weight_y, self.n_classes)
        kwargs.pop('loss', None)
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)
        self.n_bits_x, self.weight_y = int(n_bits_x), float(weight_y)
        self._make_objective_trackers()
        self._compile_config.config.update(n_bits_x=self.n_bits_x, weight_y=self.weight_y)

    def _make_objective_trackers(self):
        names = ['bits_x', 'bits_y'] if self.n_classes else ['bits_x']
        self._objective = ObjectiveTrackers([keras.metrics.Mean(name=n) for n in names])

    def compile_from_config(self, config):
        """Recompile a loaded model from `get_compile_config()` (n_bits_x / weight_y included)."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        self.optimizer.build(self.trainable_variables)

    @property
    def metrics(self):
        objective = getattr(self, '_objective', None)
        return super().metrics + (list(objective.trackers) if objective else [])

    def _fit_loss(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if self.n_classes and y is None:
            raise ValueError(
                f"this model is class-conditional (n_classes={self.n_classes}): fit / "
                "evaluate need (images, labels)"
            )
        bits_x, bits_y = self.objective(x, y if self.n_classes else None, self.n_bits_x)
        return tf.reduce_mean(glow_loss(bits_x, bits_y, self.weight_y)), bits_x, bits_y

    def _fit_logs(self, loss, bits_x, bits_y):
        self._loss_tracker.update_state(loss, sample_weight=tf.shape(bits_x)[0])  # per image
        for tracker, value in zip(self._objective.trackers, (bits_x, bits_y)):
            tracker.update_state(value)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        """One optimiser step on a batch of uint8 images [B, H, W, C] (and labels [B])."""
        with tf.GradientTape() as tape:
            loss, bits_x, bits_y = self._fit_loss(data)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return self._fit_logs(loss, bits_x, bits_y)

    def test_step(self, data):
        """Test bits/dim of a batch of uint8 images (dequantised, as in training)."""
        return self._fit_logs(*self._fit_loss(data))

    def initialize_from_data(self, x, y=None, batch_size=None):
        """Data-dependent init from the first batch of `x` (anything `fit` accepts: uint8 arrays,
        a tf.data.Dataset of images or (images, labels), a PyDataset, a generator -- whose first
        batch is then consumed). Returns the batch's log p(x) after init, shape [B]."""
        xb, yb, _ = first_batch(x, y, batch_size=batch_size or 32)
        if self.n_classes and yb is None:
            raise ValueError(
                f"this model is class-conditional (n_classes={self.n_classes}): "
                "its data-dependent init needs (images, labels)"
            )
        n_bits_x = getattr(self, 'n_bits_x', 8)
        return self.initialize(preprocess(xb, n_bits_x, noise=True), yb if self.n_classes else None)

    def fit(self, x=None, y=None, batch_size=None, *args, **kwargs):
        """`keras.Model.fit` on uint8 images; a model that was never initialised first runs the
        data-dependent ActNorm init on the first batch of `x` (see `initialize_from_data`).
        Single process: for several workers use train.py / `glow_tf.training.Trainer`."""
        if not self.is_initialized:
            self.initialize_from_data(x, y, batch_size)
        optimizer = getattr(self, 'optimizer', None)
        if optimizer is not None and not optimizer.built:
            # Keras (TF backend, no distribution strategy) leaves this to the first trace of the
            # train step, and a variable created while tracing makes tf.function trace the whole
            # step a second time: the first fit took twice as long to start
            optimizer.build(self.trainable_variables)
        return super().fit(x, y, batch_size, *args, **kwargs)

    def export(
        self, filepath, format='tf_saved_model', verbose=None, input_signature=None, **kwargs
    ):
        """`keras.Model.export`; the default signature is this model's `call`: preprocessed images
        float32 [B, *image_shape] (and int32 labels [B] if class-conditional) -> log p(x) [B]."""
        if input_signature is None:
            input_signature = [keras.InputSpec(shape=(None,) + self.image_shape, dtype='float32')]
            if self.n_classes:
                input_signature.append(keras.InputSpec(shape=(None,), dtype='int32'))
        return super().export(
            filepath, format=format, verbose=verbose, input_signature=input_signature, **kwargs
        )

    @property
    def _default_save_signature(self):
        # Keras traces call(x) from the build shapes when writing a SavedModel; a class-conditional
        # model's call needs the labels too.
        if not self.n_classes:
            return super()._default_save_signature

        @tf.function(
            input_signature=[
                tf.TensorSpec((None,) + self.image_shape, tf.float32),
                tf.TensorSpec((None,), tf.int32),
            ]
        )
        def serving_default(x, y):
            return self(x, y)

        return serving_default
