"""The networks inside coupling layers and learned priors.

    conv.py          conv2d_same: 3x3 / 1x1 convolutions with the original's edge-bias padding,
                     in two halves: prepare_conv (the weights alone) and apply_conv
    zero_conv.py     ZeroConv2D, ZeroDense: zero-initialised output layers (every flow starts at
                     the identity, every prior at N(0, I))
    coupling_net.py  CouplingNetwork: NN() = conv3x3 -> ActNorm -> ReLU -> conv1x1 -> ActNorm ->
                     ReLU -> ZeroConv3x3
    factories.py     CouplingNetworks, ZeroConvs, ZeroDenses: those networks as the factories the
                     model injects into the flow layers (`glow_tf.flows.networks`)

Builds on `glow_tf.flows.actnorm` and `glow_tf.flows.terms` only. The flow layers never import
this package: the model (`glow_tf.model`) passes them their networks.
"""
