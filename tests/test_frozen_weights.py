"""A trained model's weights compiled in as constants (`InMemoryModel(frozen_weights=True)`, what
`load_trained_model` gives): the same encode / decode as reading the variables, no variable read
left in the compiled graphs, and the weights as they were when the flow was made."""

import numpy as np

from glow_tf.tools import trained
from glow_tf.tools.trained import InMemoryModel


def graph_reads(fn):
    """How many variable reads the compiled function's graph holds."""
    ops = fn.get_concrete_function().graph.get_operations()
    return sum(op.type == 'ReadVariableOp' for op in ops)


def test_frozen_encode_and_decode_equal_the_variable_reading_ones(flow):
    assert flow.frozen_weights  # load_trained_model's default
    reading = InMemoryModel(flow.model, flow.n_bits_x, batch_size=16)
    assert not reading.frozen_weights
    z = flow.latents(6, temperature=0.8, seed=11)
    images = flow.decode(z)
    np.testing.assert_array_equal(images, reading.decode(z))
    latents = flow.encode(images)
    # folding the weight-only values may round differently in the last bits
    np.testing.assert_allclose(latents, reading.encode(images), rtol=0, atol=1e-4)
    np.testing.assert_array_equal(flow.decode(latents), images)  # still exact after quantising
    assert graph_reads(flow.decode_fn) == graph_reads(flow.encode_fn) == 0
    assert graph_reads(reading.decode_fn) > 0


def test_a_frozen_flow_keeps_the_weights_it_was_made_with(flow):
    model = flow.model
    frozen = InMemoryModel(model, flow.n_bits_x, batch_size=16, frozen_weights=True)
    reading = InMemoryModel(model, flow.n_bits_x, batch_size=16)
    z = flow.latents(4, temperature=0.8, seed=12)
    before = frozen.decode(z)
    v = max(model.trainable_variables, key=lambda v: int(np.prod(v.shape)))
    old = v.numpy()
    try:
        v.assign(old * 1.5 + 0.05)
        changed = reading.decode(z)
        assert np.mean(changed != before) > 0.05  # the change shows where variables are read
        np.testing.assert_array_equal(frozen.decode(z), before)
    finally:
        v.assign(old)


def test_models_over_the_size_limit_keep_reading_their_variables(flow, monkeypatch):
    monkeypatch.setattr(trained, 'FROZEN_WEIGHTS_MAX_BYTES', 1)
    big = InMemoryModel(flow.model, flow.n_bits_x, batch_size=16, frozen_weights=True)
    assert not big.frozen_weights
    z = flow.latents(2, temperature=0.8, seed=13)
    np.testing.assert_array_equal(big.decode(z), flow.decode(z))
    assert graph_reads(big.decode_fn) > 0


def test_load_trained_model_can_keep_variable_reads(logdir):
    loaded = trained.load_trained_model(logdir, batch_size=4, frozen_weights=False)
    assert not loaded.frozen_weights and graph_reads(loaded.decode_fn) > 0
