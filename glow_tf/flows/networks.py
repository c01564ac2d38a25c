"""How a flow layer gets its network: injected, as TFP's bijectors take `shift_and_log_scale_fn`.

`Coupling`, `Split` and `TopPrior` compute (shift, log-scale) or (μ, log σ) with a network they
do not choose. Each takes it as either

    a Keras layer       [B, H, W, in_channels] -> [B, H, W, out_channels], used as given; or
    a factory           network(in_channels, out_channels, name) -> such a layer, called once
                        when the flow layer is built (the channel counts follow from its input).

A network should start at zero output (zero-initialised last layer), so that a coupling starts
as the identity and a prior as N(0, I). The model injects the paper's networks
(`glow_tf.nets.factories`); a user may pass their own, e.g. `Glow(coupling_network=...)`.
For `get_config` / `.keras` files the network must be serialisable: a registered Keras layer, or a
factory that is a registered Keras-serialisable object (`keras.saving.
register_keras_serializable`: a class with `get_config`, or a function). This package imports
nothing from `glow_tf.nets`.
"""

import keras

from glow_tf.errors import ArgumentError


def check_network(network, argument, owner, required=True):
    """ArgumentError(argument) unless `network` is a Keras layer or a callable factory (or None
    when not `required`). Returns it."""
    if network is None and not required:
        return None
    if isinstance(network, keras.layers.Layer) or callable(network):
        return network
    raise ArgumentError(
        argument,
        f"{owner} needs its {argument}: a Keras layer, or a factory (in_channels, out_channels, "
        f"name) -> layer (the model passes the paper's, glow_tf.nets.factories); got "
        f"{type(network).__name__}",
    )


def make_network(network, in_channels, out_channels, name, input_shape):
    """The layer: `network` itself, or what the factory returns for these channels; built for
    `input_shape` (its last axis is in_channels)."""
    layer = network
    if not isinstance(network, keras.layers.Layer):
        layer = network(int(in_channels), int(out_channels), name)
        if not isinstance(layer, keras.layers.Layer):
            raise TypeError(
                f"the network factory {network!r} returned a {type(layer).__name__}, not a Keras "
                "layer"
            )
    if not layer.built:
        layer.build(tuple(input_shape[:-1]) + (int(in_channels),))
    return layer


def serialize_network(network):
    """The network for get_config (None stays None)."""
    if network is None:
        return None
    try:
        return keras.saving.serialize_keras_object(network)
    except Exception as e:  # a lambda or an unregistered class
        raise TypeError(
            f"cannot serialise the network {network!r} ({e}); register it with "
            "keras.saving.register_keras_serializable to save this layer"
        ) from None


def deserialize_network(config):
    """The inverse of `serialize_network`."""
    return None if config is None else keras.saving.deserialize_keras_object(config)
