"""The one module of glow_tf that reaches into Keras / TensorFlow internals (`keras.src`,
`tensorflow.python`), for the three things their public APIs offer no way to do.

    stop_recording()            tensorflow.python.eager.record.stop_recording
        A context in which no gradient tape records operations. `glow_tf.model.memory` runs a
        level's steps under it inside `tf.custom_gradient`, so an outer `tf.GradientTape` does
        not keep every activation alive (the point of the 'checkpoint' and 'reversible' memory
        modes); `custom_gradient`'s own variable watcher still sees the variables read. The
        public `GradientTape.stop_recording()` pauses one tape the caller holds, not the tapes
        of whoever calls the model.

    gradients_recorded()        tensorflow.python.eager.record.could_possibly_record
        True while a gradient tape or forward accumulator records the operations being built
        (eagerly or while a tf.function is traced). `glow_tf.nets.conv_forms` times and picks a
        convolution's form for the direction it will run: forward and both gradients under a
        tape, the forward pass alone otherwise (sampling, encoding, evaluation).

    first_batch(x, y, batch_size)   keras.src.trainers.data_adapters.get_data_adapter
        The first batch of anything `Model.fit` accepts (arrays, tensors, tf.data datasets,
        `keras.utils.PyDataset`s, generators), read the way `fit` reads it; `Glow.fit` runs the
        data-dependent init on it. Keras has no public entry to its data adapters.

Everything else uses public Keras and TensorFlow APIs. Should a Keras or TensorFlow upgrade move
these, this file is the one to change.
"""

import keras


def stop_recording():
    """Context: operations inside are recorded by no gradient tape (module docstring)."""
    from tensorflow.python.eager import record

    return record.stop_recording()


def gradients_recorded():
    """True if a gradient tape (or forward accumulator) would record an operation built now."""
    from tensorflow.python.eager import record

    return bool(record.could_possibly_record())


def first_batch(x, y=None, batch_size=32):
    """(x, y, sample_weight) of the first batch `Model.fit(x, y, batch_size)` would train on."""
    from keras.src.trainers.data_adapters import get_data_adapter

    adapter = get_data_adapter(x, y, batch_size=batch_size, steps_per_epoch=1)
    return keras.utils.unpack_x_y_sample_weight(next(iter(adapter.get_tf_dataset())))
